package peerbench

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestObserver drives the observer with a fake API server: a priced node,
// a pod that waits 3 s for scheduling, an eviction from a disrupted node,
// a scale-down deletion that is not one, and NodeClaim churn.
func TestObserver(t *testing.T) {
	spec := ec2catalog.Spec{Name: "m5.large", Family: "m5", VCPU: 2, MemoryMiB: 8192, Arch: "amd64", ENIs: 3, IPv4PerENI: 10, OnDemandPrice: 0.096}
	cat, err := NewCatalog([]ec2catalog.Spec{spec})
	if err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset()
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{NodeClaimResource: "NodeClaimList"})
	obs := NewObserver(cat)
	ctx := context.Background()
	if err := obs.Start(ctx, kube, dyn, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	defer obs.Stop()

	created := time.Now().Add(-time.Hour)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "n1", CreationTimestamp: metav1.NewTime(created), Labels: map[string]string{
		labelInstanceType: "m5.large", labelZone: "us-east-1a", labelCapacityType: Spot}}}
	if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podAt := time.Now().Add(-10 * time.Second)
	for _, name := range []string{"a", "b"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "x", UID: k8stypes.UID("p" + name), CreationTimestamp: metav1.NewTime(podAt)},
			Spec:       corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(podAt.Add(3 * time.Second))}}},
		}
		if _, err := kube.CoreV1().Pods("x").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nc := &unstructured.Unstructured{}
	nc.SetAPIVersion("karpenter.sh/v1")
	nc.SetKind("NodeClaim")
	nc.SetName("c1")
	if _, err := dyn.Resource(NodeClaimResource).Create(ctx, nc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods and claim", func() bool { r := obs.Result(); return r.Pods == 2 && r.ClaimsCreated == 1 })

	// A scale-down deletion on a healthy node is not an eviction.
	deleting := func(name string) {
		p, err := kube.CoreV1().Pods("x").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.DeletionTimestamp = &now
		if _, err := kube.CoreV1().Pods("x").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deleting("a")
	node.Spec.Taints = []corev1.Taint{{Key: disruptedTaint, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "taint seen", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.nodes["n1"].disrupted
	})
	deleting("b")
	if err := kube.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dyn.Resource(NodeClaimResource).Delete(ctx, "c1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node gone", func() bool { r := obs.Result(); return r.NodesEnd == 0 && r.ClaimsDeleted == 1 })
	r := obs.Result()
	price, _ := cat.Price("m5.large", "us-east-1a", Spot)
	if price <= 0 || price >= spec.OnDemandPrice {
		t.Fatalf("spot price %g", price)
	}
	if math.Abs(r.DollarHours-price) > price*0.01 {
		t.Errorf("$·h %g, want about %g (one hour of the spot offering)", r.DollarHours, price)
	}
	if r.Evictions != 1 {
		t.Errorf("evictions %d, want 1", r.Evictions)
	}
	if r.PendingP50 != 3*time.Second || r.PendingMax != 3*time.Second || r.Unscheduled != 0 {
		t.Errorf("pending p50 %s max %s unscheduled %d", r.PendingP50, r.PendingMax, r.Unscheduled)
	}
	if r.NodesLaunched != 1 || r.NodesPeak != 1 || len(r.UnknownOfferings) != 0 {
		t.Errorf("nodes launched %d peak %d unknown %v", r.NodesLaunched, r.NodesPeak, r.UnknownOfferings)
	}
}

// TestReadProc reads this test process.
func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSSBytes < 1<<20 || s.CPUSeconds < 0 {
		t.Errorf("%+v", s)
	}
}
