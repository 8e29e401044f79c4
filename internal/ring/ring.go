// Package ring is a bounded, concurrency-safe list of the latest values:
// the services' journals of recent decisions and events.
package ring

import "sync"

// Ring keeps the latest values added, up to its size.
type Ring[T any] struct {
	mu     sync.Mutex
	values []T
	next   int
	full   bool
}

// New returns a ring keeping the latest size values (at least 1).
func New[T any](size int) *Ring[T] {
	return &Ring[T]{values: make([]T, max(size, 1))}
}

// Add records v, dropping the oldest value when the ring is full.
func (r *Ring[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[r.next] = v
	r.next = (r.next + 1) % len(r.values)
	if r.next == 0 {
		r.full = true
	}
}

// Recent returns up to limit values that keep accepts (nil keeps all),
// newest first; limit <= 0 means all.
func (r *Ring[T]) Recent(limit int, keep func(*T) bool) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.next
	if r.full {
		size = len(r.values)
	}
	var out []T
	for i := 1; i <= size; i++ {
		v := &r.values[(r.next-i+len(r.values))%len(r.values)]
		if keep != nil && !keep(v) {
			continue
		}
		out = append(out, *v)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}
