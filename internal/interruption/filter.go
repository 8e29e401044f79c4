package interruption

import (
	"fmt"
	"time"
)

// Reasons an event is dropped before anything is done about it (the reason
// label of flotilla_interruption_events_dropped_total).
const (
	DropMissingTime    = "missing_time"
	DropMissingAccount = "missing_account"
	DropMissingRegion  = "missing_region"
	DropOtherAccount   = "other_account"
	DropOtherRegion    = "other_region"
	DropStale          = "stale"
	DropFuture         = "future"
)

// DropReasons lists every drop reason, in the order they are checked.
var DropReasons = []string{DropMissingTime, DropMissingAccount, DropMissingRegion, DropOtherAccount, DropOtherRegion, DropStale, DropFuture}

// Limits on an event's time, against the consumer's clock.
const (
	// DefaultMaxEventAge is the oldest an event may be: AWS's notices last
	// two minutes, the queue keeps messages five, so anything older is a
	// replay or a backlog whose action comes too late to help.
	DefaultMaxEventAge = 10 * time.Minute
	// MaxClockSkew is how far in the future an event's time may be; later
	// ones would escape the age limit.
	MaxClockSkew = 5 * time.Minute
)

// drop is why an event is not acted on: a reason code and the words.
type drop struct {
	reason, detail string
}

// origin is where the consumer accepts events from, and how old.
type origin struct {
	account, region string
	maxAge          time.Duration
}

// check returns why ev must be dropped at now, or nil. An empty
// origin.account accepts every account (the event must still name one); an
// empty origin.region accepts none.
func (o origin) check(ev *Event, now time.Time) *drop {
	switch {
	case ev.Time.IsZero():
		return &drop{DropMissingTime, "the event has no time"}
	case ev.Account == "":
		return &drop{DropMissingAccount, "the event names no account"}
	case ev.Region == "":
		return &drop{DropMissingRegion, "the event names no region"}
	case o.account != "" && ev.Account != o.account:
		return &drop{DropOtherAccount, fmt.Sprintf("account %q is not this service's %s", clip(ev.Account), o.account)}
	case ev.Region != o.region:
		return &drop{DropOtherRegion, fmt.Sprintf("region %q is not this service's %q", clip(ev.Region), o.region)}
	}
	age := now.Sub(ev.Time)
	switch {
	case age > o.maxAge:
		return &drop{DropStale, fmt.Sprintf("event time %s is %s old, more than %s", ev.Time.Format(time.RFC3339), age.Round(time.Second), o.maxAge)}
	case -age > MaxClockSkew:
		return &drop{DropFuture, fmt.Sprintf("event time %s is %s ahead, more than %s", ev.Time.Format(time.RFC3339), (-age).Round(time.Second), MaxClockSkew)}
	}
	return nil
}
