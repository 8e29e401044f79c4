package solverapi

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/flotilla-io/flotilla/internal/solver"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

func TestAmountRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    int64
		want string
	}{
		{"cpu", 1500, "1500m"},
		{"cpu", 2000, "2"},
		{"cpu", 1, "1m"},
		{"cpu", 0, "0"},
		{"memory", 1 << 30, "1Gi"},
		{"memory", 1536 << 20, "1536Mi"},
		{"memory", 1_500_000_000, "1500000000"},
		{"ephemeral-storage", 20 << 30, "20Gi"},
		{"hugepages-2Mi", 2 << 20, "2Mi"},
		{"pods", 110, "110"},
		{"nvidia.com/gpu", 4, "4"},
		{"memory", maxAmount, "64Pi"},
	} {
		s := formatAmount(tc.name, tc.v)
		if s != tc.want {
			t.Errorf("formatAmount(%s, %d) = %q, want %q", tc.name, tc.v, s, tc.want)
		}
		back, err := parseAmount(tc.name, s)
		if err != nil || back != tc.v {
			t.Errorf("parseAmount(%s, %q) = %d, %v; want %d", tc.name, s, back, err, tc.v)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int64
	}{
		{"cpu", "1.5", 1500},
		{"cpu", "250m", 250},
		{"cpu", "0.5m", 1}, // rounded up, as Kubernetes does
		{"cpu", "1e3", 1_000_000},
		{"memory", "1G", 1_000_000_000},
		{"memory", "0.5", 1},
		{"memory", "128974848", 128974848},
		{"pods", "1k", 1000},
		{"nvidia.com/gpu", "+2", 2},
	} {
		got, err := parseAmount(tc.name, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseAmount(%s, %q) = %d, %v; want %d", tc.name, tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, in string }{
		{"cpu", "12x"}, {"cpu", ""}, {"cpu", " 1"}, {"memory", "-1"}, {"cpu", "1e20"},
		{"memory", "9Ei"}, {"pods", "0.5"}, {"example.com/widget", "1500m"},
	} {
		if _, err := parseAmount(tc.name, tc.in); err == nil {
			t.Errorf("parseAmount(%s, %q) accepted", tc.name, tc.in)
		}
	}
}

func TestRequirementsRoundTrip(t *testing.T) {
	in := []*typesv1.Requirement{
		{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"spot", "on-demand"}, MinValues: 2},
		{Key: "gen", Operator: "Gt", Values: []string{"4"}},
		{Key: "gpu", Operator: "DoesNotExist"},
	}
	out := requirementsToProto(requirementsFromProto(in))
	if len(out) != len(in) {
		t.Fatalf("got %d requirements", len(out))
	}
	for i := range in {
		if !proto.Equal(in[i], out[i]) {
			t.Errorf("requirement %d: %v != %v", i, out[i], in[i])
		}
	}
	taints := []*typesv1.Taint{{Key: "a", Value: "b", Effect: "NoSchedule"}, {Key: "c", Effect: "NoExecute"}}
	back := taintsToProto(taintsFromProto(taints))
	for i := range taints {
		if !proto.Equal(taints[i], back[i]) {
			t.Errorf("taint %d: %v != %v", i, back[i], taints[i])
		}
	}
	if requirementsFromProto(nil) != nil || taintsToProto(nil) != nil {
		t.Error("empty lists should convert to nil")
	}
}

