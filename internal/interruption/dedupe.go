package interruption

import (
	"container/list"
	"sync"
	"time"
)

// Dedupe remembers the ids of events already handled, for TTL, keeping at
// most Size of them (the least recently seen go first), and the ids being
// handled right now (Reserve). It is safe for concurrent use.
type Dedupe struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu       sync.Mutex
	order    *list.List // of *dedupeEntry, most recent at the front
	byID     map[string]*list.Element
	reserved map[string]struct{} // being handled: not subject to size or TTL
}

type dedupeEntry struct {
	id      string
	expires time.Time
}

// NewDedupe returns a Dedupe keeping up to size ids (at least 1) for ttl.
func NewDedupe(size int, ttl time.Duration, now func() time.Time) *Dedupe {
	if size < 1 {
		size = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Dedupe{size: size, ttl: ttl, now: now, order: list.New(), byID: map[string]*list.Element{}, reserved: map[string]struct{}{}}
}

// Reserve claims id for the caller, atomically: false when it is being
// handled (reserved and neither committed nor released) or was handled
// within the TTL. The caller that gets true acts, then calls Commit when the
// action is final or Release when it failed and may be retried.
func (d *Dedupe) Reserve(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.reserved[id]; ok || d.seen(id) {
		return false
	}
	d.reserved[id] = struct{}{}
	return true
}

// Commit records a reserved id as handled now.
func (d *Dedupe) Commit(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reserved, id)
	d.add(id)
}

// Release gives a reserved id up without recording it: the next Reserve
// succeeds.
func (d *Dedupe) Release(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reserved, id)
}

// Seen reports whether id was added within the TTL.
func (d *Dedupe) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen(id)
}

func (d *Dedupe) seen(id string) bool {
	el, ok := d.byID[id]
	if !ok {
		return false
	}
	if !d.now().Before(el.Value.(*dedupeEntry).expires) {
		d.order.Remove(el)
		delete(d.byID, id)
		return false
	}
	return true
}

// Add records id as handled now.
func (d *Dedupe) Add(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.add(id)
}

func (d *Dedupe) add(id string) {
	expires := d.now().Add(d.ttl)
	if el, ok := d.byID[id]; ok {
		el.Value.(*dedupeEntry).expires = expires
		d.order.MoveToFront(el)
		return
	}
	d.byID[id] = d.order.PushFront(&dedupeEntry{id: id, expires: expires})
	for d.order.Len() > d.size {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.byID, last.Value.(*dedupeEntry).id)
	}
}

// Len is the number of ids remembered (expired ones included until looked up or evicted).
func (d *Dedupe) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
