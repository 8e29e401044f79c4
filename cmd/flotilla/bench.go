package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-io/flotilla/internal/version"
	"github.com/flotilla-io/flotilla/internal/workload"
)

const benchUsage = `Usage:
  flotilla bench [--workloads LIST] [--runs N] [--improve-budget D] [--seed S]
                 [--shared-data DIR] [--in-process] [-o text|json]

Solves the benchmark workloads and prints one row per workload: pods, new
nodes, their cost, the solver's proven lower bound on that cost, the ratio
of the two, the median Solve time, pods per second and the peak Go heap
during the solve. Building a workload is not timed. See docs/bench.md.

Workloads (all by default, in this order):
  karpenter-mix-1000, karpenter-mix-5000, karpenter-mix-20000
                            Karpenter's scheduling benchmark mix, built as
                            its benchmark code builds it, against its 400
                            fake instance types.
  trace                     The Alibaba GPU trace (8,152 pods) against the
                            EC2 us-east-1 catalog, from shared/data; skipped
                            with a note when that directory is not found.
  karpenter-mix-100000-800-types
                            100,000 pods of the same mix against 800
                            instance types.
  karpenter-mix-selfselect-1000, -5000, -20000
                            The earlier, simplified model of the mix (each
                            share selects itself, owned pods, no per-node
                            overhead) the figures before issue 17 used.

Flags:
  --workloads LIST          Comma-separated subset of the workloads.
  --runs N                  Solves per workload (default 3): the time is the
                            median, the cost figures are those of the last.
  --improve-budget D        Wall-clock cap on Solve's further placement
                            strategies and repacking (default 0: no cap,
                            the solver's default effort, counted in work:
                            2 strategies, more while each beats all before
                            it, then repacking; negative: the first
                            strategy only). With a cap, as many strategies
                            run as fit in it; 1s or more also runs the
                            pattern strategy (the trace needs about 6m).
  --seed S                  Seed of the karpenter-mix workloads (default 42).
  --shared-data DIR         Directory of the trace data (default: the first
                            shared/data found in the working directory or
                            one of its parents).
  --in-process              Run every workload in this process instead of
                            one child process per workload (faster to
                            start; the heap of one workload can then
                            linger into the next).
  -o, --output text|json    Output format (default text).

Exit status: 0 when every workload ran (or was skipped with a note), 2 on
bad flags, 1 when a workload failed.
`

// benchChildEnv is set in the environment of the child processes. The
// installed binary needs nothing more than the hidden --child flag; a test
// binary re-executed as the child uses it to run the bench command instead
// of the tests.
const benchChildEnv = "FLOTILLA_BENCH_CHILD"

type benchFlags struct {
	workloads     []string
	runs          int
	improveBudget time.Duration
	seed          int64
	sharedData    string
	sharedGiven   bool
	inProcess     bool
	output        string
	child         string // hidden: run this one workload, print its result as JSON
}

func parseBenchFlags(args []string) (*benchFlags, error) {
	f := &benchFlags{}
	var list string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&list, "workloads", strings.Join(workload.BenchWorkloadNames(), ","), "")
	fs.IntVar(&f.runs, "runs", 3, "")
	fs.Var(budgetFlag{&f.improveBudget}, "improve-budget", "")
	fs.Int64Var(&f.seed, "seed", workload.DefaultBenchSeed, "")
	fs.StringVar(&f.sharedData, "shared-data", "", "")
	fs.BoolVar(&f.inProcess, "in-process", false, "")
	fs.StringVar(&f.output, "o", "text", "")
	fs.StringVar(&f.output, "output", "text", "")
	fs.StringVar(&f.child, "child", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	fs.Visit(func(fl *flag.Flag) { f.sharedGiven = f.sharedGiven || fl.Name == "shared-data" })
	if fs.NArg() > 0 {
		return nil, &usageError{fmt.Sprintf("unexpected argument %q: choose workloads with --workloads", fs.Arg(0))}
	}
	var err error
	if f.workloads, err = parseWorkloads(list); err != nil {
		return nil, err
	}
	if f.child != "" {
		f.workloads = []string{f.child}
	}
	switch {
	case f.runs < 1 || f.runs > 1000:
		return nil, &usageError{fmt.Sprintf("--runs %d: use 1 to 1000", f.runs)}
	case f.improveBudget > 10*time.Minute:
		return nil, &usageError{fmt.Sprintf("--improve-budget %v: at most 10m", f.improveBudget)}
	case f.output != "text" && f.output != "json":
		return nil, &usageError{fmt.Sprintf("-o %q: use text or json", f.output)}
	}
	return f, resolveSharedData(f)
}

