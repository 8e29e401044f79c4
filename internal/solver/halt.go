package solver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
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
	// clock is what a caller's time cap (Options.ImproveBudget) is read
	// on; nil means time.Now. Without a cap no decision depends on it.
	clock func() time.Time
	// A capped halt (see capped) also stops once the clock passes
	// deadline; parent is the halt it was made from (nil: none).
	isCap    bool
	parent   *halt
	deadline time.Time
}

// errCapReached is the error of a capped halt whose deadline passed.
var errCapReached = errors.New("the improvement time cap was reached")

// watch starts watching ctx; release must be called when the solve ends.
func watch(ctx context.Context) *halt {
	h := &halt{ctx: ctx}
	h.unwatch = context.AfterFunc(ctx, func() { h.done.Store(true) })
	return h
}

// release stops watching the context.
func (h *halt) release() { h.unwatch() }

// now reads the halt's clock.
func (h *halt) now() time.Time {
	if h == nil || h.clock == nil {
		return time.Now()
	}
	return h.clock()
}

// capped returns a halt that stops when h stops or when h's clock passes
// deadline; its err is then h's error, or errCapReached.
func (h *halt) capped(deadline time.Time) *halt {
	c := &halt{ctx: context.Background(), isCap: true, parent: h, deadline: deadline}
	if h != nil {
		c.ctx, c.clock = h.ctx, h.clock
	}
	return c
}

// stopped reports whether the caller has gone (or a capped halt's
// deadline passed); a nil halt never stops.
func (h *halt) stopped() bool {
	if h == nil {
		return false
	}
	if h.isCap {
		return h.parent.stopped() || h.now().After(h.deadline)
	}
	return h.done.Load()
}

// err returns, once stopped, the context's error wrapped so that
// errors.Is(err, context.Canceled) or context.DeadlineExceeded holds
// (errCapReached for a capped halt's own deadline); nil before.
func (h *halt) err() error {
	if !h.stopped() {
		return nil
	}
	if h.isCap {
		if err := h.parent.err(); err != nil {
			return err
		}
		return errCapReached
	}
	return stoppedErr(h.ctx.Err())
}

// stoppedErr wraps a context's error as the solver returns it.
func stoppedErr(err error) error {
	return fmt.Errorf("stopped before the end, the caller has gone: %w", err)
}