func TestSolveProblemConversion(t *testing.T) {
	req := &solverv1.SolveRequest{
		Pods: []*typesv1.Pod{{
			Name:   "web-1",
			Labels: map[string]string{"app": "web"},
			Containers: []*typesv1.Container{
				{Name: "app", Requests: map[string]string{"cpu": "1", "memory": "1Gi"}},
				{Name: "proxy", Requests: map[string]string{"cpu": "100m"}},
			},
			InitContainers: []*typesv1.Container{
				{Name: "migrate", Requests: map[string]string{"cpu": "2"}},
				{Name: "sidecar", RestartPolicyAlways: true, Requests: map[string]string{"memory": "256Mi"}},
			},
			Overhead:             map[string]string{"cpu": "50m"},
			NodeSelector:         map[string]string{"kubernetes.io/arch": "amd64"},
			RequiredNodeAffinity: []*typesv1.NodeSelectorTerm{{MatchExpressions: []*typesv1.Requirement{{Key: "zone", Operator: "In", Values: []string{"a"}}}}},
			PreferredNodeAffinity: []*typesv1.PreferredSchedulingTerm{{
				Weight: 20, Preference: &typesv1.NodeSelectorTerm{MatchExpressions: []*typesv1.Requirement{{Key: "ct", Operator: "In", Values: []string{"spot"}}}},
			}},
			Tolerations: []*typesv1.Toleration{{Operator: "Exists"}},
			PodAffinity: &typesv1.PodAffinity{Required: []*typesv1.PodAffinityTerm{{
				LabelSelector: &typesv1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Namespaces:    []string{"data"}, TopologyKey: "zone", MatchLabelKeys: []string{"rev"},
			}}},
			PodAntiAffinity: &typesv1.PodAffinity{Preferred: []*typesv1.WeightedPodAffinityTerm{{
				Weight: 100, PodAffinityTerm: &typesv1.PodAffinityTerm{
					LabelSelector: &typesv1.LabelSelector{}, NamespaceSelector: &typesv1.LabelSelector{}, TopologyKey: "kubernetes.io/hostname",
				},
			}}},
			TopologySpreadConstraints: []*typesv1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: "DoNotSchedule", MinDomains: 3,
				LabelSelector: &typesv1.LabelSelector{MatchExpressions: []*typesv1.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"web"}}}},
			}},
			HostPorts: []*typesv1.HostPort{{Port: 80}, {Port: 53, Protocol: "UDP", HostIp: "10.0.0.1"}},
			Volumes:   []*typesv1.VolumeTopology{{Name: "data", Terms: []*typesv1.NodeSelectorTerm{{MatchExpressions: []*typesv1.Requirement{{Key: "zone", Operator: "In", Values: []string{"a"}}}}}}},
			Priority:  1000,
		}},
		DaemonSets: []*typesv1.DaemonSet{{Namespace: "kube-system", Name: "agent", Template: &typesv1.Pod{
			Containers: []*typesv1.Container{{Requests: map[string]string{"cpu": "100m"}}},
			HostPorts:  []*typesv1.HostPort{{Port: 9100}},
		}}},
		Namespaces: []*typesv1.Namespace{{Name: "data", Labels: map[string]string{"team": "db"}}},
		Options:    &solverv1.SolveOptions{IgnorePreferences: true, MaxInstanceTypeOptions: 5, MinSpotInstanceTypes: -1},
	}
	p := SolveProblem(req)
	if len(p.Pods) != 1 {
		t.Fatalf("pods: %d", len(p.Pods))
	}
	pod := p.Pods[0]
	if pod.Namespace != "default" {
		t.Errorf("namespace %q, want default", pod.Namespace)
	}
	// Regular containers with the sidecar: cpu 1100m, memory 1Gi+256Mi;
	// the init container alone: cpu 2000m. Plus 50m overhead.
	wantReq := solver.Resources{"cpu": 2050, "memory": (1 << 30) + (256 << 20)}
	if !reflect.DeepEqual(pod.Requests, wantReq) {
		t.Errorf("requests %v, want %v", pod.Requests, wantReq)
	}
	if got := pod.RequiredNodeAffinity[0].Requirements[0]; got.Key != "zone" || got.Operator != solver.OpIn {
		t.Errorf("required affinity %+v", got)
	}
	if got := pod.PreferredNodeAffinity[0]; got.Weight != 20 || got.Term.Requirements[0].Values[0] != "spot" {
		t.Errorf("preferred affinity %+v", got)
	}
	if got := pod.PodAffinity.Required[0]; got.LabelSelector.MatchLabels["app"] != "db" || got.Namespaces[0] != "data" || got.NamespaceSelector != nil || got.MatchLabelKeys[0] != "rev" {
		t.Errorf("pod affinity %+v", got)
	}
	if got := pod.PodAntiAffinity.Preferred[0]; got.Weight != 100 || got.Term.LabelSelector == nil || got.Term.NamespaceSelector == nil || got.Term.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("anti-affinity %+v", got)
	}
	if got := pod.TopologySpread[0]; got.MinDomains != 3 || got.WhenUnsatisfiable != solver.DoNotSchedule || got.LabelSelector.MatchExpressions[0].Operator != solver.OpIn {
		t.Errorf("spread %+v", got)
	}
	wantPorts := []solver.HostPort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP", HostIP: "10.0.0.1"}}
	if !reflect.DeepEqual(pod.HostPorts, wantPorts) {
		t.Errorf("host ports %+v", pod.HostPorts)
	}
	if pod.Volumes[0].Name != "data" || len(pod.Volumes[0].Terms) != 1 || pod.Priority != 1000 || pod.Tolerations[0].Operator != "Exists" {
		t.Errorf("pod %+v", pod)
	}
	ds := p.DaemonSets[0]
	if ds.Template.Namespace != "kube-system" || !ds.Template.DaemonSet || ds.Template.Name != "agent" || ds.Template.Requests["cpu"] != 100 {
		t.Errorf("daemonset template %+v", ds.Template)
	}
	if want := []solver.HostPort{{Port: 9100, Protocol: "TCP"}}; !reflect.DeepEqual(ds.Template.HostPorts, want) {
		t.Errorf("daemonset host ports %+v, want %+v", ds.Template.HostPorts, want)
	}
	if p.Namespaces["data"]["team"] != "db" {
		t.Errorf("namespaces %v", p.Namespaces)
	}
	if !p.Options.IgnorePreferences || p.Options.MaxInstanceTypeOptions != 5 || p.Options.MinSpotInstanceTypes != -1 {
		t.Errorf("options %+v", p.Options)
	}
}