// parseWorkloads splits a comma-separated list of workload names, checking
// every name and dropping repeats.
func parseWorkloads(list string) ([]string, error) {
	known := map[string]bool{}
	for _, n := range workload.BenchWorkloadNames() {
		known[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		if !known[n] {
			return nil, &usageError{fmt.Sprintf("--workloads: unknown workload %q: use %s", n, strings.Join(workload.BenchWorkloadNames(), ", "))}
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, &usageError{"--workloads: no workload given"}
	}
	return out, nil
}

// findSharedData looks for shared/data; tests replace it, since what lies
// above their temporary directory is not theirs to know.
var findSharedData = workload.FindSharedData

// resolveSharedData checks a --shared-data directory, or looks for
// shared/data above the working directory when none was given (leaving
// sharedData empty when there is none: the trace is then skipped).
func resolveSharedData(f *benchFlags) error {
	if !f.sharedGiven {
		f.sharedData, _ = findSharedData()
		return nil
	}
	st, err := os.Stat(f.sharedData)
	if err != nil {
		return &usageError{fmt.Sprintf("--shared-data %s: %v", f.sharedData, err)}
	}
	if !st.IsDir() {
		return &usageError{fmt.Sprintf("--shared-data %s: not a directory", f.sharedData)}
	}
	return nil
}

// benchReport is the output of `flotilla bench -o json`.
type benchReport struct {
	Machine benchMachine `json:"machine"`
	Runs    int          `json:"runs"`
	// ImproveBudgetSeconds is the --improve-budget (0: solver default).
	ImproveBudgetSeconds float64 `json:"improveBudgetSeconds"`
	Seed                 int64   `json:"seed"`
	// PeakMeasurement is "child-process" or "in-process".
	PeakMeasurement string                  `json:"peakMeasurement"`
	Results         []*workload.BenchResult `json:"results"`
	Skipped         []benchSkipped          `json:"skipped"`
}

// benchMachine describes where the figures were measured.
type benchMachine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"goVersion"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"numCPU"`
}

// benchSkipped is a workload that did not run, with why.
type benchSkipped struct {
	Workload string `json:"workload"`
	Reason   string `json:"reason"`
}

// benchError is a workload that failed; code is the exit status to return.
type benchError struct {
	code int
	err  error
}

func (e *benchError) Error() string { return e.err.Error() }

func (e *benchError) Unwrap() error { return e.err }

func runBench(args []string, stdout, stderr io.Writer) int {
	f, err := parseBenchFlags(args)
	if err != nil {
		return flagError("bench", benchUsage, err, stdout, stderr)
	}
	if f.child != "" {
		return runBenchChild(f, stdout, stderr)
	}
	rep := &benchReport{
		Machine: benchMachine{
			GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(),
			GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		},
		Runs:                 f.runs,
		ImproveBudgetSeconds: f.improveBudget.Seconds(),
		Seed:                 f.seed,
		PeakMeasurement:      "child-process",
		Results:              []*workload.BenchResult{},
		Skipped:              []benchSkipped{},
	}
	if f.inProcess {
		rep.PeakMeasurement = "in-process"
	}
	text := f.output == "text"
	if text {
		writeBenchHeader(stdout, rep)
	}
	for _, name := range f.workloads {
		if name == workload.BenchTrace && f.sharedData == "" {
			s := benchSkipped{Workload: name, Reason: "shared data not found (no shared/data in the working directory or its parents); use --shared-data DIR"}
			rep.Skipped = append(rep.Skipped, s)
			if text {
				fmt.Fprintf(stdout, "%-*s skipped: %s\n", benchNameWidth, s.Workload, s.Reason)
			}
			continue
		}
		res, err := benchOne(f, name, stderr)
		if err != nil {
			fmt.Fprintln(stderr, oneLine("flotilla bench: "+err.Error()))
			var be *benchError
			if errors.As(err, &be) {
				return be.code
			}
			return exitInternal
		}
		rep.Results = append(rep.Results, res)
		if text {
			writeBenchRow(stdout, res)
		}
	}
	if text {
		writeBenchNotes(stdout, rep)
		return exitOK
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla bench: writing the report: "+err.Error()))
		return exitInternal
	}
	return exitOK
}

// benchOne runs one workload, in this process or in a child.
func benchOne(f *benchFlags, name string, stderr io.Writer) (*workload.BenchResult, error) {
	if f.inProcess {
		return benchInProcess(f, name)
	}
	return benchInChild(f, name, stderr)
}

func benchInProcess(f *benchFlags, name string) (*workload.BenchResult, error) {
	p, err := workload.BuildBenchWorkload(name, f.seed, f.sharedData)
	if err != nil {
		return nil, &benchError{code: exitBadInput, err: err}
	}
	res, err := workload.RunBench(name, p, workload.BenchOptions{Runs: f.runs, ImproveBudget: f.improveBudget})
	if err != nil {
		return nil, &benchError{code: exitInternal, err: err}
	}
	return res, nil
}

// runBenchChild runs the one workload of --child and prints its result as
// JSON for the parent.
func runBenchChild(f *benchFlags, stdout, stderr io.Writer) int {
	res, err := benchInProcess(f, f.child)
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla bench: "+err.Error()))
		var be *benchError
		if errors.As(err, &be) {
			return be.code
		}
		return exitInternal
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla bench: writing the result: "+err.Error()))
		return exitInternal
	}
	return exitOK
}

// benchInChild re-executes this binary as `bench --child NAME` so the
// workload has a process, and so a heap and a peak RSS, of its own.
func benchInChild(f *benchFlags, name string, stderr io.Writer) (*workload.BenchResult, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := []string{
		"bench", "--child", name,
		"--runs", strconv.Itoa(f.runs),
		"--improve-budget", f.improveBudget.String(),
		"--seed", strconv.FormatInt(f.seed, 10),
	}
	if f.sharedData != "" {
		args = append(args, "--shared-data", f.sharedData)
	}
	var out bytes.Buffer
	cmd := exec.Command(exe, args...) //nolint:gosec // G204: re-executes this very binary with flags it built
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	cmd.Stdout = &out
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == exitBadInput {
			return nil, &benchError{code: exitBadInput, err: fmt.Errorf("workload %s: %w", name, err)}
		}
		return nil, fmt.Errorf("workload %s: child process %s: %w", name, exe, err)
	}
	var res workload.BenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("workload %s: reading the child's result: %w", name, err)
	}
	return &res, nil
}

// benchNameWidth is the width of the workload column.
const benchNameWidth = 30

func writeBenchHeader(w io.Writer, rep *benchReport) {
	m := rep.Machine
	budget := "solver default (counted in work: 2 strategies, more while each improves, repacking; no time cap)"
	if rep.ImproveBudgetSeconds != 0 {
		budget = time.Duration(rep.ImproveBudgetSeconds * float64(time.Second)).String()
	}
	where := "each workload in its own process"
	if rep.PeakMeasurement == "in-process" {
		where = "all workloads in one process"
	}
	v := version.Get()
	fmt.Fprintf(w, "flotilla bench %s commit %s: %s/%s %s, GOMAXPROCS=%d, %d CPUs; seconds = median Solve time of %d %s; improve budget %s; seed %d; peak MB = peak Go heap during Solve, %s\n",
		v.Version, v.CommitString(), m.GOOS, m.GOARCH, m.GoVersion, m.GOMAXPROCS, m.NumCPU,
		rep.Runs, plural(rep.Runs, "run", "runs"), budget, rep.Seed, where)
	fmt.Fprintf(w, "%-*s %7s %6s %11s %11s %6s %8s %8s %8s\n", benchNameWidth,
		"WORKLOAD", "PODS", "NODES", "$/H", "BOUND $/H", "RATIO", "SECONDS", "PODS/S", "PEAK MB")
}

func writeBenchRow(w io.Writer, r *workload.BenchResult) {
	fmt.Fprintf(w, "%-*s %7d %6d %11.2f %11.2f %6.3f %8.3f %8.0f %8.1f\n", benchNameWidth,
		r.Workload, r.Pods, r.Nodes, r.CostPerHour, r.LowerBoundPerHour, r.Ratio,
		r.Seconds, r.PodsPerSecond, float64(r.PeakHeapBytes)/(1<<20))
}

// writeBenchNotes explains what the table leaves out: unschedulable pods
// (not in the cost nor the bound).
func writeBenchNotes(w io.Writer, rep *benchReport) {
	for _, r := range rep.Results {
		if r.Unschedulable > 0 {
			fmt.Fprintf(w, "note: %s: %d of %d pods unschedulable; $/h and the bound cover the %d placed\n",
				r.Workload, r.Unschedulable, r.Pods, r.Pods-r.Unschedulable)
		}
	}
}
