// Package journal keeps the watcher's recent decisions (provisioning,
// disruption, interruption, blocked candidates) in a bounded ring, for the
// WatcherService's GetState and GetStatus.
package journal

import (
	"sync"
	"time"
)

// Entry is one decision.
type Entry struct {
	Time    time.Time
	Kind    string // Provision, Consolidate, Drift, Expire, Interrupt, Blocked, Terminate, ...
	Object  string
	Message string
}

// Journal is a bounded, concurrency-safe list of the latest entries.
type Journal struct {
	mu      sync.Mutex
	entries []Entry // ring
	next    int
	full    bool
	now     func() time.Time
}

// New returns a journal keeping the latest size entries (at least 1).
func New(size int, now func() time.Time) *Journal {
	if size < 1 {
		size = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Journal{entries: make([]Entry, size), now: now}
}

// Add records a decision now. A nil journal records nothing.
func (j *Journal) Add(kind, object, message string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries[j.next] = Entry{Time: j.now(), Kind: kind, Object: object, Message: message}
	j.next = (j.next + 1) % len(j.entries)
	if j.next == 0 {
		j.full = true
	}
}

// Recent returns up to n entries, newest first.
func (j *Journal) Recent(n int) []Entry {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	size := j.next
	if j.full {
		size = len(j.entries)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, j.entries[(j.next-i+len(j.entries))%len(j.entries)])
	}
	return out
}
