package workload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Names of the benchmark workloads BuildBenchWorkload knows, in the order
// BenchWorkloadNames lists them.
const (
	BenchMix1000   = "karpenter-mix-1000"
	BenchMix5000   = "karpenter-mix-5000"
	BenchMix20000  = "karpenter-mix-20000"
	BenchTrace     = "trace"
	BenchMix100000 = "karpenter-mix-100000-800-types"
	// The self-selecting model of the mix the figures before issue 17
	// were measured on (KarpenterMix).
	BenchSelfSelect1000  = "karpenter-mix-selfselect-1000"
	BenchSelfSelect5000  = "karpenter-mix-selfselect-5000"
	BenchSelfSelect20000 = "karpenter-mix-selfselect-20000"
)

// BenchSyntheticInstanceTypes is the catalog size of BenchMix100000.
const BenchSyntheticInstanceTypes = 800

// DefaultBenchSeed is the seed the published KarpenterMix figures use.
const DefaultBenchSeed = 42

// BenchWorkloadNames returns the names of the benchmark workloads, in the
// order `flotilla bench` runs them.
func BenchWorkloadNames() []string {
	return []string{BenchMix1000, BenchMix5000, BenchMix20000, BenchTrace, BenchMix100000,
		BenchSelfSelect1000, BenchSelfSelect5000, BenchSelfSelect20000}
}

// ErrUnknownWorkload is wrapped by BuildBenchWorkload for a name that is
// not one of BenchWorkloadNames.
var ErrUnknownWorkload = errors.New("unknown workload")

// ErrNoSharedData is wrapped by BuildBenchWorkload when the trace workload
// is asked for without a shared data directory.
var ErrNoSharedData = errors.New("shared data directory not found")