func TestClusterConversion(t *testing.T) {
	req := validRequest()
	req.NodeClaims = []*typesv1.NodeClaim{{Name: "claim-1", NodePool: "default", InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.04,
		Allocatable: map[string]string{"memory": "7Gi"}, Pods: []*typesv1.Pod{{Namespace: "x", Name: "p"}}}}
	p := SolveProblem(req)
	it := p.InstanceTypes[0]
	if it.Allocatable["cpu"] != 1930 || it.Capacity["memory"] != 8<<30 || it.Offerings[0] != (solver.Offering{Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.04, Available: true}) {
		t.Errorf("instance type %+v", it)
	}
	np := p.NodePools[0]
	if np.Name != "default" || np.Weight != 10 || np.Limits["cpu"] != 1_000_000 || np.Usage != nil || np.Requirements[0].Operator != solver.OpIn {
		t.Errorf("nodepool %+v", np)
	}
	if n := p.Nodes[0]; n.Name != "node-a" || n.NodePool != "unmanaged-pool" || n.Allocatable["cpu"] != 4000 {
		t.Errorf("node %+v", n)
	}
	if c := p.NodeClaims[0]; c.Name != "claim-1" || c.Allocatable["memory"] != 7<<30 || c.Pods[0].Namespace != "x" || c.PricePerHour != 0.04 {
		t.Errorf("claim %+v", c)
	}
	if p.Pods[1].Namespace != "batch" || p.Pods[1].Requests["nvidia.com/gpu"] != 1 {
		t.Errorf("pod 1 %+v", p.Pods[1])
	}
}

func TestPlanToProto(t *testing.T) {
	plan := &solver.Plan{
		NodeClaims: []solver.PlannedNodeClaim{{
			NodePool:            "default",
			Requirements:        []solver.Requirement{{Key: "topology.kubernetes.io/zone", Operator: solver.OpIn, Values: []string{"us-east-1a"}}},
			Labels:              map[string]string{"karpenter.sh/nodepool": "default"},
			Taints:              []solver.Taint{{Key: "t", Effect: solver.EffectNoSchedule}},
			StartupTaints:       []solver.Taint{{Key: "s", Effect: solver.EffectNoExecute}},
			InstanceTypeOptions: []string{"m5.large", "m5.xlarge"},
			InstanceType:        "m5.large", Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.04,
			Pods:     []solver.PodRef{{Namespace: "default", Name: "b"}, {Namespace: "default", Name: "a"}},
			Requests: solver.Resources{"cpu": 1500, "memory": 3 << 30, "pods": 2},
		}},
		ExistingBindings: map[string][]solver.PodRef{
			"node-a": {{Namespace: "default", Name: "z"}, {Namespace: "default", Name: "c"}},
		},
		Unschedulable: []solver.UnschedulablePod{{Pod: solver.PodRef{Namespace: "ns", Name: "big"}, Reason: "too big"}},
		CostPerHour:   0.04,
	}
	got := PlanToProto(plan)
	want := &typesv1.Plan{
		NodeClaims: []*typesv1.PlannedNodeClaim{{
			NodePool:            "default",
			Requirements:        []*typesv1.Requirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1a"}}},
			Labels:              map[string]string{"karpenter.sh/nodepool": "default"},
			Taints:              []*typesv1.Taint{{Key: "t", Effect: "NoSchedule"}},
			StartupTaints:       []*typesv1.Taint{{Key: "s", Effect: "NoExecute"}},
			InstanceTypeOptions: []string{"m5.large", "m5.xlarge"},
			InstanceType:        "m5.large", Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.04,
			Pods:     []string{"default/b", "default/a"},
			Requests: map[string]string{"cpu": "1500m", "memory": "3Gi", "pods": "2"},
		}},
		ExistingNodeBindings: map[string]*typesv1.PodNames{"node-a": {Pods: []string{"default/c", "default/z"}}},
		Unschedulable:        []*typesv1.UnschedulablePod{{Pod: "ns/big", Reason: "too big"}},
		CostPerHour:          0.04,
	}
	if !proto.Equal(got, want) {
		t.Errorf("PlanToProto =\n%v\nwant\n%v", got, want)
	}
	// The wire form is deterministic.
	opts := proto.MarshalOptions{Deterministic: true}
	a, _ := opts.Marshal(got)
	b, _ := opts.Marshal(PlanToProto(plan))
	if string(a) != string(b) {
		t.Error("plan encoding differs between conversions")
	}
	// And the requests convert back to the same amounts.
	if back := resourcesFromProto(got.NodeClaims[0].Requests); !reflect.DeepEqual(back, plan.NodeClaims[0].Requests) {
		t.Errorf("requests round trip: %v != %v", back, plan.NodeClaims[0].Requests)
	}
	if !proto.Equal(PlanToProto(nil), &typesv1.Plan{}) {
		t.Error("nil plan")
	}
}

