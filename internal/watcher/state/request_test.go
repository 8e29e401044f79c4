package state

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

type noTypes struct{}

func (noTypes) InstanceTypes(context.Context, *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	return nil, nil
}

// startingNode is a node that registered a moment ago: the API server's
// not-ready taint, the unregistered taint, a startup taint and a taint of
// the NodePool's template.
func startingNode() (*corev1.Node, *karpv1.NodeClaim) {
	const id = "aws:///us-east-1a/i-0123"
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1.ec2.internal", Labels: map[string]string{corev1.LabelInstanceTypeStable: "m5.large"}},
		Spec: corev1.NodeSpec{ProviderID: id, Taints: []corev1.Taint{
			{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
			{Key: karpv1.UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute},
			{Key: "cni.example/starting", Effect: corev1.TaintEffectNoSchedule},
			{Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule},
		}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourcePods: resource.MustParse("29")}},
	}
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-abcde", Labels: map[string]string{karpv1.NodePoolLabelKey: "general"}}}
	claim.Spec.StartupTaints = []corev1.Taint{{Key: "cni.example/starting", Effect: corev1.TaintEffectNoSchedule}}
	claim.Status.ProviderID = id
	return node, claim
}

func requestTaints(t *testing.T, node *corev1.Node, claim *karpv1.NodeClaim) []string {
	t.Helper()
	req, err := New(nil, []*corev1.Node{node}, []*karpv1.NodeClaim{claim}, nil, nil).Request(context.Background(), noTypes{}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Solve.Nodes) != 1 {
		t.Fatalf("%d nodes in the request, skipped %v", len(req.Solve.Nodes), req.Skipped)
	}
	var keys []string
	for _, tt := range req.Solve.Nodes[0].GetTaints() {
		keys = append(keys, tt.GetKey())
	}
	return keys
}

// A node that registered but whose NodeClaim is not Initialized is planned
// without its ephemeral and startup taints: otherwise it looks full until
// the node lifecycle controller lifts not-ready, and the same pods are
// provisioned for again.
func TestStartingNodeIsPlannedWithoutEphemeralTaints(t *testing.T) {
	node, claim := startingNode()
	if got := requestTaints(t, node, claim); len(got) != 1 || got[0] != "team" {
		t.Errorf("taints of a starting node in the request = %v, want [team]", got)
	}
	claim.Status.Conditions = []metav1.Condition{{Type: karpv1.ConditionInitialized, Status: metav1.ConditionTrue}}
	node.Labels[karpv1.NodeRegisteredLabelKey] = "true"
	node.Labels[karpv1.NodeInitializedLabelKey] = "true"
	if got := requestTaints(t, node, claim); len(got) != 4 {
		t.Errorf("taints of an initialized node in the request = %v, want all 4", got)
	}
}

