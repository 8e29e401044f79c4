package interruption

import (
	"time"

	"github.com/flotilla-io/flotilla/internal/ring"
)

// Actions recorded for events.
const (
	ActionDisrupted = "Disrupted"
	ActionObserved  = "Observed"
	ActionIgnored   = "Ignored"
	ActionDuplicate = "Duplicate"
	ActionDropped   = "Dropped"
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
	records *ring.Ring[Record]
}

// NewJournal returns a journal keeping the latest size records (at least 1).
func NewJournal(size int) *Journal {
	return &Journal{records: ring.New[Record](size)}
}

// Add records r. A nil journal records nothing.
func (j *Journal) Add(r Record) {
	if j == nil {
		return
	}
	j.records.Add(r)
}

// Recent returns up to limit records that keep accepts (nil keeps all),
// newest first; limit <= 0 means all.
func (j *Journal) Recent(limit int, keep func(*Record) bool) []Record {
	if j == nil {
		return nil
	}
	return j.records.Recent(limit, keep)
}
