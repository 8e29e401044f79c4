// Package provisioning turns pending pods into NodeClaims: pod events are
// batched (a window closes after Idle without new events, or after Max in
// all), each batch is solved from the cache's state, and the plan's
// NodeClaims are created; the lifecycle controller launches them.
package provisioning

import (
	"context"
	"time"
)

// Batcher groups triggers into windows.
type Batcher struct {
	// Idle closes a window when no trigger came for that long.
	Idle time.Duration
	// Max closes a window that long after it opened, whatever comes.
	Max time.Duration

	ch chan struct{}
}

// NewBatcher returns a batcher with the given windows.
func NewBatcher(idle, maxDur time.Duration) *Batcher {
	return &Batcher{Idle: idle, Max: maxDur, ch: make(chan struct{}, 1)}
}

// Trigger notes that something changed; it never blocks.
func (b *Batcher) Trigger() {
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

// Wait blocks until a trigger opens a window and the window closes; it
// returns false when ctx ends first.
func (b *Batcher) Wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-b.ch:
	}
	maxTimer := time.NewTimer(b.Max)
	defer maxTimer.Stop()
	idle := time.NewTimer(b.Idle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-maxTimer.C:
			return true
		case <-idle.C:
			return true
		case <-b.ch:
			if !idle.Stop() {
				<-idle.C
			}
			idle.Reset(b.Idle)
		}
	}
}
