package disruption

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron schedule: standard five fields (minute, hour,
// day of month, month, day of week) or a macro such as @daily. Times are UTC.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// domStar and dowStar record a field written starting with "*": as in
	// cron, when both day fields are restricted a time matches either.
	domStar, dowStar bool
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteField = cronField{name: "minute", min: 0, max: 59}
	hourField   = cronField{name: "hour", min: 0, max: 23}
	domField    = cronField{name: "day of month", min: 1, max: 31}
	monthField  = cronField{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	// Day of week 7 is Sunday too; it is folded onto 0 after parsing.
	dowField = cronField{name: "day of week", min: 0, max: 7, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// maxScheduleLen bounds the input so a hostile schedule cannot make parsing slow.
const maxScheduleLen = 1024

// ParseSchedule parses a cron schedule: five space-separated fields, each a
// comma-separated list of "*", a value, a range "a-b", optionally with a step
// "/n" ("*/15", "1-30/2", "5/10" meaning 5 to the maximum by 10); months and
// days of week also by three-letter English names. Macros @yearly, @annually,
// @monthly, @weekly, @daily, @midnight and @hourly are accepted. Time zones
// are not: schedules are UTC, as in Karpenter.
func ParseSchedule(s string) (*Schedule, error) {
	if len(s) > maxScheduleLen {
		return nil, fmt.Errorf("schedule is longer than %d characters", maxScheduleLen)
	}
	spec := strings.TrimSpace(s)
	if strings.HasPrefix(spec, "@") {
		m, ok := macros[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("schedule %q: unknown macro", s)
		}
		spec = m
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", s, len(fields))
	}
	var sc Schedule
	var err error
	parts := []struct {
		dst *uint64
		f   cronField
	}{{&sc.minute, minuteField}, {&sc.hour, hourField}, {&sc.dom, domField}, {&sc.month, monthField}, {&sc.dow, dowField}}
	for i, p := range parts {
		if *p.dst, err = parseField(fields[i], p.f); err != nil {
			return nil, fmt.Errorf("schedule %q: %w", s, err)
		}
	}
	if sc.dow&(1<<7) != 0 {
		sc.dow = sc.dow&^(1<<7) | 1
	}
	sc.domStar = strings.HasPrefix(fields[2], "*")
	sc.dowStar = strings.HasPrefix(fields[4], "*")
	return &sc, nil
}

// parseField parses one comma-separated field into a bit set.
func parseField(s string, f cronField) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(s, ",") {
		b, err := parseItem(item, f)
		if err != nil {
			return 0, err
		}
		bits |= b
	}
	return bits, nil
}

// parseItem parses "*", "v", "a-b", each optionally followed by "/step".
func parseItem(item string, f cronField) (uint64, error) {
	rng, stepStr, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepStr)
		if err != nil || n < 1 || n > f.max+1 {
			return 0, fmt.Errorf("%s: invalid step %q", f.name, stepStr)
		}
		step = n
	}
	lo, hi, err := parseRange(rng, f, hasStep)
	if err != nil {
		return 0, err
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, nil
}

// parseRange parses "*", "v" or "a-b". A single value with a step runs to
// the field's maximum.
func parseRange(s string, f cronField, hasStep bool) (int, int, error) {
	if s == "*" {
		return f.min, f.max, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err := parseValue(a, f)
	if err != nil {
		return 0, 0, err
	}
	hi := lo
	switch {
	case isRange:
		if hi, err = parseValue(b, f); err != nil {
			return 0, 0, err
		}
	case hasStep:
		hi = f.max
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("%s: range %q runs backwards", f.name, s)
	}
	return lo, hi, nil
}

func parseValue(s string, f cronField) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", f.name, s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%s: %d is outside %d-%d", f.name, v, f.min, f.max)
	}
	return v, nil
}

// searchYears bounds Next: a schedule that matches nothing within this many
// years (such as February 30th) never matches.
const searchYears = 5

// errNever reports a schedule that never fires.
var errNever = errors.New("schedule never fires")

// Next returns the first minute strictly after t (in UTC) that the schedule
// matches, or an error if none comes within five years.
func (s *Schedule) Next(t time.Time) (time.Time, error) {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(searchYears, 0, 0)
	for t.Before(limit) {
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t, nil
		}
	}
	return time.Time{}, errNever
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Active reports whether a window of the given duration that opens at each
// schedule hit covers now: the last hit at or before now is less than (or
// exactly) duration ago.
func (s *Schedule) Active(now time.Time, duration time.Duration) bool {
	next, err := s.Next(now.UTC().Add(-duration - time.Nanosecond))
	if err != nil {
		return false
	}
	return !next.After(now.UTC())
}
