// Package unavailable remembers offerings (instance type, zone, capacity
// type) that recently lacked capacity, so plans and launches avoid them until
// the mark expires. Time comes from an injected clock.
package unavailable

import (
	"sync"
	"time"
)

// DefaultTTL is how long an insufficient-capacity error keeps an offering
// unavailable, as in Karpenter.
const DefaultTTL = 3 * time.Minute

// Key names an offering.
type Key struct {
	InstanceType string
	Zone         string
	CapacityType string
}

// Cache is a set of offerings with expiry times. It is safe for concurrent
// use.
type Cache struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[Key]time.Time
}

// New makes an empty cache reading time from now (time.Now when nil).
func New(now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{now: now, m: map[Key]time.Time{}}
}

// Mark makes k unavailable for ttl (DefaultTTL when ttl <= 0) and returns
// when it becomes available again. A later expiry already recorded wins.
func (c *Cache) Mark(k Key, ttl time.Duration) time.Time {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	until := c.now().Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[k]; ok && cur.After(until) {
		return cur
	}
	c.m[k] = until
	return until
}

// Unavailable reports whether k is marked and the mark has not expired.
func (c *Cache) Unavailable(k Key) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.m[k]
	if !ok {
		return false
	}
	if !now.Before(until) {
		delete(c.m, k)
		return false
	}
	return true
}