// A node that exists but is not registered yet (the node bridge, or a
// kubelet, created it a moment before the lifecycle controller labelled
// it) is planned with its NodeClaim's labels and taints and, where it
// reports none yet, the claim's allocatable, as Karpenter's cluster state
// does. Otherwise the pods it was launched for, which select the
// NodePool's labels, look unplaceable on it and are provisioned for again:
// the duplicate NodeClaim TestE2E/restart_safety caught after a restart.
func TestUnregisteredNodeIsPlannedAsItsNodeClaim(t *testing.T) {
	node, claim := startingNode()
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	claim.Labels["suite"] = "restart"
	claim.Spec.Taints = []corev1.Taint{{Key: "suite", Value: "restart", Effect: corev1.TaintEffectNoSchedule}}
	claim.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1930m"), corev1.ResourcePods: resource.MustParse("29")}
	planned := func() *typesv1.Node {
		t.Helper()
		req, err := New(nil, []*corev1.Node{node}, []*karpv1.NodeClaim{claim}, nil, nil).Request(context.Background(), noTypes{}, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(req.Solve.Nodes) != 1 || len(req.Solve.NodeClaims) != 0 {
			t.Fatalf("%d nodes and %d NodeClaims in the request, want the node alone", len(req.Solve.Nodes), len(req.Solve.NodeClaims))
		}
		return req.Solve.Nodes[0]
	}
	n := planned()
	if n.GetLabels()["suite"] != "restart" || n.GetLabels()[karpv1.NodePoolLabelKey] != "general" {
		t.Errorf("labels of the unregistered node = %v, want the NodeClaim's", n.GetLabels())
	}
	var taints []string
	for _, tt := range n.GetTaints() {
		taints = append(taints, tt.GetKey()+"="+tt.GetValue())
	}
	if strings.Join(taints, ",") != "team=a,suite=restart" {
		t.Errorf("taints of the unregistered node = %v, want the node's lasting taint and the NodeClaim's", taints)
	}
	if got := n.GetAllocatable()["cpu"]; got != "2" {
		t.Errorf("cpu = %q: the node's own figure must win", got)
	}
	if got := n.GetAllocatable()["pods"]; got != "29" {
		t.Errorf("pods = %q, want the NodeClaim's 29 while the node reports none", got)
	}
	if node.Labels["suite"] != "" || len(node.Spec.Taints) != 4 {
		t.Errorf("planning changed the cached node: %v %v", node.Labels, node.Spec.Taints)
	}
	node.Labels[karpv1.NodeRegisteredLabelKey] = "true"
	if n := planned(); n.GetLabels()["suite"] != "" {
		t.Errorf("a registered node is planned with its own labels, got %v", n.GetLabels())
	}
}

// classTypes lists fixed instance types per EC2NodeClass, the same
// objects on every call, as a cache would.
type classTypes map[string][]*typesv1.InstanceType

func (c classTypes) InstanceTypes(_ context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	return c[nc.Name], nil
}

func m5large(storage, pods string, zones ...string) *typesv1.InstanceType {
	it := &typesv1.InstanceType{Name: "m5.large", Labels: map[string]string{corev1.LabelInstanceTypeStable: "m5.large"},
		Capacity:    map[string]string{"cpu": "2", "memory": "8Gi", "ephemeral-storage": storage, "pods": pods},
		Allocatable: map[string]string{"cpu": "1930m", "memory": "7Gi", "ephemeral-storage": storage, "pods": pods}}
	for _, z := range zones {
		it.Offerings = append(it.Offerings, &typesv1.Offering{Zone: z, CapacityType: "on-demand", PricePerHour: 0.096, Available: true})
	}
	return it
}

// Two EC2NodeClasses offer the same instance type with different
// allocatable and zones: the request keeps the smaller figures, keeps
// each NodePool in its class's zones, and leaves the source's objects
// unchanged.
func TestTypesSharedByEC2NodeClasses(t *testing.T) {
	big, small := m5large("100Gi", "110", "us-east-1a", "us-east-1b"), m5large("20Gi", "29", "us-east-1c")
	src := classTypes{"big": {big}, "small": {small}}
	var pools []*karpv1.NodePool
	var classes []*awsv1.EC2NodeClass
	for _, name := range []string{"big", "small"} {
		classes = append(classes, &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: name}})
		np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "pool-" + name}}
		np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: name}
		pools = append(pools, np)
	}
	req, err := New(nil, nil, nil, pools, classes).Request(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := req.Types["m5.large"]
	if got.GetAllocatable()["ephemeral-storage"] != "20Gi" || got.GetAllocatable()["pods"] != "29" || got.GetCapacity()["ephemeral-storage"] != "20Gi" || len(got.GetOfferings()) != 3 {
		t.Errorf("merged m5.large: capacity %v allocatable %v, %d offerings", got.GetCapacity(), got.GetAllocatable(), len(got.GetOfferings()))
	}
	if big.Allocatable["pods"] != "110" || len(big.Offerings) != 2 || small.Allocatable["pods"] != "29" || len(small.Offerings) != 1 {
		t.Errorf("the source's types were changed: %v %v", big, small)
	}
	zones := map[string]string{}
	for _, np := range req.Solve.GetNodePools() {
		for _, r := range np.GetRequirements() {
			if r.GetKey() == corev1.LabelTopologyZone {
				zones[np.GetName()] = strings.Join(r.GetValues(), ",")
			}
		}
	}
	if zones["pool-big"] != "us-east-1a,us-east-1b" || zones["pool-small"] != "us-east-1c" {
		t.Errorf("zone requirements %v", zones)
	}
	// One class only: no zone requirement is added.
	req, err = New(nil, nil, nil, pools[:1], classes[:1]).Request(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := req.Solve.GetNodePools()[0].GetRequirements(); len(rs) != 0 {
		t.Errorf("requirements with one class: %v", rs)
	}
}

// The request gives each NodePool its live NodeClaims' count as usage of
// "nodes", which the solver holds against limits.nodes; deleting claims
// and other pools' claims do not count.
func TestPoolUsageCountsNodes(t *testing.T) {
	claim := func(name, pool string, deleting bool) *karpv1.NodeClaim {
		c := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{karpv1.NodePoolLabelKey: pool}}}
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
		if deleting {
			now := metav1.Now()
			c.DeletionTimestamp = &now
		}
		return c
	}
	claims := []*karpv1.NodeClaim{claim("a-1", "a", false), claim("a-2", "a", false), claim("a-3", "a", true), claim("b-1", "b", false)}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	var pools []*karpv1.NodePool
	for _, name := range []string{"a", "b", "empty"} {
		np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}}
		np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "c"}
		np.Spec.Limits = karpv1.Limits{"nodes": resource.MustParse("3")}
		pools = append(pools, np)
	}
	req, err := New(nil, nil, claims, pools, []*awsv1.EC2NodeClass{class}).Request(context.Background(), classTypes{"c": {m5large("20Gi", "29", "us-east-1a")}}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "2", "b": "1", "empty": "0"}
	for _, np := range req.Solve.GetNodePools() {
		if got := np.GetUsage()["nodes"]; got != want[np.GetName()] {
			t.Errorf("NodePool %s: usage nodes %q, want %q", np.GetName(), got, want[np.GetName()])
		}
		if got := np.GetLimits()["nodes"]; got != "3" {
			t.Errorf("NodePool %s: limit nodes %q, want 3", np.GetName(), got)
		}
	}
	if got := req.Solve.GetNodePools()[0].GetUsage()["cpu"]; got != "4" {
		t.Errorf("NodePool a: usage cpu %q, want 4", got)
	}
}
