// Package unavailable remembers offerings (instance type, zone, capacity
// type) that recently lacked capacity, whole capacity types an account
// cannot launch, and subnets out of addresses, so plans and launches avoid
// them until the mark expires. Time comes from an injected clock. The cache is bounded:
// expired marks are swept as time passes, and when it is full a new mark
// replaces the one closest to expiry.
package unavailable

import (
	"sync"
	"time"
)

// DefaultTTL is how long an insufficient-capacity error keeps an offering
// unavailable, as in Karpenter.
const DefaultTTL = 3 * time.Minute

// MaxTTL is the longest a caller may mark an offering unavailable through
// the launcher's MarkUnavailable: long enough to ride out a capacity
// shortage, short enough that a wrong or hostile mark heals by itself.
const MaxTTL = 30 * time.Minute

// DefaultMaxEntries bounds the marks held at once. Validated keys (catalog
// types × the region's zones × capacity types) stay well below it in
// practice; the bound keeps memory flat whatever callers send.
const DefaultMaxEntries = 10_000

// sweepEvery is how often Mark drops expired marks.
const sweepEvery = time.Minute

// Key names an offering.
type Key struct {
	InstanceType string
	Zone         string
	CapacityType string
}

// markKey is what a mark is on: an offering, a capacity type (only
// CapacityType set) or a subnet.
type markKey struct {
	Key
	subnet string
}

// Cache is a set of marks with expiry times. It is safe for concurrent
// use.
type Cache struct {
	now       func() time.Time
	max       int
	mu        sync.Mutex
	m         map[markKey]time.Time
	reasons   map[markKey]string // why, for the marks that say
	lastSweep time.Time
}

// New makes an empty cache of at most DefaultMaxEntries marks, reading time
// from now (time.Now when nil).
func New(now func() time.Time) *Cache {
	return NewBounded(now, DefaultMaxEntries)
}

// NewBounded makes an empty cache holding at most maxEntries marks
// (DefaultMaxEntries when maxEntries <= 0).
func NewBounded(now func() time.Time, maxEntries int) *Cache {
	if now == nil {
		now = time.Now
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &Cache{now: now, max: maxEntries, m: map[markKey]time.Time{}, reasons: map[markKey]string{}, lastSweep: now()}
}

// Mark makes k unavailable for ttl (DefaultTTL when ttl <= 0) and returns
// when it becomes available again. A later expiry already recorded wins.
// Callers bound ttl; the cache only bounds how many marks it holds.
func (c *Cache) Mark(k Key, ttl time.Duration) time.Time {
	return c.mark(markKey{Key: k}, ttl, "")
}

// MarkFor is Mark recording why (an EC2 error code, say); Reason returns
// it while the mark lasts, as Karpenter's unavailable-offerings cache keeps
// the reason of each mark.
func (c *Cache) MarkFor(k Key, ttl time.Duration, reason string) time.Time {
	return c.mark(markKey{Key: k}, ttl, reason)
}

// Reason is the reason of offering k's unexpired mark ("" when it is
// unmarked or was marked without one).
func (c *Cache) Reason(k Key) string {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.liveLocked(markKey{Key: k}, now) {
		return ""
	}
	return c.reasons[markKey{Key: k}]
}

// MarkCapacityType makes every offering of capacity type ct unavailable
// for ttl (DefaultTTL when ttl <= 0), as Karpenter's
// UnavailableOfferings.MarkCapacityTypeUnavailable does when an account
// cannot launch spot at all.
func (c *Cache) MarkCapacityType(ct string, ttl time.Duration) time.Time {
	return c.mark(markKey{Key: Key{CapacityType: ct}}, ttl, "")
}

// MarkSubnet makes a subnet unavailable for ttl (DefaultTTL when ttl <=
// 0), as Karpenter's UnavailableOfferings.MarkSubnetUnavailable does when
// it ran out of addresses.
func (c *Cache) MarkSubnet(id string, ttl time.Duration) time.Time {
	return c.mark(markKey{subnet: id}, ttl, "")
}

func (c *Cache) mark(k markKey, ttl time.Duration, reason string) time.Time {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := c.now()
	until := now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastSweep) >= sweepEvery {
		c.sweepLocked(now)
	}
	if cur, ok := c.m[k]; ok {
		if cur.After(until) {
			return cur
		}
		c.set(k, until, reason)
		return until
	}
	if len(c.m) >= c.max {
		c.sweepLocked(now)
	}
	if len(c.m) >= c.max {
		c.evictSoonestLocked()
	}
	c.set(k, until, reason)
	return until
}

// set records a mark and its reason. Call with c.mu held.
func (c *Cache) set(k markKey, until time.Time, reason string) {
	c.m[k] = until
	if reason != "" {
		c.reasons[k] = reason
	} else {
		delete(c.reasons, k)
	}
}

// drop forgets a mark. Call with c.mu held.
func (c *Cache) drop(k markKey) {
	delete(c.m, k)
	delete(c.reasons, k)
}

// sweepLocked drops expired marks. Call with c.mu held.
func (c *Cache) sweepLocked(now time.Time) {
	for k, until := range c.m {
		if !now.Before(until) {
			c.drop(k)
		}
	}
	c.lastSweep = now
}

// evictSoonestLocked drops the mark that expires first, the one that
// would have told plans the least. Call with c.mu held.
func (c *Cache) evictSoonestLocked() {
	var (
		victim markKey
		first  time.Time
		found  bool
	)
	for k, until := range c.m {
		if !found || until.Before(first) {
			victim, first, found = k, until, true
		}
	}
	if found {
		c.drop(victim)
	}
}

// Len is the number of marks held, expired ones not yet swept included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Unavailable reports whether offering k, or its whole capacity type, is
// marked and the mark has not expired.
func (c *Cache) Unavailable(k Key) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveLocked(markKey{Key: k}, now) || c.liveLocked(markKey{Key: Key{CapacityType: k.CapacityType}}, now)
}

// CapacityTypeUnavailable reports whether capacity type ct is marked
// whole.
func (c *Cache) CapacityTypeUnavailable(ct string) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveLocked(markKey{Key: Key{CapacityType: ct}}, now)
}

// SubnetUnavailable reports whether subnet id is marked.
func (c *Cache) SubnetUnavailable(id string) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.liveLocked(markKey{subnet: id}, now)
}

// liveLocked reports whether k holds an unexpired mark, dropping an
// expired one. Call with c.mu held.
func (c *Cache) liveLocked(k markKey, now time.Time) bool {
	until, ok := c.m[k]
	if !ok {
		return false
	}
	if !now.Before(until) {
		c.drop(k)
		return false
	}
	return true
}
