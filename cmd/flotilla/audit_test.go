package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func auditCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runAudit(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func decodeAuditJSON(t *testing.T, s string) auditJSON {
	t.Helper()
	var rep auditJSON
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, s)
	}
	return rep
}

func TestAuditExamplesHaveNoRequiredFailure(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "karpenter")
	code, out, errOut := auditCLI(t, "-f", dir, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	rep := decodeAuditJSON(t, out)
	if rep.SchemaVersion != 1 || rep.Source != "manifests" || !rep.Summary.Passed || rep.Summary.Required != 0 {
		t.Fatalf("summary %+v", rep)
	}
	for _, f := range rep.Findings {
		t.Logf("example finding: %s %s [%s] %s", f.Severity, f.Object, f.Check, f.Message)
	}
}

func TestAuditBadManifests(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "audit", "testdata", "bad")
	code, out, errOut := auditCLI(t, "--filename", dir, "-o", "json")
	if code != exitInternal || errOut != "" {
		t.Fatalf("exit %d (want 1), stderr %q", code, errOut)
	}
	rep := decodeAuditJSON(t, out)
	if rep.Summary.Passed || rep.Summary.Required == 0 || rep.Summary.Total != len(rep.Findings) {
		t.Fatalf("summary %+v", rep.Summary)
	}
	got := map[string]bool{}
	for _, f := range rep.Findings {
		got[f.Check+" "+f.Object.String()] = true
		if f.Why == "" || f.Fix == "" || f.Message == "" {
			t.Errorf("finding without prose: %+v", f)
		}
	}
	for _, want := range []string{
		"ami-pinned EC2NodeClass default",
		"controller-placement Deployment flotilla/flotilla-interruption",
		"interruption-handling Deployment flotilla/flotilla-interruption",
		"interruption-handling DaemonSet kube-system/aws-node-termination-handler",
		"nodepool-overlap NodePool general",
		"spot-diversity NodePool spot",
		"nodepool-limits NodePool spot",
		"nodepool-limits NodePool general",
		"disruption-budget Deployment shop/web",
		"resource-requests Deployment shop/web",
		"memory-requests-equal-limits Deployment shop/web",
		"memory-requests-equal-limits Deployment kube-system/coredns",
		"limit-range Namespace shop",
		"coredns-lameduck Deployment kube-system/coredns",
		"coredns-lameduck ConfigMap kube-system/coredns",
	} {
		if !got[want] {
			t.Errorf("missing finding %q", want)
		}
	}
	// Sorted by severity first.
	for i := 1; i < len(rep.Findings); i++ {
		if rep.Findings[i-1].Severity.Rank() > rep.Findings[i].Severity.Rank() {
			t.Fatalf("findings not sorted by severity at %d", i)
		}
	}

	code, text, _ := auditCLI(t, "-f", dir)
	if code != exitInternal {
		t.Fatalf("text: exit %d", code)
	}
	for _, want := range []string{"REQUIRED (", "HIGH (", "RECOMMENDED (", "EC2NodeClass default  [ami-pinned]", "why: ", "fix: ", "FAIL: a required item fails"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestAuditBadInput(t *testing.T) {
	malformed := filepath.Join("..", "..", "internal", "audit", "testdata", "malformed")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"malformed YAML", []string{"-f", malformed}, "broken.yaml: document 2: invalid YAML"},
		{"missing file", []string{"-f", filepath.Join(t.TempDir(), "nope.yaml")}, "no such file"},
		{"empty dir", []string{"-f", t.TempDir()}, "no .yaml, .yml or .json files"},
		{"bad output", []string{"-f", malformed, "-o", "yaml"}, `-o "yaml": use text or json`},
		{"stray argument", []string{"extra"}, `unexpected argument "extra"`},
		{"files and kubeconfig", []string{"-f", malformed, "--kubeconfig", "x"}, "contacts no cluster"},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(t.TempDir(), "none")}, "flotilla audit: kubeconfig:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := auditCLI(t, tc.args...)
			if code != exitBadInput {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q: want one line with %q", errOut, tc.want)
			}
		})
	}
}

func TestAuditUnreachableCluster(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: gone
  context: {cluster: gone, user: u}
current-context: gone
`
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := auditCLI(t, "--kubeconfig", kubeconfig)
	if code != exitBadInput || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cannot reach the API server at https://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = auditCLI(t, "--kubeconfig", kubeconfig, "--context", "other")
	if code != exitBadInput || !strings.Contains(errOut, "other") {
		t.Fatalf("unknown context: exit %d, stderr %q", code, errOut)
	}
}

func TestAuditHelp(t *testing.T) {
	code, out, _ := auditCLI(t, "-h")
	if code != exitOK || !strings.Contains(out, "flotilla audit -f FILE|DIR") {
		t.Fatalf("exit %d, %q", code, out)
	}
}
