package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/version"
)

func examplesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "examples")
	if _, err := os.Stat(filepath.Join(dir, "pods.yaml")); err != nil {
		t.Skip(err)
	}
	return dir
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func exampleArgs(dir string, extra ...string) []string {
	return append([]string{"solve",
		"--pods", filepath.Join(dir, "pods.yaml"),
		"--nodepools", filepath.Join(dir, "nodepools.yaml"),
		"--instance-types", filepath.Join(dir, "catalog.csv"),
		"--spot-price-factor", "0.35"}, extra...)
}

// checkNoNulls fails on any JSON null in v.
func checkNoNulls(t *testing.T, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Errorf("%s is null", path)
	case map[string]any:
		for k, e := range x {
			checkNoNulls(t, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			checkNoNulls(t, path+"["+strconv.Itoa(i)+"]", e)
		}
	}
}

func TestSolveJSON(t *testing.T) {
	dir := examplesDir(t)
	code, stdout, stderr := runCLI(exampleArgs(dir, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr = %q", stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value printed")
	}
	for _, k := range []string{"nodeClaims", "existingNodeBindings", "unschedulable", "costPerHour", "lowerBoundPerHour", "costToBoundRatio", "solveSeconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %s", k)
		}
	}
	if len(m) != 7 {
		t.Errorf("keys = %v", m)
	}
	checkNoNulls(t, "$", m)
	// Keys come in the documented order.
	order := []string{`"nodeClaims"`, `"existingNodeBindings"`, `"unschedulable"`, `"costPerHour"`, `"lowerBoundPerHour"`, `"costToBoundRatio"`, `"solveSeconds"`}
	last := -1
	for _, k := range order {
		i := strings.Index(stdout, k)
		if i < last {
			t.Errorf("key %s out of order", k)
		}
		last = i
	}
	if lb, cost := m["lowerBoundPerHour"].(float64), m["costPerHour"].(float64); lb <= 0 || lb > cost {
		t.Errorf("lowerBoundPerHour %v, costPerHour %v: want 0 < bound <= cost", lb, cost)
	}
	claims, _ := m["nodeClaims"].([]any)
	if len(claims) == 0 {
		t.Fatal("no node claims")
	}
	pods := 0
	for _, c := range claims {
		nc := c.(map[string]any)
		for _, k := range []string{"nodePool", "instanceType", "capacityType", "zone", "pricePerHour", "instanceTypeOptions", "pods"} {
			if _, ok := nc[k]; !ok {
				t.Errorf("node claim lacks %s: %v", k, nc)
			}
		}
		pods += len(nc["pods"].([]any))
		if nc["nodePool"] == "gpu" && !strings.HasPrefix(nc["instanceType"].(string), "p3.") {
			t.Errorf("gpu claim on %v", nc["instanceType"])
		}
	}
	unsched, _ := m["unschedulable"].([]any)
	if pods+len(unsched) != 14 {
		t.Errorf("%d pods placed + %d unschedulable, want 14", pods, len(unsched))
	}
}

