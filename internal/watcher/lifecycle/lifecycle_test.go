package lifecycle

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
)

func TestNotInitialized(t *testing.T) {
	claim := &karpv1.NodeClaim{}
	claim.Spec.StartupTaints = []corev1.Taint{{Key: "cni.example/not-ready", Effect: corev1.TaintEffectNoSchedule}}
	claim.Spec.Resources.Requests = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1"), corev1.ResourceCPU: resource.MustParse("1")}
	node := &corev1.Node{}
	if notInitialized(claim, node) == "" {
		t.Fatal("a node without Ready is not initialized")
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	node.Spec.Taints = []corev1.Taint{{Key: "cni.example/not-ready", Effect: corev1.TaintEffectNoSchedule}}
	if why := notInitialized(claim, node); why == "" {
		t.Fatal("startup taint still on the node")
	}
	node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}
	if why := notInitialized(claim, node); why == "" {
		t.Fatal("Ready, but the node lifecycle controller has not lifted not-ready yet")
	}
	node.Spec.Taints = nil
	if why := notInitialized(claim, node); why == "" {
		t.Fatal("GPU not registered yet")
	}
	node.Status.Allocatable = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	if why := notInitialized(claim, node); why != "" {
		t.Fatalf("initialized node reported: %s", why)
	}
	fresh := &corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: karpv1.UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute}}}}
	state.ApplyRegistration(fresh, claim)
	if taints := fresh.Spec.Taints; len(taints) != 1 || taints[0].Key != "cni.example/not-ready" {
		t.Errorf("taints %v", taints)
	}
}
