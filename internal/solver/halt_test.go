package solver

import (
	"context"
	"errors"
	"testing"
	"time"
)

// stoppedHalt is the halt of a solve whose caller has gone.
func stoppedHalt() *halt {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &halt{ctx: ctx}
	h.done.Store(true)
	return h
}

func TestWatchSetsTheFlagWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := watch(ctx)
	defer h.release()
	if h.stopped() || h.err() != nil {
		t.Fatal("stopped before the context ended")
	}
	cancel()
	for deadline := time.Now().Add(5 * time.Second); !h.stopped(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flag was not set within 5s of the cancel")
		}
	}
	if err := h.err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	h = watch(ctx)
	h.release()
	cancel()
	time.Sleep(20 * time.Millisecond)
	if h.stopped() {
		t.Fatal("a released halt still watches its context")
	}
	var none *halt
	if none.stopped() || none.err() != nil {
		t.Fatal("a nil halt stopped")
	}
}

func TestSolveAndConsolidateRefuseAnEndedContext(t *testing.T) {
	p := basicProblem(mkPods("web", 3, 1000, nil)...)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"past its deadline", expired, context.DeadlineExceeded}} {
		if _, err := Solve(tc.ctx, p); !errors.Is(err, tc.want) || errors.Is(err, ErrInvalidProblem) {
			t.Errorf("Solve %s: %v, want %v", tc.name, err, tc.want)
		}
		if _, err := Consolidate(tc.ctx, &Problem{}); !errors.Is(err, tc.want) {
			t.Errorf("Consolidate %s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Each loop a solve can spend long in returns at once, without its work,
// when the halt has stopped; without a halt the same call does its work.
func TestAStoppedHaltStopsEveryLoop(t *testing.T) {
	spread := &TopologySpreadConstraint{MaxSkew: 1, TopologyKey: LabelZone, WhenUnsatisfiable: DoNotSchedule, LabelSelector: sel("app", "web")}
	web := mkPods("web", 40, 700, map[string]string{"app": "web"})
	for _, pod := range web {
		pod.TopologySpread = []TopologySpreadConstraint{*spread}
	}
	p := basicProblem(append(web, mkPods("batch", 40, 300, nil)...)...)
	placed := func(s *solver) int {
		n := 0
		for _, b := range s.placedOn {
			if b != nil {
				n++
			}
		}
		return n
	}
	wantCanceled := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	}

	t.Run("validate", func(t *testing.T) {
		if err := validateProblem(nil, p); err != nil {
			t.Fatal(err)
		}
		wantCanceled(t, validateProblem(stoppedHalt(), p))
	})
	t.Run("classes", func(t *testing.T) {
		if n := len(classPartition(nil, p)); n != 2 {
			t.Fatalf("%d classes, want 2", n)
		}
		if n := len(classPartition(stoppedHalt(), p)); n != 0 {
			t.Fatalf("a stopped partition has %d classes", n)
		}
		if n := len(resourceNames(stoppedHalt(), p)); n != 0 {
			t.Fatalf("a stopped listing has %d resources", n)
		}
	})
	t.Run("prepare", func(t *testing.T) {
		s, err := newSolverFrom(stoppedHalt(), p, nil)
		if s != nil {
			t.Fatal("a stopped preparation returned a solver")
		}
		wantCanceled(t, err)
	})
	t.Run("place", func(t *testing.T) {
		s := prepared(t, p)
		s.halt = stoppedHalt()
		s.placeAll()
		if n := placed(s); n != 0 {
			t.Fatalf("a stopped placement placed %d pods", n)
		}
		s = prepared(t, p)
		s.placeAll()
		if n := placed(s); n != len(p.Pods) {
			t.Fatalf("placed %d of %d pods", n, len(p.Pods))
		}
	})
	t.Run("caches", func(t *testing.T) {
		filled := func(h *halt) int {
			s := prepared(t, p)
			s.halt = h
			s.fillCaches()
			n := 0
			for _, c := range s.classes {
				for _, lv := range c.levels {
					n += len(lv.cands)
				}
			}
			return n
		}
		if filled(nil) == 0 {
			t.Fatal("fillCaches filled nothing")
		}
		if n := filled(stoppedHalt()); n != 0 {
			t.Fatalf("a stopped fillCaches filled %d caches", n)
		}
	})
	t.Run("repack", func(t *testing.T) {
		// The first small problem repacking improves.
		for seed := uint64(1); seed <= 60; seed++ {
			q := repackProblem(seed)
			run := func(h *halt) (before, after float64) {
				s := prepared(t, q)
				s.placeAll()
				s.halt = h
				before = s.placementCost()
				s.repack(time.Time{})
				return before, s.placementCost()
			}
			if before, after := run(nil); after >= before-1e-9 {
				continue
			}
			if before, after := run(stoppedHalt()); after != before {
				t.Fatalf("seed %d: a stopped repack changed the cost from %.4f to %.4f", seed, before, after)
			}
			return
		}
		t.Fatal("no problem that repacking improves")
	})
	t.Run("bound and plan", func(t *testing.T) {
		s := prepared(t, p)
		s.placeAll()
		if lb := s.lowerBound(); lb <= 0 {
			t.Fatalf("lower bound %v", lb)
		}
		if len(s.plan().NodeClaims) == 0 {
			t.Fatal("no claims planned")
		}
		s.halt = stoppedHalt()
		if lb := s.lowerBound(); lb != 0 {
			t.Fatalf("a stopped bound is %v", lb)
		}
		if n := len(s.plan().NodeClaims); n != 0 {
			t.Fatalf("a stopped plan has %d claims", n)
		}
	})
	t.Run("improve", func(t *testing.T) {
		wantCanceled(t, improve(stoppedHalt(), p).err)
		q := *p
		q.Options.ImproveRounds = 2
		wantCanceled(t, improve(stoppedHalt(), &q).err)
	})
	t.Run("pattern", func(t *testing.T) {
		q := basicProblem(mkPods("plain", 30, 700, nil)...)
		base := prepared(t, q)
		base.fillCaches()
		if _, ok := runPattern(nil, q, base, time.Now().Add(10*time.Second)); !ok {
			t.Fatal("the pattern strategy did not run")
		}
		if _, ok := runPattern(stoppedHalt(), q, base, time.Now().Add(10*time.Second)); ok {
			t.Fatal("a stopped pattern strategy returned a plan")
		}
	})
	t.Run("consolidate", func(t *testing.T) {
		q := &Problem{NodePools: p.NodePools, InstanceTypes: p.InstanceTypes, Nodes: []Node{{Name: "n1", NodePool: "default",
			Allocatable: res(2000, 4), Pods: mkPods("on-n1", 2, 500, nil)}}}
		if _, err := newConsolidator(nil, q, []int{0}, map[string]bool{}); err != nil {
			t.Fatal(err)
		}
		c, err := newConsolidator(stoppedHalt(), q, []int{0}, map[string]bool{})
		if c != nil {
			t.Fatal("a stopped consolidator was made")
		}
		wantCanceled(t, err)
	})
}