func TestSolveTable(t *testing.T) {
	dir := examplesDir(t)
	code, stdout, stderr := runCLI(exampleArgs(dir)...)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"NODEPOOL", "INSTANCE TYPE", "$/HOUR", "gpu", "p3.8xlarge", "Total: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

// TestSolveInclusiveBounds solves the example pods with a NodePool that
// takes exactly 16 vCPUs through Karpenter's Gte and Lte operators
// (inclusive bounds): every planned node must be a 16-vCPU type.
func TestSolveInclusiveBounds(t *testing.T) {
	dir := examplesDir(t)
	pools := filepath.Join(t.TempDir(), "nodepools.yaml")
	if err := os.WriteFile(pools, []byte(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: sixteen}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - {key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["16"]}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: ["16"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("solve", "--pods", filepath.Join(dir, "pods.yaml"), "--nodepools", pools,
		"--instance-types", filepath.Join(dir, "catalog.csv"), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var out struct {
		NodeClaims []struct{ InstanceType string } `json:"nodeClaims"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.NodeClaims) == 0 {
		t.Fatal("no node claims")
	}
	for _, nc := range out.NodeClaims {
		if !strings.HasSuffix(nc.InstanceType, ".4xlarge") {
			t.Errorf("claim on %s, want a 16-vCPU (4xlarge) type", nc.InstanceType)
		}
	}
}

func TestSolveDefaults(t *testing.T) {
	dir := examplesDir(t)
	// No NodePools: the built-in default; pods given twice comma-separated
	// to the same file are read once.
	code, stdout, stderr := runCLI("solve", "--pods", filepath.Join(dir, "pods.yaml"), "--instance-types", filepath.Join(dir, "catalog.csv"), "--overhead", "eks", "--zones", "us-east-1a,us-east-1b", "--ignore-preferences", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var out Output
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	for _, nc := range out.NodeClaims {
		if nc.NodePool != "default" {
			t.Errorf("node pool %q", nc.NodePool)
		}
		if nc.Zone == "us-east-1c" {
			t.Errorf("zone %q not asked for", nc.Zone)
		}
	}
}

func TestExistingNodes(t *testing.T) {
	tmp := t.TempDir()
	nodes := filepath.Join(tmp, "nodes.yaml")
	pods := filepath.Join(tmp, "pods.yaml")
	cat := filepath.Join(tmp, "catalog.csv")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(nodes, `apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    kubernetes.io/hostname: node-1
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node.kubernetes.io/instance-type: m5.xlarge
    topology.kubernetes.io/zone: us-east-1a
status:
  allocatable: {cpu: "4", memory: 16Gi, pods: "58"}
---
apiVersion: v1
kind: Pod
metadata: {name: running}
spec:
  nodeName: node-1
  containers: [{name: c, resources: {requests: {cpu: "1"}}}]
`)
	write(pods, `apiVersion: v1
kind: Pod
metadata: {name: small}
spec:
  containers: [{name: c, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
`)
	write(cat, "instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour\nm5.xlarge,4,16384,amd64,0.192\n")
	code, stdout, stderr := runCLI("solve", "--pods", pods, "--nodes", nodes, "--instance-types", cat, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var out Output
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.NodeClaims) != 0 || len(out.ExistingNodeBindings["node-1"]) != 1 || out.ExistingNodeBindings["node-1"][0] != "default/small" {
		t.Errorf("plan = %+v", out)
	}
	code, stdout, _ = runCLI("solve", "--pods", pods, "--nodes", nodes, "--instance-types", cat)
	if code != 0 || !strings.Contains(stdout, "EXISTING NODE") || !strings.Contains(stdout, "node-1") {
		t.Errorf("table:\n%s", stdout)
	}
}

// --improve-budget takes a duration or, as its help offers ("-1"), a bare
// number of seconds.
func TestImproveBudgetTakesSeconds(t *testing.T) {
	dir := examplesDir(t)
	for _, v := range []string{"-1", "0.05", "200ms", "-1ns"} {
		if code, _, stderr := runCLI(exampleArgs(dir, "--improve-budget", v)...); code != 0 {
			t.Errorf("--improve-budget %s: exit %d: %s", v, code, stderr)
		}
	}
	var d time.Duration
	for in, want := range map[string]time.Duration{"-1": -time.Second, "1.5": 1500 * time.Millisecond, "2m": 2 * time.Minute} {
		if err := (budgetFlag{&d}).Set(in); err != nil || d != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"", "NaN", "1e300", "soon"} {
		if err := (budgetFlag{&d}).Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := examplesDir(t)
	tmp := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cat := filepath.Join(dir, "catalog.csv")
	badQty := write("badqty.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: c, resources: {requests: {cpu: 1 core}}}]\n")
	badAPI := write("badapi.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, resources: {requests: {example.com/dongle: 500m}}}]}\n")
	badPool := write("badpool.yaml", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: np}\nspec:\n  limits: {cpu: -4}\n")
	badCat := write("bad.csv", "instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour\nm5.large,two,8192,amd64,0.1\n")
	good := filepath.Join(dir, "pods.yaml")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad quantity", []string{"solve", "--pods", badQty, "--instance-types", cat}, []string{"badqty.yaml", "document 2 (Deployment default/web)", "spec.template.spec.containers[0].resources.requests.cpu"}},
		{"request rejected by the solver API", []string{"solve", "--pods", badAPI, "--instance-types", cat}, []string{"badapi.yaml", "document 2 (Pod default/b)", "example.com/dongle"}},
		{"bad nodepool", []string{"solve", "--pods", good, "--nodepools", badPool, "--instance-types", cat}, []string{"badpool.yaml", "document 1 (NodePool np)", "spec.limits.cpu"}},
		{"bad catalog", []string{"solve", "--pods", good, "--instance-types", badCat}, []string{"bad.csv", "line 2, column vcpu"}},
		{"missing file", []string{"solve", "--pods", filepath.Join(tmp, "nope.yaml"), "--instance-types", cat}, []string{"nope.yaml", "no such file"}},
		{"unknown flag", []string{"solve", "--pods", good, "--instance-types", cat, "--frobnicate"}, []string{"frobnicate"}},
		{"bad improve budget", []string{"solve", "--pods", good, "--instance-types", cat, "--improve-budget", "soon"}, []string{"-improve-budget", `"soon" is neither a duration`}},
		{"missing pods", []string{"solve", "--instance-types", cat}, []string{"--pods is required"}},
		{"unknown region", []string{"solve", "--pods", good, "--region", "mars-north-1"}, []string{"--region", "mars-north-1", "us-east-1"}},
		{"region with a catalog file", []string{"solve", "--pods", good, "--instance-types", cat, "--region", "us-east-1"}, []string{"--region", "--instance-types", "--zones"}},
		{"zone outside the embedded region", []string{"solve", "--pods", good, "--zones", "us-east-1a,eu-west-1a"}, []string{"--zones", "eu-west-1a", "us-east-1"}},
		{"overhead with the embedded catalog", []string{"solve", "--pods", good, "--overhead", "eks"}, []string{"--overhead eks", "--instance-types"}},
		{"bad output", []string{"solve", "--pods", good, "--instance-types", cat, "-o", "xml"}, []string{`-o "xml"`}},
		{"bad overhead", []string{"solve", "--pods", good, "--instance-types", cat, "--overhead", "gke"}, []string{"--overhead"}},
		{"bad factor", []string{"solve", "--pods", good, "--instance-types", cat, "--spot-price-factor", "-1"}, []string{"--spot-price-factor"}},
		{"stray argument", []string{"solve", "--pods", good, "--instance-types", cat, "extra"}, []string{`unexpected argument "extra"`}},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{"unknown top flag", []string{"--frobnicate"}, []string{"unknown flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr is not exactly one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"help", "solve"}, {"solve", "-h"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI("version")
	if code != 0 || !strings.HasPrefix(stdout, "flotilla ") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("version: %d %q", code, stdout)
	}
	if code, _, stderr := runCLI(); code != 2 || !strings.Contains(stderr, "Usage:") {
		t.Errorf("no args: %d %q", code, stderr)
	}
}

func TestUnschedulableExplained(t *testing.T) {
	tmp := t.TempDir()
	pods := filepath.Join(tmp, "pods.yaml")
	cat := filepath.Join(tmp, "catalog.csv")
	if err := os.WriteFile(pods, []byte(`apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers: [{name: c, resources: {requests: {cpu: "200", memory: 1Gi}}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cat, []byte("instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour\nm5.xlarge,4,16384,amd64,0.192\nm5.24xlarge,96,393216,amd64,4.608\nc5.large,2,4096,amd64,0.085\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("solve", "--pods", pods, "--instance-types", cat, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var out Output
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	want := "no instance type fits the pod: 200 cpu needed, at most 96 in families c5, m5"
	if len(out.Unschedulable) != 1 || len(out.Unschedulable[0].NodePools) != 1 ||
		out.Unschedulable[0].NodePools[0].NodePool != "default" || out.Unschedulable[0].NodePools[0].Reason != want {
		t.Fatalf("unschedulable = %+v", out.Unschedulable)
	}
	code, stdout, _ = runCLI("solve", "--pods", pods, "--instance-types", cat)
	if code != 0 || !strings.Contains(stdout, "nodepool default: "+want) {
		t.Errorf("table:\n%s", stdout)
	}
}

// TestVersionCommand: 'flotilla version', --version and -version print the
// one version line; 'flotilla help version' and 'flotilla version -h' its
// usage; an argument is refused in one line.
func TestVersionCommand(t *testing.T) {
	want := version.Line("flotilla") + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q, want %q", args, code, stdout, stderr, want)
		}
	}
	for _, args := range [][]string{{"help", "version"}, {"version", "-h"}, {"--version", "--help"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stdout != versionUsage || stderr != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"version", "extra"}, {"version", "--short"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flotilla version: ") {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, stdout, stderr)
		}
	}
	if !strings.Contains(usage, "\n  version ") || !strings.Contains(usage, "\n  flotilla version\n") {
		t.Error("the usage does not list the version command")
	}
}
