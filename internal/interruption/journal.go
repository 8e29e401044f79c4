package interruption

import (
	"sync"
	"time"
)

// Actions recorded for events.
const (
	ActionDisrupted = "Disrupted"
	ActionObserved  = "Observed"
	ActionIgnored   = "Ignored"
	ActionDuplicate = "Duplicate"
	ActionMalformed = "Malformed"
	ActionFailed    = "Failed"
)

// Record is one event (per instance) and what was done about it.
type Record struct {
	ID         string
	Kind       string
	DetailType string
	InstanceID string
	EventTime  time.Time
	Received   time.Time
	Handled    time.Time
	Action     string
	Message    string
	NodeName   string
	Deadline   time.Time
}

// Journal keeps the latest records in a bounded ring; safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	records []Record
	next    int
	full    bool
}

// NewJournal returns a journal keeping the latest size records (at least 1).
func NewJournal(size int) *Journal {
	if size < 1 {
		size = 1
	}
	return &Journal{records: make([]Record, size)}
}

// Add records r. A nil journal records nothing.
func (j *Journal) Add(r Record) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.records[j.next] = r
	j.next = (j.next + 1) % len(j.records)
	if j.next == 0 {
		j.full = true
	}
}

// Recent returns up to limit records that keep accepts (nil keeps all),
// newest first; limit <= 0 means all.
func (j *Journal) Recent(limit int, keep func(*Record) bool) []Record {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	size := j.next
	if j.full {
		size = len(j.records)
	}
	var out []Record
	for i := 1; i <= size; i++ {
		r := &j.records[(j.next-i+len(j.records))%len(j.records)]
		if keep != nil && !keep(r) {
			continue
		}
		out = append(out, *r)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}
