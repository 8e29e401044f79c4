package lifecycle

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
)

// A NodeClaim Karpenter launched carries Karpenter's hash versions and
// hashes; Flotilla re-stamps it instead of calling it drifted.
func TestRestampKarpenterNodeClaim(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: awsv1.EC2NodeClassSpec{Role: "KarpenterNodeRole"}}
	pool := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general"}}
	pool.Spec.Template.ObjectMeta.Labels = map[string]string{"team": "a"}
	pool.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-x", Labels: map[string]string{karpv1.NodePoolLabelKey: "general"},
		Annotations: map[string]string{
			karpv1.NodePoolHashAnnotationKey: "6821555240504398300", karpv1.NodePoolHashVersionAnnotationKey: "v3",
			karpv1.NodeClassHashAnnotationKey: "15616957348189460630", karpv1.NodeClassHashVersionAnnotationKey: "v4",
		}}}
	claim.Spec.NodeClassRef = pool.Spec.Template.Spec.NodeClassRef
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(class, pool, claim).Build()
	c := &Controller{Client: kube}
	ctx := context.Background()
	if err := c.restamp(ctx, claim); err != nil {
		t.Fatal(err)
	}
	got := &karpv1.NodeClaim{}
	if err := kube.Get(ctx, client.ObjectKey{Name: claim.Name}, got); err != nil {
		t.Fatal(err)
	}
	a := got.Annotations
	if a[karpv1.NodePoolHashVersionAnnotationKey] != disruption.NodePoolHashVersion || a[karpv1.NodePoolHashAnnotationKey] != disruption.NodePoolHash(pool) ||
		a[karpv1.NodeClassHashVersionAnnotationKey] != disruption.NodeClassHashVersion || a[karpv1.NodeClassHashAnnotationKey] != disruption.NodeClassHash(class) {
		t.Fatalf("annotations after restamp: %v", a)
	}
	if r := disruption.DriftReason(&disruption.Candidate{NodeClaim: got, NodePool: pool, NodeClass: class}); r != "" {
		t.Errorf("re-stamped NodeClaim drifted: %s", r)
	}
	// Current stamps: nothing to patch.
	rv := got.ResourceVersion
	if err := c.restamp(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := kube.Get(ctx, client.ObjectKey{Name: claim.Name}, got); err != nil || got.ResourceVersion != rv {
		t.Errorf("second restamp patched the NodeClaim (%v)", err)
	}
	// After a template change it does drift.
	pool.Spec.Template.ObjectMeta.Labels["team"] = "b"
	if r := disruption.DriftReason(&disruption.Candidate{NodeClaim: got, NodePool: pool, NodeClass: class}); r == "" {
		t.Error("a template change after the restamp is not drift")
	}
}
