package unavailable

import (
	"fmt"
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

func TestExpiredMarksAreSwept(t *testing.T) {
	now := time.Unix(0, 0)
	c := New(func() time.Time { return now })
	for i := range 100 {
		c.Mark(Key{fmt.Sprintf("t%d.large", i), "us-east-1a", "spot"}, time.Minute)
	}
	if c.Len() != 100 {
		t.Fatalf("%d marks, want 100", c.Len())
	}
	// Nobody asks about the 100 again; the next mark after they expired
	// sweeps them.
	now = now.Add(2 * time.Minute)
	c.Mark(Key{"m5.large", "us-east-1a", "spot"}, time.Minute)
	if c.Len() != 1 {
		t.Fatalf("%d marks after expiry, want 1", c.Len())
	}
}

func TestBoundedEvictsSoonestExpiry(t *testing.T) {
	now := time.Unix(0, 0)
	c := NewBounded(func() time.Time { return now }, 3)
	long := Key{"m5.large", "us-east-1a", "spot"}
	c.Mark(long, 20*time.Minute)
	soon := Key{"m5.large", "us-east-1b", "spot"}
	c.Mark(soon, time.Minute)
	c.Mark(Key{"m5.large", "us-east-1c", "spot"}, 10*time.Minute)
	for i := range 1000 {
		c.Mark(Key{fmt.Sprintf("t%d.large", i), "us-east-1a", "on-demand"}, 5*time.Minute)
		if c.Len() > 3 {
			t.Fatalf("mark %d: %d marks held, bound 3", i, c.Len())
		}
	}
	if !c.Unavailable(long) {
		t.Error("the mark expiring last was evicted")
	}
	if c.Unavailable(soon) {
		t.Error("the mark expiring first was kept")
	}
}

func TestMarkCapacityTypeCoversEveryOffering(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(func() time.Time { return now })
	c.MarkCapacityType("spot", 0)
	if !c.Unavailable(Key{"m5.large", "us-east-1a", "spot"}) || !c.CapacityTypeUnavailable("spot") {
		t.Fatal("spot offering available after its capacity type was marked")
	}
	if c.Unavailable(Key{"m5.large", "us-east-1a", "on-demand"}) || c.CapacityTypeUnavailable("on-demand") {
		t.Fatal("on-demand offering unavailable after spot was marked")
	}
	now = now.Add(DefaultTTL)
	if c.Unavailable(Key{"m5.large", "us-east-1a", "spot"}) {
		t.Fatal("capacity type mark did not expire")
	}
}

func TestMarkSubnet(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(func() time.Time { return now })
	c.MarkSubnet("subnet-1", time.Minute)
	if !c.SubnetUnavailable("subnet-1") || c.SubnetUnavailable("subnet-2") {
		t.Fatal("subnet marks wrong")
	}
	if c.Unavailable(Key{CapacityType: ""}) {
		t.Fatal("a subnet mark made an offering unavailable")
	}
	now = now.Add(time.Minute)
	if c.SubnetUnavailable("subnet-1") {
		t.Fatal("subnet mark did not expire")
	}
}

func TestMarkForKeepsTheReasonWhileTheMarkLasts(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(func() time.Time { return now })
	k := Key{"g5.xlarge", "us-east-1a", "on-demand"}
	c.MarkFor(k, time.Minute, "VcpuLimitExceeded")
	if r := c.Reason(k); r != "VcpuLimitExceeded" {
		t.Fatalf("reason %q", r)
	}
	c.Mark(k, 2*time.Minute) // a later mark without a reason replaces it
	if r := c.Reason(k); r != "" {
		t.Fatalf("reason %q after a mark without one", r)
	}
	c.MarkFor(k, 3*time.Minute, "InsufficientInstanceCapacity")
	now = now.Add(3 * time.Minute)
	if r := c.Reason(k); r != "" || c.Unavailable(k) {
		t.Fatalf("reason %q outlived its mark", r)
	}
}
