package workload_test

import (
	"reflect"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/verify"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// The solver's plans for the benchmark workloads pass the independent
// checker.
func TestKarpenterMixPlanIsValid(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 250
	}
	for _, tc := range []struct {
		name string
		p    *solver.Problem
	}{
		{"KarpenterBenchmarkMix", workload.KarpenterBenchmarkMix(n, 42)},
		{"KarpenterMix", workload.KarpenterMix(n, 42)},
	} {
		t.Run(tc.name, func(t *testing.T) { checkMixPlan(t, tc.p) })
	}
}

func checkMixPlan(t *testing.T, p *solver.Problem) {
	p.Options.ImproveRounds = 100 // every strategy: the plan must not depend on speed
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.Plan(p, plan); err != nil {
		t.Fatalf("invalid plan for %d pods:\n%v", len(p.Pods), err)
	}
	if plan.LowerBoundPerHour <= 0 || plan.LowerBoundPerHour > plan.CostPerHour {
		t.Fatalf("lower bound %v, cost %v", plan.LowerBoundPerHour, plan.CostPerHour)
	}
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("%d pods unschedulable, first %s: %s", len(plan.Unschedulable), plan.Unschedulable[0].Pod, plan.Unschedulable[0].Reason)
	}
	again, err := solver.Solve(t.Context(), p)
	if err != nil || !reflect.DeepEqual(plan, again) {
		t.Fatalf("a second solve of the same input differs (err %v)", err)
	}
	t.Logf("%d pods: %d nodes, $%.2f/h (bound $%.2f/h), %d unschedulable", len(p.Pods), len(plan.NodeClaims), plan.CostPerHour, plan.LowerBoundPerHour, len(plan.Unschedulable))
}

func TestTracePlanIsValid(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir, ok := workload.FindSharedData()
	if !ok {
		t.Skip("shared/data not found above the working directory (expected ../shared/data beside the repository root)")
	}
	p, err := workload.Trace(dir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.Plan(p, plan); err != nil {
		t.Fatalf("invalid plan for the trace:\n%v", err)
	}
	if plan.LowerBoundPerHour < 5900 || plan.LowerBoundPerHour > plan.CostPerHour {
		t.Fatalf("lower bound %v (want at least 5900), cost %v", plan.LowerBoundPerHour, plan.CostPerHour)
	}
	t.Logf("%d pods: %d nodes, $%.2f/h, %d unschedulable", len(p.Pods), len(plan.NodeClaims), plan.CostPerHour, len(plan.Unschedulable))
}
