package solver

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Cancellation: a caller that gives up on a solve (its call cancelled or
// out of time) must not leave the solver running on its behalf. Solve and
// Consolidate watch the caller's context through a halt: context.AfterFunc
// sets a flag when the context ends, and every loop that can run long
// (grouping pods into classes, placing pods, repacking claims, the lower
// bound, the pattern strategy, consolidation candidates) reads that flag
// once per pod, class, claim or candidate. Reading it is one atomic load,
// so a solve that is not cancelled does the same work and returns the same
// plan as before. A loop that sees the flag returns at once, leaving its
// work unfinished; its caller then checks halt.err before using the work,
// so an abandoned solve returns the context's error (wrapped) and never a
// half-built plan.

// halt tells the loops of one solve that its caller has gone.
type halt struct {
	ctx     context.Context
	done    atomic.Bool
	unwatch func() bool
}

// watch starts watching ctx; release must be called when the solve ends.
func watch(ctx context.Context) *halt {
	h := &halt{ctx: ctx}
	h.unwatch = context.AfterFunc(ctx, func() { h.done.Store(true) })
	return h
}

// release stops watching the context.
func (h *halt) release() { h.unwatch() }

// stopped reports whether the caller has gone; a nil halt never stops.
func (h *halt) stopped() bool { return h != nil && h.done.Load() }

// err returns, once stopped, the context's error wrapped so that
// errors.Is(err, context.Canceled) or context.DeadlineExceeded holds; nil
// before.
func (h *halt) err() error {
	if !h.stopped() {
		return nil
	}
	return stoppedErr(h.ctx.Err())
}

// stoppedErr wraps a context's error as the solver returns it.
func stoppedErr(err error) error {
	return fmt.Errorf("stopped before the end, the caller has gone: %w", err)
}
