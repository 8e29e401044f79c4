package workload_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// Bounds on what a cancelled call may still do. The solver looks at its
// context every pod, class, claim or candidate and stops within a few
// milliseconds of CPU time on these workloads; the bounds leave room for
// the race detector and a loaded machine, and catch a call that keeps
// solving after its cancel (seconds of CPU time).
const (
	maxWallAfterCancel = 2 * time.Second
	maxCPUAfterCancel  = 500 * time.Millisecond
	// settle is how long after the call returned the process's CPU time
	// is still counted, so that work left running in the background
	// after the call returned is counted too.
	settle = 100 * time.Millisecond
)

// cancelled runs call, cancels its context after delay, and returns the
// wall time from the cancel until call returned and the process's CPU time
// from the cancel until settle after that. It fails the test when call
// ended before the cancel, or with another error than context.Canceled.
func cancelled(t *testing.T, delay time.Duration, call func(context.Context) error) (wall, cpu time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("the call ended (err %v) before the cancel after %v: the workload is too small to test cancellation", err, delay)
	case <-time.After(delay):
	}
	cpu0 := workload.ProcessCPUTime()
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the call did not return within a minute of its cancel")
	}
	wall = time.Since(start)
	time.Sleep(settle)
	cpu = workload.ProcessCPUTime() - cpu0
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	return wall, cpu
}

// checkCancelled cancels call after each delay and checks the bounds.
func checkCancelled(t *testing.T, name string, delays []time.Duration, call func(context.Context) error) {
	t.Helper()
	if workload.ProcessCPUTime() == 0 {
		t.Skip("process CPU time is not measured on " + runtime.GOOS)
	}
	for _, delay := range delays {
		wall, cpu := cancelled(t, delay, call)
		t.Logf("%s cancelled after %v: returned %v later, %.1f ms of CPU time from the cancel to %v after the return",
			name, delay, wall.Round(time.Microsecond), float64(cpu)/float64(time.Millisecond), settle)
		if wall > maxWallAfterCancel {
			t.Errorf("%s cancelled after %v returned %v after the cancel, more than %v", name, delay, wall, maxWallAfterCancel)
		}
		if cpu > maxCPUAfterCancel {
			t.Errorf("%s cancelled after %v used %v of CPU time after the cancel, more than %v", name, delay, cpu, maxCPUAfterCancel)
		}
	}
}

// longBudget makes the solver use every strategy and, for resource-only
// pods, the pattern strategy for minutes: a solve that outlasts any
// cancel in these tests.
const longBudget = 10 * time.Minute

func solveCall(p *solver.Problem) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := solver.Solve(ctx, p)
		return err
	}
}

func TestCancelledSolveStops(t *testing.T) {
	delays := []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, 1 * time.Second}
	t.Run("karpenter-mix-20000", func(t *testing.T) {
		p := workload.KarpenterMix(20000, 42)
		p.Options.ImproveBudget = longBudget
		checkCancelled(t, "karpenter-mix-20000", delays, solveCall(p))
	})
	t.Run("karpenter-mix-100000-800-types", func(t *testing.T) {
		if testing.Short() {
			t.Skip("short mode")
		}
		p := workload.KarpenterMix(100000, 42)
		p.InstanceTypes = workload.KarpenterMixCatalogN(800)
		p.Options.ImproveBudget = longBudget
		checkCancelled(t, "karpenter-mix-100000-800-types", append(delays, 2500*time.Millisecond), solveCall(p))
	})
	t.Run("pattern strategy", func(t *testing.T) {
		// The plain pods of karpenter-mix-100000: resource-only, so the
		// pattern strategy runs after the first-fit ones.
		p := workload.KarpenterMix(100000, 42)
		var plain []*solver.Pod
		for _, pod := range p.Pods {
			if pod.Labels[workload.LabelWorkload] == workload.SharePlain {
				plain = append(plain, pod)
			}
		}
		p.Pods = plain
		p.Options.ImproveBudget = longBudget
		checkCancelled(t, fmt.Sprintf("%d plain pods, pattern strategy", len(plain)), append(delays, 3*time.Second), solveCall(p))
	})
}

func TestCancelledConsolidateStops(t *testing.T) {
	p := workload.KarpenterMix(20000, 7)
	p.Options.ImproveRounds = 1
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	frag := workload.Fragment(p, plan, 3)
	checkCancelled(t, fmt.Sprintf("consolidating %d nodes", len(frag.Nodes)),
		[]time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond},
		func(ctx context.Context) error {
			_, err := solver.Consolidate(ctx, frag)
			return err
		})
}
