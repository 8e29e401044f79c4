package unavailable

import (
	"testing"
	"time"
)

func TestMarkExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(func() time.Time { return now })
	k := Key{"m5.large", "us-east-1a", "spot"}
	if c.Unavailable(k) {
		t.Fatal("unmarked offering unavailable")
	}
	until := c.Mark(k, 0)
	if want := now.Add(DefaultTTL); !until.Equal(want) {
		t.Fatalf("until %v, want %v", until, want)
	}
	now = now.Add(DefaultTTL - time.Second)
	if !c.Unavailable(k) {
		t.Fatal("mark expired early")
	}
	if c.Unavailable(Key{"m5.large", "us-east-1b", "spot"}) {
		t.Fatal("other zone unavailable")
	}
	now = now.Add(time.Second)
	if c.Unavailable(k) {
		t.Fatal("mark did not expire")
	}
}

func TestLongerMarkWins(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(func() time.Time { return now })
	k := Key{"c5.large", "us-east-1a", "on-demand"}
	c.Mark(k, time.Hour)
	if got := c.Mark(k, time.Minute); !got.Equal(now.Add(time.Hour)) {
		t.Fatalf("shorter mark replaced longer one: %v", got)
	}
}
