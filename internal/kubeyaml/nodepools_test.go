package kubeyaml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestLoadNodePools(t *testing.T) {
	pools, err := LoadNodePools("np.yaml", strings.NewReader(`
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: general}
spec:
  weight: 50
  template:
    metadata:
      labels: {team: a}
      annotations: {example.com/x: hello}
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      taints: [{key: dedicated, value: a, effect: NoSchedule}]
      startupTaints: [{key: ebs.csi.aws.com/agent-not-ready, effect: NoExecute}]
      expireAfter: Never
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, c5, r5], minValues: 2}
        - {key: karpenter.k8s.aws/instance-generation, operator: Gt, values: ["4"]}
        - {key: karpenter.sh/capacity-type, operator: Exists}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["4"]}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: ["16"]}
  limits: {cpu: 100, memory: 400Gi, nvidia.com/gpu: 4}
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 30s
    budgets: [{nodes: "20%"}, {nodes: "0", schedule: "0 9 * * mon-fri", duration: 8h, reasons: [Drifted]}]
status:
  resources: {cpu: "8", memory: 32Gi}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: default}
spec: {amiSelectorTerms: [{alias: al2023@latest}]}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: minimal}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements: []
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []*typesv1.NodePool{{
		Name:          "general",
		Weight:        50,
		Labels:        map[string]string{"team": "a"},
		Annotations:   map[string]string{"example.com/x": "hello"},
		Taints:        []*typesv1.Taint{{Key: "dedicated", Value: "a", Effect: "NoSchedule"}},
		StartupTaints: []*typesv1.Taint{{Key: "ebs.csi.aws.com/agent-not-ready", Effect: "NoExecute"}},
		Requirements: []*typesv1.Requirement{
			{Key: "karpenter.k8s.aws/instance-family", Operator: "In", Values: []string{"m5", "c5", "r5"}, MinValues: 2},
			{Key: "karpenter.k8s.aws/instance-generation", Operator: "Gt", Values: []string{"4"}},
			{Key: "karpenter.sh/capacity-type", Operator: "Exists"},
			{Key: "karpenter.k8s.aws/instance-cpu", Operator: "Gte", Values: []string{"4"}},
			{Key: "karpenter.k8s.aws/instance-cpu", Operator: "Lte", Values: []string{"16"}},
		},
		Limits: map[string]string{"cpu": "100", "memory": "400Gi", "nvidia.com/gpu": "4"},
		Usage:  map[string]string{"cpu": "8", "memory": "32Gi"},
	}, {Name: "minimal"}}
	if len(pools) != len(want) {
		t.Fatalf("got %d pools", len(pools))
	}
	for i := range want {
		if !proto.Equal(pools[i], want[i]) {
			t.Errorf("pool %d:\n%s\nwant\n%s", i, protojson.Format(pools[i]), protojson.Format(want[i]))
		}
	}
}

func TestNodePoolExample(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "examples", "nodepools.yaml"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	pools, err := LoadNodePools("nodepools.yaml", f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "gpu,team,default" {
		t.Errorf("pools = %v", names)
	}
}

func TestNodePoolErrors(t *testing.T) {
	np := func(spec string) string {
		return "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: np}\nspec:\n" + spec
	}
	tmpl := func(s string) string {
		return np("  template:\n    spec:\n      nodeClassRef: {group: g, kind: K, name: default}\n" + s)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"other kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", `np.yaml: document 1 (Pod p): unsupported kind "Pod"`},
		{"old api version", "apiVersion: karpenter.sh/v1beta1\nkind: NodePool\nmetadata: {name: np}\nspec: {}\n", `apiVersion: unsupported "karpenter.sh/v1beta1"`},
		{"missing name", "apiVersion: karpenter.sh/v1\nkind: NodePool\nspec: {}\n", "metadata.name: required"},
		{"duplicate", np("  template: {spec: {requirements: []}}\n") + "---\n" + np("  template: {spec: {requirements: []}}\n"), "np.yaml: document 2 (NodePool np): duplicate NodePool np: already defined at np.yaml: document 1 (NodePool np)"},
		{"bad limit", np("  limits: {cpu: lots}\n"), `np.yaml: document 1 (NodePool np): spec.limits.cpu: invalid quantity "lots"`},
		{"negative limit", np("  limits: {memory: -1Gi}\n"), `spec.limits.memory: invalid quantity "-1Gi": must not be negative`},
		{"weight", np("  weight: 101\n"), "spec.weight: must be between 1 and 100, not 101"},
		{"In without values", tmpl("      requirements: [{key: a, operator: In, values: []}]\n"), "spec.template.spec.requirements[0].values: operator In needs at least one value"},
		{"Gt negative", tmpl("      requirements: [{key: a, operator: Gt, values: [\"-1\"]}]\n"), "needs a non-negative integer"},
		{"Lt two values", tmpl("      requirements: [{key: a, operator: Lt, values: [\"1\", \"2\"]}]\n"), "operator Lt takes exactly one value, got 2"},
		{"bad operator", tmpl("      requirements: [{key: a, operator: Ge, values: [\"1\"]}]\n"), `unsupported operator "Ge": use In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte or Lte`},
		{"Gte not a number", tmpl("      requirements: [{key: a, operator: Gte, values: [\"1.5\"]}]\n"), `operator Gte needs an integer value, not "1.5"`},
		{"Lte two values", tmpl("      requirements: [{key: a, operator: Lte, values: [\"1\", \"2\"]}]\n"), "operator Lte takes exactly one value, got 2"},
		{"Gte without values", tmpl("      requirements: [{key: a, operator: Gte}]\n"), "operator Gte takes exactly one value, got 0"},
		{"Lte negative", tmpl("      requirements: [{key: a, operator: Lte, values: [\"-1\"]}]\n"), "needs a non-negative integer"},
		{"minValues too big", tmpl("      requirements: [{key: a, operator: In, values: [x], minValues: 2}]\n"), "spec.template.spec.requirements[0].minValues: 2 is more than the 1 values listed"},
		{"taint effect", tmpl("      taints: [{key: a, effect: Never}]\n"), `spec.template.spec.taints[0].effect: unsupported effect "Never"`},
		{"startup taint key", tmpl("      startupTaints: [{effect: NoSchedule}]\n"), "spec.template.spec.startupTaints[0].key: required"},
		{"bad duration", tmpl("      expireAfter: forever\n"), `invalid duration "forever"`},
		{"bad policy", np("  disruption: {consolidationPolicy: Always, consolidateAfter: 1m}\n"), `spec.disruption.consolidationPolicy: unsupported value "Always"`},
		{"static NodePool", np("  replicas: 2\n"), "spec.replicas: static NodePools (replicas 2) are not provisioned by Flotilla yet"},
		{"bad budget", np("  disruption: {consolidateAfter: 1m, budgets: [{nodes: \"110%\"}]}\n"), `spec.disruption.budgets[0].nodes: "110%" is neither`},
		{"unknown field", np("  template: {spec: {requirement: []}}\n"), `unknown field "spec.template.spec.requirement"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadNodePools("np.yaml", strings.NewReader(tc.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n") || !strings.HasPrefix(msg, "np.yaml: document ") {
				t.Errorf("error is not one line naming file and document: %q", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", msg, tc.want)
			}
		})
	}
}

func FuzzLoadNodePools(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "nodepools.yaml")); err == nil {
		f.Add(string(b))
	}
	f.Add("apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {requirements: [{key: k, operator: In, values: [v], minValues: 1}]}}, limits: {cpu: 1}}\n")
	f.Add("apiVersion: v1\nkind: List\nitems: []\n")
	f.Fuzz(func(t *testing.T, doc string) {
		pools, err := LoadNodePools("fuzz.yaml", strings.NewReader(doc))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.yaml") || strings.ContainsAny(msg, "\n") {
				t.Fatalf("bad error %q", msg)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range pools {
			if p.Name == "" || seen[p.Name] {
				t.Fatalf("bad or duplicate pool %q", p.Name)
			}
			seen[p.Name] = true
		}
	})
}

