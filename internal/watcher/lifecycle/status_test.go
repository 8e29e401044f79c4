package lifecycle

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// resolvingLauncher answers ResolveNodeClass about generation gen of the
// class, as a launcher whose informer has seen that generation would.
type resolvingLauncher struct {
	launcherv1.LauncherServiceClient
	gen  int64
	asks []*launcherv1.ResolveNodeClassRequest
}

func (l *resolvingLauncher) ResolveNodeClass(_ context.Context, req *launcherv1.ResolveNodeClassRequest, _ ...grpc.CallOption) (*launcherv1.ResolveNodeClassResponse, error) {
	l.asks = append(l.asks, req)
	return &launcherv1.ResolveNodeClassResponse{
		Subnets: []*launcherv1.ResolvedSubnet{{Id: "subnet-1", Zone: "us-east-1a"}}, SecurityGroupIds: []string{"sg-1"},
		Images: []*launcherv1.ResolvedImage{{Id: "ami-1"}}, InstanceProfile: "profile",
		Conditions:          []*launcherv1.Condition{{Type: "SubnetsReady", Status: "True", Reason: "SubnetsReady"}},
		NodeClassGeneration: l.gen,
	}, nil
}

// The class is resolved by name, and an answer about an older generation
// than the watcher's is not written: it asks again shortly.
func TestNodeClassStatusByNameAndGeneration(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := awsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 2}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(class).WithStatusSubresource(class).Build()
	l := &resolvingLauncher{gen: 1}
	s := &NodeClassStatus{Client: kube, Launcher: l, Recorder: nopRecorder{}, Refresh: 1 << 40, Log: slog.New(slog.DiscardHandler)}
	req := reconcile.Request{NamespacedName: client.ObjectKey{Name: "default"}}
	res, err := s.Reconcile(context.Background(), req)
	if err != nil || res.RequeueAfter != staleResolutionRetry {
		t.Fatalf("stale answer: %v %v, want a retry after %s", res, err, staleResolutionRetry)
	}
	got := &awsv1.EC2NodeClass{}
	if err := kube.Get(context.Background(), req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Subnets) != 0 || len(got.Status.Conditions) != 0 {
		t.Fatalf("status written from a stale answer: %+v", got.Status)
	}
	l.gen = 2
	if _, err := s.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := kube.Get(context.Background(), req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if !nodeclass.IsReady(got) || got.Status.InstanceProfile != "profile" || len(got.Status.Subnets) != 1 {
		t.Fatalf("status %+v", got.Status)
	}
	for _, a := range l.asks {
		if a.GetNodeClassName() != "default" || a.GetNodeClass() != nil { //nolint:staticcheck // deprecated field, checked unset
			t.Fatalf("request %v, want the class by name only", a)
		}
	}
}

// A NodePool's status names what Flotilla does not honor: Balanced in
// FieldsHonored (still Ready when its class is), a static NodePool in
// ValidationSucceeded (never Ready, so it launches nothing); and it
// records the EC2NodeClass generation it was computed from.
func TestNodePoolStatusNamesUnhonoredFields(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 3}}
	ref := &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	balanced := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "balanced", Generation: 1}}
	balanced.Spec.Template.Spec.NodeClassRef = ref
	balanced.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyBalanced
	replicas := int64(3)
	static := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "static", Generation: 1}}
	static.Spec.Template.Spec.NodeClassRef = ref
	static.Spec.Replicas = &replicas
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(class, balanced, static).WithStatusSubresource(balanced, static).Build()
	s := &NodePoolStatus{Client: kube, Recorder: nopRecorder{}, Metrics: metrics.New()}
	status := func(name string) *karpv1.NodePool {
		t.Helper()
		if _, err := s.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			t.Fatal(err)
		}
		got := &karpv1.NodePool{}
		if err := kube.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := status("balanced")
	c := meta.FindStatusCondition(got.Status.Conditions, karpv1.ConditionFieldsHonored)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "consolidationPolicy: Balanced") {
		t.Errorf("FieldsHonored of a Balanced NodePool = %+v", c)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, karpv1.ConditionValidationSucceeded) {
		t.Errorf("a Balanced NodePool failed validation: %+v", got.Status.Conditions)
	}
	if got.Status.NodeClassObservedGeneration != 3 {
		t.Errorf("nodeClassObservedGeneration = %d, want 3", got.Status.NodeClassObservedGeneration)
	}
	got = status("static")
	v := meta.FindStatusCondition(got.Status.Conditions, karpv1.ConditionValidationSucceeded)
	if v == nil || v.Status != metav1.ConditionFalse || !strings.Contains(v.Message, "spec.replicas") {
		t.Errorf("ValidationSucceeded of a static NodePool = %+v", v)
	}
	if meta.IsStatusConditionTrue(got.Status.Conditions, karpv1.ConditionReady) {
		t.Error("a static NodePool is Ready")
	}
}
