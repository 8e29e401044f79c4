package v1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Never is the string value of a NillableDuration that never elapses.
const Never = "Never"

// NillableDuration is a duration that may also be "Never", as Karpenter's
// expireAfter and consolidateAfter fields are. In JSON it is a Go duration
// string such as "720h" or "30s", or the literal "Never". Duration is nil
// for Never.
type NillableDuration struct {
	// Duration is the duration, or nil for Never.
	Duration *time.Duration
	// Raw is the string the value was decoded from, kept for round trips.
	Raw string
}

// UnmarshalJSON decodes a duration string or "Never".
func (d *NillableDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\" or \"Never\": %w", err)
	}
	if s == Never {
		*d = NillableDuration{Raw: s}
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	*d = NillableDuration{Duration: &v, Raw: s}
	return nil
}

// MarshalJSON encodes the duration as a string, or "Never" when it is nil.
func (d NillableDuration) MarshalJSON() ([]byte, error) {
	if d.Raw != "" {
		return json.Marshal(d.Raw)
	}
	if d.Duration == nil {
		return json.Marshal(Never)
	}
	return json.Marshal(d.Duration.String())
}

// IsNever reports whether the duration never elapses. A zero value (never
// set) is also Never: Karpenter's defaulting fills it in before use.
func (d NillableDuration) IsNever() bool { return d.Duration == nil }
