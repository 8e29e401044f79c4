package workload_test

import (
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/verify"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// fragmentedTrace packs the trace, removes a third of its pods and
// returns that cluster with a lower bound on what its pods need.
func fragmentedTrace(tb testing.TB) (*solver.Problem, float64) {
	tb.Helper()
	dir, ok := workload.FindSharedData()
	if !ok {
		tb.Skip("shared/data not found above the working directory (expected ../shared/data beside the repository root)")
	}
	p, err := workload.Trace(dir)
	if err != nil {
		tb.Fatal(err)
	}
	p.Options.ImproveRounds = 2 // reproducible: the packing does not depend on speed
	plan, err := solver.Solve(tb.Context(), p)
	if err != nil {
		tb.Fatal(err)
	}
	frag := workload.Fragment(p, plan, 3)
	// The bound on new nodes for the pods that stay bounds any cluster
	// holding them: its nodes come from the same catalog.
	rest := &solver.Problem{NodePools: p.NodePools, InstanceTypes: p.InstanceTypes, Options: solver.Options{ImproveRounds: 1}}
	for i := range frag.Nodes {
		rest.Pods = append(rest.Pods, frag.Nodes[i].Pods...)
	}
	restPlan, err := solver.Solve(tb.Context(), rest)
	if err != nil {
		tb.Fatal(err)
	}
	return frag, restPlan.LowerBoundPerHour
}

// Consolidating the fragmented trace is valid and removes a good part of
// what separates its cost from the lower bound.
func TestFragmentedTraceConsolidation(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	frag, bound := fragmentedTrace(t)
	start := time.Now()
	cp, err := solver.Consolidate(t.Context(), frag)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := verify.Consolidation(frag, cp); err != nil {
		t.Fatalf("invalid consolidation:\n%v", err)
	}
	gap := cp.CurrentCostPerHour - bound
	share := cp.SavingsPerHour / gap
	multi := 0
	for _, a := range cp.Actions {
		if len(a.Nodes) > 1 {
			multi++
		}
	}
	t.Logf("%d nodes, $%.2f/h -> $%.2f/h (saves $%.2f/h), bound $%.2f/h: %.1f%% of the gap; %d actions (%d multi-node), %d blocked, %v",
		len(frag.Nodes), cp.CurrentCostPerHour, cp.NewCostPerHour, cp.SavingsPerHour, bound, 100*share, len(cp.Actions), multi, len(cp.Blocked), took)
	if share < 0.3 {
		t.Fatalf("consolidation closed only %.1f%% of the gap to the bound", 100*share)
	}
}

// BenchmarkConsolidateFragmented times Consolidate on the fragmented
// trace and reports the share of (current cost - lower bound) it saves.
func BenchmarkConsolidateFragmented(b *testing.B) {
	frag, bound := fragmentedTrace(b)
	var cp *solver.ConsolidationPlan
	for b.Loop() {
		var err error
		if cp, err = solver.Consolidate(b.Context(), frag); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(frag.Nodes)), "nodes")
	b.ReportMetric(cp.CurrentCostPerHour, "current$/h")
	b.ReportMetric(cp.NewCostPerHour, "new$/h")
	b.ReportMetric(bound, "bound$/h")
	b.ReportMetric(cp.SavingsPerHour/(cp.CurrentCostPerHour-bound), "gap-share")
}
