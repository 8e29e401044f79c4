package solverapi_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/workload"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// tracked is the solver service, telling the test when a call's handler
// starts and what it returns.
type tracked struct {
	*solverapi.Service
	started chan struct{}
	ended   chan error
}

func newTracked() *tracked {
	return &tracked{Service: solverapi.NewService(), started: make(chan struct{}, 1), ended: make(chan error, 1)}
}

func (s *tracked) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	s.started <- struct{}{}
	resp, err := s.Service.Solve(ctx, req)
	s.ended <- err
	return resp, err
}

func (s *tracked) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	s.started <- struct{}{}
	resp, err := s.Service.Consolidate(ctx, req)
	s.ended <- err
	return resp, err
}

// Bounds on what a cancelled call may still cost; the real figures, which
// the test logs, are a few milliseconds. The bounds leave room for the
// race detector and a loaded machine, and catch a solve left running
// after its call (seconds of CPU time).
const (
	maxHandlerAfterCancel = 2 * time.Second
	maxCPUAfterCancel     = 500 * time.Millisecond
	maxCPUAfterFive       = 2 * time.Second
	// settle is how long after the handler returned CPU time is still
	// counted, so that work left running in the background shows: a solve
	// going on after its handler returned would use up to a second of CPU
	// time per core in that window. The garbage collector is off from
	// the cancel to the end of that window: collecting the abandoned
	// request (and marking the test's own copies of the workload) is the
	// runtime's work, not the solver's, and comes after. What the window
	// still shows (up to 100 ms, by CPU profile) is the runtime's
	// background sweeper finishing the collection before the cancel.
	settle = time.Second
)

// Solve and Consolidate calls cancelled by their callers 500 ms (200 ms)
// into the handler stop the work: the handler returns within milliseconds
// with context.Canceled, and the process uses almost no CPU time
// afterwards. Before the solver took a context the handler returned at
// once but the solve went on for seconds in the background, which this
// test catches.
func TestCancelledCallsStopTheirWork(t *testing.T) {
	if workload.ProcessCPUTime() == 0 {
		t.Skip("process CPU time is not measured on " + runtime.GOOS)
	}
	svc := newTracked()
	client := startSolver(t, 64<<20, svc) // a 100,000-pod request is about 19 MB
	big := workload.KarpenterMix(100000, 42)
	big.InstanceTypes = workload.KarpenterMixCatalogN(800)
	solveReq := solveRequest(big, 600) // every strategy, then repacking: minutes
	consReq := consolidateRequest(fragmentedMix(t, 20000))
	solve := func(ctx context.Context) error { _, err := client.Solve(ctx, solveReq); return err }
	consolidate := func(ctx context.Context) error { _, err := client.Consolidate(ctx, consReq); return err }

	var total time.Duration
	for i, call := range []func(context.Context) error{solve, solve, solve, solve, solve, consolidate} {
		name, delay := fmt.Sprintf("Solve %d of 100,000 pods", i+1), 500*time.Millisecond
		if i == 5 {
			// Consolidating takes about a second: cancel it sooner.
			name, delay = fmt.Sprintf("Consolidate of %d nodes", len(consReq.GetNodes())), 200*time.Millisecond
		}
		ctx, cancel := context.WithCancel(context.Background())
		callErr := make(chan error, 1)
		go func() { callErr <- call(ctx) }()
		select {
		case <-svc.started:
		case err := <-callErr:
			cancel()
			t.Fatalf("%s ended before its handler started: %v", name, err)
		}
		time.Sleep(delay)
		gcPercent := debug.SetGCPercent(-1)
		cpu0 := workload.ProcessCPUTime()
		start := time.Now()
		cancel()
		var err error
		select {
		case err = <-svc.ended:
		case <-time.After(time.Minute):
			t.Fatalf("%s: the handler did not return within a minute of the cancel", name)
		}
		wall := time.Since(start)
		cpuReturn := workload.ProcessCPUTime() - cpu0
		time.Sleep(settle)
		cpu := workload.ProcessCPUTime() - cpu0
		debug.SetGCPercent(gcPercent)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: the handler returned %v, want context.Canceled", name, err)
		}
		if code := status.Code(<-callErr); code != codes.Canceled {
			t.Errorf("%s: the caller got %v, want Canceled", name, code)
		}
		t.Logf("%s cancelled %v into the handler: it returned %v later; CPU time after the cancel: %.1f ms until the return, %.1f ms with the %v after",
			name, delay, wall.Round(time.Microsecond), ms(cpuReturn), ms(cpu), settle)
		if wall > maxHandlerAfterCancel {
			t.Errorf("%s: the handler returned %v after the cancel, more than %v", name, wall, maxHandlerAfterCancel)
		}
		if cpu > maxCPUAfterCancel {
			t.Errorf("%s: %v of CPU time after the cancel, more than %v", name, cpu, maxCPUAfterCancel)
		}
		if i < 5 {
			total += cpu
		}
	}
	t.Logf("5 cancelled solves: %.1f ms of CPU time after their cancels in all", ms(total))
	if total > maxCPUAfterFive {
		t.Errorf("5 cancelled solves used %v of CPU time after their cancels, more than %v", total, maxCPUAfterFive)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