// Balanced is accepted (Karpenter's CRD has it) and reported as not
// honored: Flotilla consolidates only empty nodes under it.
func TestBalancedIsAcceptedAndReported(t *testing.T) {
	doc := "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: np}\nspec:\n  disruption: {consolidationPolicy: Balanced, consolidateAfter: 1m}\n"
	pools, err := LoadNodePools("np.yaml", strings.NewReader(doc))
	if err != nil || len(pools) != 1 {
		t.Fatalf("Balanced NodePool: %v", err)
	}
	np := &karpv1.NodePool{}
	np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyBalanced
	if got := UnhonoredFields(np); len(got) != 1 || !strings.HasPrefix(got[0], "spec.disruption.consolidationPolicy: Balanced") {
		t.Errorf("UnhonoredFields = %v", got)
	}
	np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized
	if got := UnhonoredFields(np); len(got) != 0 {
		t.Errorf("UnhonoredFields of a default NodePool = %v", got)
	}
	for p, want := range map[karpv1.ConsolidationPolicy]bool{"": true, karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized: true, karpv1.ConsolidationPolicyWhenEmpty: false, karpv1.ConsolidationPolicyBalanced: false} {
		if p.ConsolidatesUnderutilized() != want {
			t.Errorf("%q.ConsolidatesUnderutilized() = %v", p, !want)
		}
	}
}
