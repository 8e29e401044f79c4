package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the bench command re-execute this test binary as its child
// process: with benchChildEnv set and "bench" as the first argument it runs
// the command instead of the tests. With lateMainEnv set to a duration it
// runs main, that long after the process started (see
// TestNoControllerRuntimeLoggerWarning).
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(runBench(os.Args[2:], os.Stdout, os.Stderr))
	}
	if after := os.Getenv(lateMainEnv); after != "" {
		runMainLate(after)
	}
	os.Exit(m.Run())
}

var benchRowRE = regexp.MustCompile(`^karpenter-mix-1000 +1000 +(\d+) +(\d+\.\d{2}) +(\d+\.\d{2}) +(\d+\.\d{3}) +(\d+\.\d{3}) +(\d+) +(\d+\.\d)$`)

// TestBenchText runs karpenter-mix-1000 once in a child process (this test
// binary, re-executed) and checks the header and the row.
func TestBenchText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runBench([]string{"--workloads", "karpenter-mix-1000", "--runs", "1"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header, column names and one row, got:\n%s", stdout.String())
	}
	for _, want := range []string{
		runtime.GOOS + "/" + runtime.GOARCH, runtime.Version(),
		"GOMAXPROCS=" + strconv.Itoa(runtime.GOMAXPROCS(0)), "median Solve time of 1 run;",
		"peak Go heap during Solve, each workload in its own process",
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "WORKLOAD PODS NODES $/H BOUND $/H RATIO SECONDS PODS/S PEAK MB" {
		t.Errorf("column names %q", lines[1])
	}
	m := benchRowRE.FindStringSubmatch(lines[2])
	if m == nil {
		t.Fatalf("row %q does not match %s", lines[2], benchRowRE)
	}
	nodes, _ := strconv.Atoi(m[1])
	cost, _ := strconv.ParseFloat(m[2], 64)
	bound, _ := strconv.ParseFloat(m[3], 64)
	ratio, _ := strconv.ParseFloat(m[4], 64)
	secs, _ := strconv.ParseFloat(m[5], 64)
	peak, _ := strconv.ParseFloat(m[7], 64)
	if nodes == 0 || cost <= 0 || bound <= 0 || bound > cost || ratio < 1 || secs <= 0 || peak <= 0 {
		t.Errorf("implausible row %q", lines[2])
	}
}

// TestBenchJSON runs karpenter-mix-1000 once in this process and checks
// the JSON report, field by field.
func TestBenchJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runBench([]string{"--workloads", " karpenter-mix-1000 ,karpenter-mix-1000", "--runs", "1", "--in-process", "-o", "json", "--improve-budget", "-1ns"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var rep struct {
		Machine struct {
			GOOS       string `json:"goos"`
			GOARCH     string `json:"goarch"`
			GoVersion  string `json:"goVersion"`
			GOMAXPROCS int    `json:"gomaxprocs"`
			NumCPU     int    `json:"numCPU"`
		} `json:"machine"`
		Runs                 int     `json:"runs"`
		ImproveBudgetSeconds float64 `json:"improveBudgetSeconds"`
		Seed                 int64   `json:"seed"`
		PeakMeasurement      string  `json:"peakMeasurement"`
		Results              []struct {
			Workload          string    `json:"workload"`
			Pods              int       `json:"pods"`
			InstanceTypes     int       `json:"instanceTypes"`
			Nodes             int       `json:"nodes"`
			Unschedulable     int       `json:"unschedulable"`
			CostPerHour       float64   `json:"costPerHour"`
			LowerBoundPerHour float64   `json:"lowerBoundPerHour"`
			Ratio             float64   `json:"ratio"`
			Seconds           float64   `json:"seconds"`
			RunSeconds        []float64 `json:"runSeconds"`
			PodsPerSecond     float64   `json:"podsPerSecond"`
			CPUSeconds        float64   `json:"cpuSeconds"`
			PeakHeapBytes     uint64    `json:"peakHeapBytes"`
			ProblemHeapBytes  uint64    `json:"problemHeapBytes"`
			PeakRSSBytes      uint64    `json:"peakRSSBytes"`
		} `json:"results"`
		Skipped []struct {
			Workload string `json:"workload"`
			Reason   string `json:"reason"`
		} `json:"skipped"`
	}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decoding the report: %v", err)
	}
	m := rep.Machine
	if m.GOOS != runtime.GOOS || m.GOARCH != runtime.GOARCH || m.GoVersion != runtime.Version() || m.GOMAXPROCS != runtime.GOMAXPROCS(0) || m.NumCPU != runtime.NumCPU() {
		t.Errorf("machine %+v", m)
	}
	if rep.Runs != 1 || rep.ImproveBudgetSeconds >= 0 || rep.Seed != 42 || rep.PeakMeasurement != "in-process" || len(rep.Skipped) != 0 {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("want one result (the repeated name dropped), got %+v", rep.Results)
	}
	r := rep.Results[0]
	switch {
	case r.Workload != "karpenter-mix-1000" || r.Pods != 1000 || r.InstanceTypes != 400:
		t.Errorf("workload %q, %d pods, %d types", r.Workload, r.Pods, r.InstanceTypes)
	case r.Nodes == 0 || r.Unschedulable != 0 || r.CostPerHour <= 0:
		t.Errorf("plan: %d nodes, %d unschedulable, $%v/h", r.Nodes, r.Unschedulable, r.CostPerHour)
	case r.LowerBoundPerHour <= 0 || r.LowerBoundPerHour > r.CostPerHour || r.Ratio != r.CostPerHour/r.LowerBoundPerHour:
		t.Errorf("bound $%v/h, cost $%v/h, ratio %v", r.LowerBoundPerHour, r.CostPerHour, r.Ratio)
	case len(r.RunSeconds) != 1 || r.Seconds != r.RunSeconds[0] || r.Seconds <= 0 || r.PodsPerSecond != 1000/r.Seconds:
		t.Errorf("seconds %v, runs %v, pods/s %v", r.Seconds, r.RunSeconds, r.PodsPerSecond)
	case r.ProblemHeapBytes == 0 || r.PeakHeapBytes < r.ProblemHeapBytes:
		t.Errorf("peak heap %d below the problem's %d", r.PeakHeapBytes, r.ProblemHeapBytes)
	case runtime.GOOS == "linux" && r.PeakRSSBytes < r.ProblemHeapBytes:
		t.Errorf("peak RSS %d below the problem's heap %d", r.PeakRSSBytes, r.ProblemHeapBytes)
	}
}

// TestBenchTraceSkipped checks the trace is skipped with a note, not an
// error, when no shared/data is above the working directory.
func TestBenchTraceSkipped(t *testing.T) {
	// Whatever folders lie above the test's directory, there is no shared
	// data here.
	defer func(find func() (string, bool)) { findSharedData = find }(findSharedData)
	findSharedData = func() (string, bool) { return "", false }
	var stdout, stderr bytes.Buffer
	if code := runBench([]string{"--workloads", "trace"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !regexp.MustCompile(`(?m)^trace +skipped: shared data not found .*--shared-data DIR$`).MatchString(stdout.String()) {
		t.Errorf("no skip note in:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := runBench([]string{"--workloads", "trace", "-o", "json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("json: exit %d", code)
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 0 || len(rep.Skipped) != 1 || rep.Skipped[0].Workload != "trace" {
		t.Errorf("report %+v", rep)
	}
}

func TestBenchBadFlags(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/f"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--runs", "0"}, "--runs 0"},
		{[]string{"--runs", "x"}, "invalid value"},
		{[]string{"--workloads", "karpenter-mix-1000,nope"}, `unknown workload "nope"`},
		{[]string{"--workloads", " , "}, "no workload given"},
		{[]string{"-o", "xml"}, `-o "xml"`},
		{[]string{"--improve-budget", "11m"}, "at most 10m"},
		{[]string{"--shared-data", dir + "/missing"}, "--shared-data"},
		{[]string{"--shared-data", file}, "not a directory"},
		{[]string{"--workloads", "trace", "--shared-data", dir}, "workload trace: loading"},
		{[]string{"karpenter-mix-1000"}, "unexpected argument"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runBench(tc.args, &stdout, &stderr); code != exitBadInput {
			t.Errorf("%q: exit %d, want %d", tc.args, code, exitBadInput)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runBench([]string{"-h"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "--workloads LIST") {
		t.Errorf("-h: exit %d, stdout %q", code, stdout.String())
	}
}
