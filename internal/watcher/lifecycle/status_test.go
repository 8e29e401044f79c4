package lifecycle

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
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
