package workload

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
)

func TestBuildBenchWorkload(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pods, types int
	}{
		{BenchMix1000, 1000, 400},
		{BenchMix5000, 5000, 400},
		{BenchMix20000, 20000, 400},
		{BenchMix100000, 100000, 800},
		{BenchSelfSelect1000, 1000, 400},
		{BenchSelfSelect5000, 5000, 400},
		{BenchSelfSelect20000, 20000, 400},
	} {
		p, err := BuildBenchWorkload(tc.name, DefaultBenchSeed, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.Pods) != tc.pods || len(p.InstanceTypes) != tc.types {
			t.Errorf("%s: %d pods, %d types; want %d, %d", tc.name, len(p.Pods), len(p.InstanceTypes), tc.pods, tc.types)
		}
		// The karpenter-mix-n names are Karpenter's benchmark (bare pods,
		// 100m CPU reserved per node); selfselect the earlier model.
		faithful := !strings.Contains(tc.name, "selfselect")
		if bare := p.Pods[0].Owner == ""; bare != faithful {
			t.Errorf("%s: first pod's owner %q", tc.name, p.Pods[0].Owner)
		}
		if reserved := p.InstanceTypes[0].Allocatable[solver.ResourceCPU] == 900; reserved != faithful {
			t.Errorf("%s: fake-it-0 allocatable %v", tc.name, p.InstanceTypes[0].Allocatable)
		}
	}
	if _, err := BuildBenchWorkload(BenchTrace, 1, ""); !errors.Is(err, ErrNoSharedData) {
		t.Errorf("trace without shared data: %v", err)
	}
	if _, err := BuildBenchWorkload(BenchTrace, 1, t.TempDir()); err == nil {
		t.Error("trace from an empty directory: no error")
	}
	if _, err := BuildBenchWorkload("karpenter-mix-7", 1, ""); !errors.Is(err, ErrUnknownWorkload) {
		t.Errorf("unknown name: %v", err)
	}
	if got := BenchWorkloadNames(); len(got) != 8 || got[3] != BenchTrace || got[5] != BenchSelfSelect1000 {
		t.Errorf("names %v", got)
	}
}

func TestRunBench(t *testing.T) {
	p := KarpenterMix(500, DefaultBenchSeed)
	res, err := RunBench("mix-500", p, BenchOptions{Runs: 3, ImproveBudget: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Options.ImproveBudget != -1 {
		t.Errorf("improve budget %v not set on the problem", p.Options.ImproveBudget)
	}
	if res.Workload != "mix-500" || res.Pods != 500 || res.InstanceTypes != 400 || len(res.RunSeconds) != 3 {
		t.Fatalf("result %+v", res)
	}
	if res.Seconds != median(res.RunSeconds) || res.PodsPerSecond != 500/res.Seconds {
		t.Errorf("seconds %v of runs %v, pods/s %v", res.Seconds, res.RunSeconds, res.PodsPerSecond)
	}
	if res.Nodes == 0 || res.CostPerHour <= 0 || res.LowerBoundPerHour <= 0 || res.Ratio < 1 {
		t.Errorf("plan figures %+v", res)
	}
	if res.ProblemHeapBytes == 0 || res.PeakHeapBytes <= res.ProblemHeapBytes {
		t.Errorf("peak heap %d, problem %d", res.PeakHeapBytes, res.ProblemHeapBytes)
	}
	if _, err := RunBench("x", p, BenchOptions{}); err == nil {
		t.Error("0 runs: no error")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median(%v) reordered its input to %v", tc.in, in)
			}
		}
	}
}

var sink [][]byte

// TestHeapPeak allocates 64 MiB while sampling and expects the peak to see
// most of it.
func TestHeapPeak(t *testing.T) {
	runtime.GC()
	base := heapObjectBytes()
	h := NewHeapPeak()
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 1<<20))
		time.Sleep(100 * time.Microsecond)
	}
	peak := h.Stop()
	sink = nil
	if peak < base+48<<20 {
		t.Errorf("peak %d MiB, base %d MiB: 64 MiB allocated", peak>>20, base>>20)
	}
	if runtime.GOOS == "linux" && PeakRSS() < 48<<20 {
		t.Errorf("peak RSS %d MiB after 64 MiB allocated", PeakRSS()>>20)
	}
}
