package state

import (
	"context"
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
	if got := requestTaints(t, node, claim); len(got) != 4 {
		t.Errorf("taints of an initialized node in the request = %v, want all 4", got)
	}
}