// BuildBenchWorkload builds the named benchmark workload:
// KarpenterBenchmarkMix(n, seed) for karpenter-mix-n,
// KarpenterBenchmarkMix(100000, seed) against
// KarpenterBenchmarkCatalogN(800) for karpenter-mix-100000-800-types,
// KarpenterMix(n, seed) for karpenter-mix-selfselect-n, and
// Trace(sharedData) for trace (seed unused; sharedData "" wraps
// ErrNoSharedData).
func BuildBenchWorkload(name string, seed int64, sharedData string) (*solver.Problem, error) {
	switch name {
	case BenchMix1000:
		return KarpenterBenchmarkMix(1000, seed), nil
	case BenchMix5000:
		return KarpenterBenchmarkMix(5000, seed), nil
	case BenchMix20000:
		return KarpenterBenchmarkMix(20000, seed), nil
	case BenchMix100000:
		p := KarpenterBenchmarkMix(100000, seed)
		p.InstanceTypes = KarpenterBenchmarkCatalogN(BenchSyntheticInstanceTypes)
		return p, nil
	case BenchSelfSelect1000:
		return KarpenterMix(1000, seed), nil
	case BenchSelfSelect5000:
		return KarpenterMix(5000, seed), nil
	case BenchSelfSelect20000:
		return KarpenterMix(20000, seed), nil
	case BenchTrace:
		if sharedData == "" {
			return nil, fmt.Errorf("workload %s: %w", name, ErrNoSharedData)
		}
		p, err := Trace(sharedData)
		if err != nil {
			return nil, fmt.Errorf("workload %s: loading %s: %w", name, sharedData, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownWorkload, name, strings.Join(BenchWorkloadNames(), ", "))
}

// BenchOptions tune RunBench.
type BenchOptions struct {
	// Runs is the number of timed solves (at least 1).
	Runs int
	// ImproveBudget is set as the problem's Options.ImproveBudget: 0 is
	// the solver's default, negative the first strategy only.
	ImproveBudget time.Duration
}

// BenchResult is one workload's row of a benchmark.
type BenchResult struct {
	Workload      string `json:"workload"`
	Pods          int    `json:"pods"`
	InstanceTypes int    `json:"instanceTypes"`
	// Nodes, Unschedulable, CostPerHour, LowerBoundPerHour and Ratio
	// describe the plan of the last run.
	Nodes             int     `json:"nodes"`
	Unschedulable     int     `json:"unschedulable"`
	CostPerHour       float64 `json:"costPerHour"`
	LowerBoundPerHour float64 `json:"lowerBoundPerHour"`
	// Ratio is CostPerHour / LowerBoundPerHour (0 without a bound).
	Ratio float64 `json:"ratio"`
	// Seconds is the median wall time of the solver.Solve calls; RunSeconds
	// lists every run's. Building the problem is not timed.
	Seconds    float64   `json:"seconds"`
	RunSeconds []float64 `json:"runSeconds"`
	// PodsPerSecond is Pods / Seconds.
	PodsPerSecond float64 `json:"podsPerSecond"`
	// CPUSeconds is the process's user+system CPU time per run (0 where
	// the platform does not report it): on a shared machine it shows the
	// work done whatever the load.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakHeapBytes is the largest Go heap (live and not yet swept
	// objects, runtime/metrics /memory/classes/heap/objects:bytes) seen
	// during any of the Solve calls, the problem itself included;
	// ProblemHeapBytes is the live heap after building the problem and a
	// garbage collection, before the first solve.
	PeakHeapBytes    uint64 `json:"peakHeapBytes"`
	ProblemHeapBytes uint64 `json:"problemHeapBytes"`
	// PeakRSSBytes is the process's peak resident set size (Linux VmHWM,
	// building the problem included; 0 where unknown). It is meaningful
	// when the workload ran alone in its process.
	PeakRSSBytes uint64 `json:"peakRSSBytes"`
}

// RunBench solves p opts.Runs times and reports the median Solve time, the
// plan of the last run and the peak heap during the solves. The problem is
// collected before each run (outside the timing) so every run starts from
// the same heap.
func RunBench(name string, p *solver.Problem, opts BenchOptions) (*BenchResult, error) {
	if opts.Runs < 1 {
		return nil, fmt.Errorf("runs %d: must be at least 1", opts.Runs)
	}
	p.Options.ImproveBudget = opts.ImproveBudget
	runtime.GC()
	res := &BenchResult{
		Workload:         name,
		Pods:             len(p.Pods),
		InstanceTypes:    len(p.InstanceTypes),
		ProblemHeapBytes: heapObjectBytes(),
	}
	var cpu time.Duration
	for i := 0; i < opts.Runs; i++ {
		// Only the figures of a plan are kept, so the next run starts
		// from the problem's heap alone.
		runtime.GC()
		peak := NewHeapPeak()
		cpu0 := ProcessCPUTime()
		start := time.Now()
		plan, err := solver.Solve(context.Background(), p)
		elapsed := time.Since(start)
		cpu += ProcessCPUTime() - cpu0
		res.PeakHeapBytes = max(res.PeakHeapBytes, peak.Stop())
		if err != nil {
			return nil, fmt.Errorf("workload %s: solve: %w", name, err)
		}
		res.RunSeconds = append(res.RunSeconds, elapsed.Seconds())
		res.setPlan(plan)
	}
	res.Seconds = median(res.RunSeconds)
	if res.Seconds > 0 {
		res.PodsPerSecond = float64(res.Pods) / res.Seconds
	}
	res.CPUSeconds = cpu.Seconds() / float64(opts.Runs)
	res.PeakRSSBytes = PeakRSS()
	return res, nil
}

// setPlan records the figures of plan.
func (r *BenchResult) setPlan(plan *solver.Plan) {
	r.Nodes = len(plan.NodeClaims)
	r.Unschedulable = len(plan.Unschedulable)
	r.CostPerHour = plan.CostPerHour
	r.LowerBoundPerHour = plan.LowerBoundPerHour
	r.Ratio = 0
	if plan.LowerBoundPerHour > 0 {
		r.Ratio = plan.CostPerHour / plan.LowerBoundPerHour
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

// heapObjectBytes returns the bytes of live and not yet swept heap objects.
func heapObjectBytes() uint64 {
	sample := []metrics.Sample{{Name: heapObjectsMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// HeapPeak samples the bytes of live and not yet swept heap objects every
// millisecond (runtime/metrics, no stop-the-world) and keeps the maximum:
// the peak heap of the code that runs between NewHeapPeak and Stop. The
// heap only grows between collections, so a sample at most a millisecond
// before each collection sees its top.
type HeapPeak struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

// NewHeapPeak starts sampling.
func NewHeapPeak() *HeapPeak {
	h := &HeapPeak{done: make(chan struct{}), peak: heapObjectBytes()}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			h.peak = max(h.peak, heapObjectBytes())
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends the sampling and returns the peak in bytes, a last sample
// included.
func (h *HeapPeak) Stop() uint64 {
	close(h.done)
	h.wg.Wait()
	return max(h.peak, heapObjectBytes())
}

// PeakRSS returns the process's peak resident set size (VmHWM of
// /proc/self/status) in bytes, or 0 where it is not available.
func PeakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
