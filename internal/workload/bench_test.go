package workload_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// BenchmarkSolve times solver.Solve on the workloads of flotilla bench
// (the karpenter-mix ones built by KarpenterBenchmarkMix) and on the
// trace. Besides ns/op, B/op and allocs/op it reports pods/s, the number of
// new nodes, their cost ($/h) and the number of unschedulable pods of the
// last plan, its lower bound and their ratio. The problem is built outside
// the timed loop. FLOTILLA_IMPROVE_BUDGET (a Go duration, e.g. "-1ns" for
// the first strategy only) overrides the default improvement budget.
func BenchmarkSolve(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("karpenter-mix-%d", n), func(b *testing.B) {
			benchmarkSolve(b, workload.KarpenterBenchmarkMix(n, 42))
		})
	}
	b.Run("karpenter-mix-100000-800-types", func(b *testing.B) {
		p := workload.KarpenterBenchmarkMix(100000, 42)
		p.InstanceTypes = workload.KarpenterBenchmarkCatalogN(800)
		benchmarkSolve(b, p)
	})
	b.Run("trace", func(b *testing.B) {
		dir, ok := workload.FindSharedData()
		if !ok {
			b.Skip("shared/data not found above the working directory (expected ../shared/data beside the repository root); skipping the trace benchmark")
		}
		p, err := workload.Trace(dir)
		if err != nil {
			b.Fatalf("loading trace from %s: %v", dir, err)
		}
		benchmarkSolve(b, p)
	})
}

func benchmarkSolve(b *testing.B, p *solver.Problem) {
	b.ReportAllocs()
	var (
		plan       *solver.Plan
		err        error
		iterations int
		before     runtime.MemStats
		after      runtime.MemStats
	)
	if v := os.Getenv("FLOTILLA_IMPROVE_BUDGET"); v != "" {
		d, perr := time.ParseDuration(v)
		if perr != nil {
			b.Fatalf("FLOTILLA_IMPROVE_BUDGET: %v", perr)
		}
		p.Options.ImproveBudget = d
	}
	if v := os.Getenv("FLOTILLA_IMPROVE_ROUNDS"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			b.Fatalf("FLOTILLA_IMPROVE_ROUNDS: %v", perr)
		}
		p.Options.ImproveRounds = n
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := workload.NewHeapPeak()
	cpu0 := workload.ProcessCPUTime()
	for b.Loop() {
		plan, err = solver.Solve(b.Context(), p)
		if err != nil {
			b.Fatalf("Solve: %v", err)
		}
		iterations++
	}
	cpuUsed := workload.ProcessCPUTime() - cpu0
	peakBytes := peak.Stop()
	runtime.ReadMemStats(&after)
	if iterations == 0 || plan == nil {
		return
	}
	elapsed := b.Elapsed().Seconds()
	if elapsed > 0 {
		b.ReportMetric(float64(len(p.Pods))*float64(iterations)/elapsed, "pods/s")
	}
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(iterations), "B/op")
	b.ReportMetric(float64(len(plan.NodeClaims)), "nodes")
	b.ReportMetric(plan.CostPerHour, "$/h")
	b.ReportMetric(plan.LowerBoundPerHour, "bound$/h")
	if plan.LowerBoundPerHour > 0 {
		b.ReportMetric(plan.CostPerHour/plan.LowerBoundPerHour, "ratio")
	}
	b.ReportMetric(float64(len(plan.Unschedulable)), "unschedulable")
	b.ReportMetric(float64(peakBytes)/(1<<20), "peakMB")
	b.ReportMetric(cpuUsed.Seconds()*1000/float64(iterations), "cpu-ms/op")
}
