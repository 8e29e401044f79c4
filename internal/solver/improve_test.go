package solver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// effortProblem is a few hundred pods of KarpenterBenchmarkMix's kinds
// (plain, zonal spread over another label, hostname anti-affinity,
// zonal self-affinity) against a catalog in three zones: enough for the
// strategies to disagree.
func effortProblem() *Problem {
	rng := rand.New(rand.NewSource(7)) //nolint:gosec // G404: reproducible test data
	values := []string{"a", "b", "c", "d"}
	var pods []*Pod
	for i := 0; i < 300; i++ {
		p := mkPod(fmt.Sprintf("p-%d", i), []int64{100, 250, 500, 1000, 1500}[rng.Intn(5)])
		p.Requests[ResourceMemory] = []int64{1, 2, 4}[rng.Intn(3)] * gi / 2
		p.Labels = map[string]string{"v": values[rng.Intn(len(values))]}
		switch i % 4 {
		case 1:
			p.TopologySpread = []TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: LabelZone, WhenUnsatisfiable: DoNotSchedule,
				LabelSelector: sel("v", values[rng.Intn(len(values))])}}
		case 2:
			p.Labels = map[string]string{"app": "nginx"}
			p.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "nginx")}}
		case 3:
			v := values[rng.Intn(len(values))]
			p.Labels = map[string]string{"aff": v}
			p.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelZone, LabelSelector: sel("aff", v)}}
		}
		pods = append(pods, p)
	}
	var its []InstanceType
	for size := int64(1); size <= 16; size *= 2 {
		its = append(its, itype(fmt.Sprintf("t-%d", size), size, 2*size, 0.05*float64(size)+0.01, "z1", "z2", "z3"))
	}
	return &Problem{Pods: pods, NodePools: []NodePool{{Name: "default"}}, InstanceTypes: its}
}

// planJSON is the plan as JSON: claims (types, options, zones, pods in
// order), bindings and unschedulable pods.
func planJSON(t *testing.T, pl *Plan) string {
	t.Helper()
	enc, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	return string(enc)
}

// solveWithClock runs the improvement phase of p on the given clock.
func solveWithClock(t *testing.T, p *Problem, clock func() time.Time) *Plan {
	t.Helper()
	h := watch(context.Background())
	defer h.release()
	h.clock = clock
	a := improve(h, p)
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.plan
}

// jumpingClock advances by step on every read, as if every step of the
// solve took that long.
func jumpingClock(step time.Duration) func() time.Time {
	var reads atomic.Int64
	t0 := time.Unix(1_700_000_000, 0)
	return func() time.Time { return t0.Add(time.Duration(reads.Add(1)) * step) }
}

// The default effort is counted in work: the same problem solved on a
// clock that stands still, on one that jumps an hour per read (a machine
// ever so slow, or the race detector), with one CPU and with several,
// gives the same plan, and it is not the first strategy's alone.
func TestDefaultEffortDoesNotDependOnTime(t *testing.T) {
	p := effortProblem()
	frozen := func() time.Time { return time.Unix(1_700_000_000, 0) }
	want := planJSON(t, solveWithClock(t, p, frozen))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for name, clock := range map[string]func() time.Time{"real": time.Now, "jumping": jumpingClock(time.Hour)} {
			if got := planJSON(t, solveWithClock(t, p, clock)); got != want {
				t.Fatalf("GOMAXPROCS %d, %s clock: the plan differs from the frozen clock's", procs, name)
			}
		}
	}
	q := *p
	q.Options.ImproveRounds = DefaultImproveRounds
	if got := planJSON(t, solveWithClock(t, &q, time.Now)); got != want {
		t.Fatal("the default differs from ImproveRounds = DefaultImproveRounds")
	}
	q.Options.ImproveRounds = 1
	first := solveWithClock(t, &q, time.Now)
	if planJSON(t, first) == want {
		t.Fatal("the problem is too easy: the first strategy alone gives the default plan")
	}
	// Solve twice in a row through the public entry point: same plan.
	a, b := mustSolve(t, p), mustSolve(t, p)
	if planJSON(t, a) != planJSON(t, b) {
		t.Fatal("two solves of the same problem differ")
	}
}

// A time cap is read on the solve's clock: when every read finds it
// passed, only the first strategy runs (it always runs to its end) and
// repacking does not start, whatever number of strategies is asked for.
func TestTimeCapStopsFurtherStrategies(t *testing.T) {
	p := effortProblem()
	q := *p
	q.Options.ImproveRounds = 4
	four := planJSON(t, solveWithClock(t, &q, time.Now))
	q.Options.ImproveRounds = 1
	if planJSON(t, solveWithClock(t, &q, time.Now)) == four {
		t.Fatal("the problem is too easy: four strategies find the first one's plan")
	}
	q.Options.ImproveBudget = time.Second
	want := planJSON(t, solveWithClock(t, &q, jumpingClock(time.Hour)))
	for _, rounds := range []int{0, 4} {
		q.Options.ImproveRounds = rounds
		if got := planJSON(t, solveWithClock(t, &q, jumpingClock(time.Hour))); got != want {
			t.Fatalf("rounds %d, the cap long passed: the plan is not the first strategy's", rounds)
		}
	}
}

// A capped halt stops when its parent does or once its deadline passes,
// and says which.
func TestCappedHalt(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := watch(context.Background())
	defer h.release()
	h.clock = func() time.Time { return now }
	c := h.capped(now.Add(time.Second))
	if c.stopped() || c.err() != nil {
		t.Fatal("stopped before its deadline")
	}
	now = now.Add(2 * time.Second)
	if !c.stopped() || !errors.Is(c.err(), errCapReached) {
		t.Fatalf("after its deadline: stopped %v, err %v", c.stopped(), c.err())
	}
	if h.stopped() {
		t.Fatal("the parent stopped with its capped child")
	}
	c = stoppedHalt().capped(now.Add(time.Hour))
	if !c.stopped() || c.err() == nil || errors.Is(c.err(), errCapReached) {
		t.Fatalf("a stopped parent's child: stopped %v, err %v", c.stopped(), c.err())
	}
}

// The default effort goes on while the last strategy beat every one
// before it: fewer unschedulable pods first, then a lower cost.
func TestLastImproved(t *testing.T) {
	at := func(unsched int, cost float64) attempt { return attempt{unsched: unsched, cost: cost} }
	for _, tc := range []struct {
		results []attempt
		want    bool
	}{
		{[]attempt{at(0, 10), at(0, 9)}, true},
		{[]attempt{at(0, 10), at(0, 10)}, false},
		{[]attempt{at(0, 9), at(0, 10)}, false},
		{[]attempt{at(1, 5), at(0, 10)}, true},
		{[]attempt{at(0, 8), at(0, 10), at(0, 9)}, false},
		{[]attempt{at(0, 10), at(0, 12), at(0, 9)}, true},
		{[]attempt{at(0, 10), {err: errCapReached}}, false},
	} {
		if got := lastImproved(tc.results); got != tc.want {
			t.Errorf("lastImproved(%+v) = %v, want %v", tc.results, got, tc.want)
		}
	}
}
