package disruption

import (
	"errors"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseScheduleErrors(t *testing.T) {
	for _, s := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 * ",
		"* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "a * * * *", "@every 5m", "@fortnightly",
		"1,,2 * * * *", "-1 * * * *", "* * * foo *", "1-2-3 * * * *", "TZ=UTC 0 9 * * *",
	} {
		if _, err := ParseSchedule(s); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded, want an error", s)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	cases := []struct {
		sched, from, want string
	}{
		{"* * * * *", "2026-03-01T12:00:30Z", "2026-03-01T12:01:00Z"},
		{"0 9 * * *", "2026-03-01T09:00:00Z", "2026-03-02T09:00:00Z"},
		{"0 9 * * *", "2026-03-01T08:59:59Z", "2026-03-01T09:00:00Z"},
		{"*/15 * * * *", "2026-03-01T12:16:00Z", "2026-03-01T12:30:00Z"},
		{"5/20 * * * *", "2026-03-01T12:26:00Z", "2026-03-01T12:45:00Z"},
		{"0 9 * * mon-fri", "2026-03-07T10:00:00Z", "2026-03-09T09:00:00Z"}, // Saturday -> Monday
		{"0 0 * * 7", "2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z"},       // 7 is Sunday
		{"0 0 1 jan *", "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 29 feb *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0 13 * fri", "2026-03-01T00:00:00Z", "2026-03-06T00:00:00Z"}, // either day field matches
		{"0 0 13 * *", "2026-03-01T00:00:00Z", "2026-03-13T00:00:00Z"},
		{"30 2,14 * * *", "2026-03-01T03:00:00Z", "2026-03-01T14:30:00Z"},
		{"@hourly", "2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z"},
		{"@daily", "2026-03-01T12:00:00Z", "2026-03-02T00:00:00Z"},
		{"@weekly", "2026-03-02T12:00:00Z", "2026-03-08T00:00:00Z"},
		{"@monthly", "2026-03-02T12:00:00Z", "2026-04-01T00:00:00Z"},
		{"@yearly", "2026-03-02T12:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 31 12 *", "2026-12-31T00:00:00Z", "2027-12-31T00:00:00Z"},
	}
	for _, tc := range cases {
		s, err := ParseSchedule(tc.sched)
		if err != nil {
			t.Fatalf("%q: %v", tc.sched, err)
		}
		got, err := s.Next(mustTime(t, tc.from))
		if err != nil {
			t.Fatalf("%q from %s: %v", tc.sched, tc.from, err)
		}
		if want := mustTime(t, tc.want); !got.Equal(want) {
			t.Errorf("%q from %s: got %s, want %s", tc.sched, tc.from, got, want)
		}
	}
}

func TestScheduleNever(t *testing.T) {
	s, err := ParseSchedule("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(mustTime(t, "2026-01-01T00:00:00Z")); !errors.Is(err, errNever) {
		t.Fatalf("want errNever, got %v", err)
	}
	if s.Active(mustTime(t, "2026-01-01T00:00:00Z"), time.Hour) {
		t.Fatal("a schedule that never fires is never active")
	}
}

func TestScheduleActive(t *testing.T) {
	s, err := ParseSchedule("0 9 * * mon-fri")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		now  string
		want bool
	}{
		{"2026-03-02T08:59:00Z", false}, // Monday before the window
		{"2026-03-02T09:00:00Z", true},
		{"2026-03-02T16:59:59Z", true},
		{"2026-03-02T17:00:00Z", true}, // exactly duration after the hit
		{"2026-03-02T17:00:01Z", false},
		{"2026-03-07T10:00:00Z", false}, // Saturday
	}
	for _, tc := range cases {
		if got := s.Active(mustTime(t, tc.now), 8*time.Hour); got != tc.want {
			t.Errorf("Active(%s) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

// matches checks a minute against the schedule field by field.
func (s *Schedule) matches(t time.Time) bool {
	return s.minute&(1<<uint(t.Minute())) != 0 && s.hour&(1<<uint(t.Hour())) != 0 &&
		s.month&(1<<uint(t.Month())) != 0 && s.dayMatches(t)
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"* * * * *", "0 9 * * mon-fri", "*/15 0-6,18-23 1,15 * *", "@daily", "5/7 */3 * jan-mar sun",
		"0 0 30 2 *", "1-2/3,4 5 6 7 0"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, spec string, offset int64) {
		s, err := ParseSchedule(spec)
		if err != nil {
			return
		}
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(offset%(1<<40)) * time.Second)
		next, err := s.Next(from)
		if err != nil {
			return
		}
		if !next.After(from) || next.Sub(from) > (searchYears*366+1)*24*time.Hour {
			t.Fatalf("%q: Next(%s) = %s", spec, from, next)
		}
		if !s.matches(next) {
			t.Fatalf("%q: Next(%s) = %s does not match", spec, from, next)
		}
		// No earlier minute after from matches, checked over the first day.
		for m := from.Truncate(time.Minute).Add(time.Minute); m.Before(next) && m.Sub(from) < 24*time.Hour; m = m.Add(time.Minute) {
			if s.matches(m) {
				t.Fatalf("%q: Next(%s) = %s skipped %s", spec, from, next, m)
			}
		}
	})
}
