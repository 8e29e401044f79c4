package v1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const nodePoolYAML = `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    metadata:
      labels:
        team: a
      annotations:
        example.com/owner: a
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: default
      taints:
        - key: example.com/special
          value: "true"
          effect: NoSchedule
      startupTaints:
        - key: example.com/init
          effect: NoExecute
      expireAfter: 720h
      terminationGracePeriod: 48h
      requirements:
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: [c, m, r]
          minValues: 2
        - key: karpenter.k8s.aws/instance-generation
          operator: Gt
          values: ["2"]
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 1m
    budgets:
      - nodes: "10%"
      - nodes: "0"
        schedule: "@daily"
        duration: 10m
        reasons: [Drifted, Underutilized]
  limits:
    cpu: "1000"
    memory: 1000Gi
  weight: 10
status:
  nodes: 3
  resources:
    cpu: "12"
`

func TestNodePoolDecodesKarpenterManifest(t *testing.T) {
	var np NodePool
	if err := yaml.UnmarshalStrict([]byte(nodePoolYAML), &np); err != nil {
		t.Fatal(err)
	}
	if np.APIVersion != APIVersion || np.Kind != KindNodePool || np.Name != "default" {
		t.Fatalf("type meta = %q %q %q", np.APIVersion, np.Kind, np.Name)
	}
	spec := np.Spec.Template.Spec
	if got := np.Spec.Template.ObjectMeta.Labels["team"]; got != "a" {
		t.Errorf("template label = %q", got)
	}
	if spec.NodeClassRef == nil || spec.NodeClassRef.Group != "karpenter.k8s.aws" || spec.NodeClassRef.Kind != "EC2NodeClass" {
		t.Errorf("nodeClassRef = %+v", spec.NodeClassRef)
	}
	if len(spec.Requirements) != 2 || spec.Requirements[0].MinValues == nil || *spec.Requirements[0].MinValues != 2 || string(spec.Requirements[1].Operator) != "Gt" {
		t.Errorf("requirements = %+v", spec.Requirements)
	}
	if spec.ExpireAfter.Duration == nil || *spec.ExpireAfter.Duration != 720*time.Hour {
		t.Errorf("expireAfter = %+v", spec.ExpireAfter)
	}
	if spec.TerminationGracePeriod == nil || spec.TerminationGracePeriod.Duration != 48*time.Hour {
		t.Errorf("terminationGracePeriod = %+v", spec.TerminationGracePeriod)
	}
	d := np.Spec.Disruption
	if d.ConsolidationPolicy != ConsolidationPolicyWhenEmpty || d.ConsolidateAfter.Duration == nil || *d.ConsolidateAfter.Duration != time.Minute {
		t.Errorf("disruption = %+v", d)
	}
	if len(d.Budgets) != 2 || d.Budgets[1].Schedule == nil || *d.Budgets[1].Schedule != "@daily" || d.Budgets[1].Duration.Duration != 10*time.Minute || len(d.Budgets[1].Reasons) != 2 {
		t.Errorf("budgets = %+v", d.Budgets)
	}
	if q := np.Spec.Limits["memory"]; q.String() != "1000Gi" {
		t.Errorf("limits.memory = %s", q.String())
	}
	if np.Spec.Weight == nil || *np.Spec.Weight != 10 {
		t.Errorf("weight = %v", np.Spec.Weight)
	}
	if np.Status.Nodes == nil || *np.Status.Nodes != 3 {
		t.Errorf("status.nodes = %v", np.Status.Nodes)
	}

	// Round trip: the JSON uses Karpenter's field names.
	b, err := json.Marshal(&np)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"nodeClassRef":{"kind":"EC2NodeClass","name":"default","group":"karpenter.k8s.aws"}`, `"startupTaints"`, `"minValues":2`, `"consolidateAfter":"1m"`, `"expireAfter":"720h"`, `"consolidationPolicy":"WhenEmpty"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var back NodePool
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if *back.Spec.Disruption.ConsolidateAfter.Duration != time.Minute {
		t.Errorf("round trip lost consolidateAfter")
	}
}

func TestNillableDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		never   bool
		want    time.Duration
		wantErr bool
	}{
		{`"Never"`, true, 0, false},
		{`"30s"`, false, 30 * time.Second, false},
		{`"1h30m"`, false, 90 * time.Minute, false},
		{`"-1s"`, false, 0, true},
		{`"soon"`, false, 0, true},
		{`30`, false, 0, true},
	} {
		var d NillableDuration
		err := json.Unmarshal([]byte(tc.in), &d)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if d.IsNever() != tc.never || (!tc.never && *d.Duration != tc.want) {
			t.Errorf("%s: got %+v", tc.in, d)
		}
		b, _ := json.Marshal(d)
		if string(b) != tc.in {
			t.Errorf("%s: marshals as %s", tc.in, b)
		}
	}
	// An unset expireAfter is omitted, not written as Never.
	b, _ := json.Marshal(NodeClaimTemplateSpec{})
	if strings.Contains(string(b), "expireAfter") {
		t.Errorf("zero expireAfter marshalled: %s", b)
	}
}

func TestNodeClaimDecodes(t *testing.T) {
	const doc = `
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata:
  name: default-abcde
  labels:
    karpenter.sh/nodepool: default
spec:
  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large]}
  resources:
    requests: {cpu: 1500m, pods: "3"}
  expireAfter: Never
status:
  nodeName: ip-10-0-0-1.ec2.internal
  providerID: aws:///us-east-1a/i-0123
  capacity: {cpu: "2", memory: 8Gi}
  allocatable: {cpu: 1930m}
  conditions:
    - type: Launched
      status: "True"
      reason: Launched
      message: ""
      lastTransitionTime: "2025-01-01T00:00:00Z"
`
	var nc NodeClaim
	if err := yaml.UnmarshalStrict([]byte(doc), &nc); err != nil {
		t.Fatal(err)
	}
	if q := nc.Spec.Resources.Requests["cpu"]; q.MilliValue() != 1500 {
		t.Errorf("requests.cpu = %v", q.String())
	}
	if !nc.Spec.ExpireAfter.IsNever() || nc.Spec.ExpireAfter.Raw != Never {
		t.Errorf("expireAfter = %+v", nc.Spec.ExpireAfter)
	}
	if nc.Status.NodeName == "" || len(nc.Status.Conditions) != 1 || nc.Status.Conditions[0].Type != ConditionTypeLaunched {
		t.Errorf("status = %+v", nc.Status)
	}
}
