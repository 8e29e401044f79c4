// Package journal keeps the watcher's recent decisions (provisioning,
// disruption, interruption, blocked candidates) in a bounded ring, for the
// WatcherService's GetState and GetStatus.
package journal

import (
	"time"

	"github.com/flotilla-io/flotilla/internal/ring"
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
	entries *ring.Ring[Entry]
	now     func() time.Time
}

// New returns a journal keeping the latest size entries (at least 1).
func New(size int, now func() time.Time) *Journal {
	if now == nil {
		now = time.Now
	}
	return &Journal{entries: ring.New[Entry](size), now: now}
}

// Add records a decision now. A nil journal records nothing.
func (j *Journal) Add(kind, object, message string) {
	if j == nil {
		return
	}
	j.entries.Add(Entry{Time: j.now(), Kind: kind, Object: object, Message: message})
}

// Recent returns up to n entries, newest first; n <= 0 means all.
func (j *Journal) Recent(n int) []Entry {
	if j == nil {
		return nil
	}
	return j.entries.Recent(n, nil)
}