func TestConsolidationToProto(t *testing.T) {
	plan := &solver.ConsolidationPlan{
		Actions: []solver.ConsolidationAction{
			{
				Kind: "Replace", Nodes: []string{"n1"},
				Replacement:    &solver.PlannedNodeClaim{NodePool: "default", InstanceType: "m5.large", Requests: solver.Resources{"cpu": 500}},
				Bindings:       map[solver.PodRef]string{{Namespace: "b", Name: "x"}: "", {Namespace: "a", Name: "y"}: "", {Namespace: "a", Name: "x"}: "n2"},
				SavingsPerHour: 0.1, Reason: "cheaper",
			},
			{Kind: "Delete", Nodes: []string{"n3"}, Reason: "empty"},
		},
		Blocked:            []solver.BlockedCandidate{{Node: "n4", Reason: "do-not-disrupt"}},
		CurrentCostPerHour: 1.5, NewCostPerHour: 1.4, SavingsPerHour: 0.1,
	}
	got := ConsolidationToProto(plan)
	want := &solverv1.ConsolidateResponse{
		Actions: []*solverv1.ConsolidationAction{
			{
				Kind: "Replace", Nodes: []string{"n1"},
				Replacement: &typesv1.PlannedNodeClaim{NodePool: "default", InstanceType: "m5.large", Requests: map[string]string{"cpu": "500m"}},
				Bindings: []*solverv1.PodBinding{
					{Pod: "a/x", Node: "n2"}, {Pod: "a/y"}, {Pod: "b/x"},
				},
				SavingsPerHour: 0.1, Reason: "cheaper",
			},
			{Kind: "Delete", Nodes: []string{"n3"}, Reason: "empty"},
		},
		Blocked:            []*solverv1.BlockedCandidate{{Node: "n4", Reason: "do-not-disrupt"}},
		CurrentCostPerHour: 1.5, NewCostPerHour: 1.4, SavingsPerHour: 0.1,
	}
	if !proto.Equal(got, want) {
		t.Errorf("ConsolidationToProto =\n%v\nwant\n%v", got, want)
	}
}

func TestExplanationsToProto(t *testing.T) {
	plan := &solver.Plan{Unschedulable: []solver.UnschedulablePod{
		{Pod: solver.PodRef{Namespace: "ns", Name: "big"}, Reason: "too big", NodePools: []solver.NodePoolReason{
			{NodePool: "gpu", Reason: "taint nvidia.com/gpu:NoSchedule not tolerated"},
			{NodePool: "default", Reason: "no instance type fits the pod: 200 cpu needed, at most 96 in family m5"},
		}},
		{Pod: solver.PodRef{Namespace: "ns", Name: "odd"}, Reason: "no node fits"},
	}}
	got := ExplanationsToProto(plan)
	want := []*solverv1.UnschedulableExplanation{
		{Pod: "ns/big", NodePools: []*solverv1.NodePoolReason{
			{NodePool: "gpu", Reason: "taint nvidia.com/gpu:NoSchedule not tolerated"},
			{NodePool: "default", Reason: "no instance type fits the pod: 200 cpu needed, at most 96 in family m5"},
		}},
		{Pod: "ns/odd"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d explanations, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("explanation %d = %v, want %v", i, got[i], want[i])
		}
	}
}
