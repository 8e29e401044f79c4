package lifecycle

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// gcLauncher lists fixed instances and records terminations; it refuses
// the instances in refuse, as the launcher refuses one whose tags do not
// match.
type gcLauncher struct {
	launcherv1.LauncherServiceClient
	instances  []*launcherv1.Instance
	refuse     map[string]bool
	terminated []string
}

func (l *gcLauncher) ListInstances(context.Context, *launcherv1.ListInstancesRequest, ...grpc.CallOption) (*launcherv1.ListInstancesResponse, error) {
	return &launcherv1.ListInstancesResponse{Instances: l.instances}, nil
}

func (l *gcLauncher) Terminate(_ context.Context, req *launcherv1.TerminateRequest, _ ...grpc.CallOption) (*launcherv1.TerminateResponse, error) {
	if req.GetNodeClaim() == "" {
		return nil, status.Error(codes.InvalidArgument, "node_claim: empty")
	}
	if l.refuse[req.GetInstanceId()] {
		return nil, status.Errorf(codes.FailedPrecondition, "instance %s is not NodeClaim %s's", req.GetInstanceId(), req.GetNodeClaim())
	}
	l.terminated = append(l.terminated, req.GetNodeClaim()+"/"+req.GetInstanceId())
	return &launcherv1.TerminateResponse{State: "shutting-down"}, nil
}

// Garbage collection names the gone NodeClaim in each Terminate, leaves an
// instance without a NodeClaim tag alone, and goes on past a refusal.
func TestGarbageCollectionTerminatesByNodeClaim(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := karpv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	live := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "live"}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(live).Build()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	old := timestamppb.New(now.Add(-time.Hour))
	inst := func(id, claim string) *launcherv1.Instance {
		return &launcherv1.Instance{Id: id, NodeClaim: claim, ProviderId: "aws:///us-east-1a/" + id, LaunchTime: old}
	}
	l := &gcLauncher{
		instances: []*launcherv1.Instance{
			inst("i-live", "live"), inst("i-refused", "gone-a"), inst("i-leaked", "gone-b"), inst("i-untagged", ""),
			{Id: "i-young", NodeClaim: "gone-c", ProviderId: "aws:///us-east-1a/i-young", LaunchTime: timestamppb.New(now)},
		},
		refuse: map[string]bool{"i-refused": true},
	}
	g := &GarbageCollector{Client: kube, Launcher: l, Recorder: nopRecorder{}, Grace: time.Minute,
		Journal: journal.New(16, func() time.Time { return now }), Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	err := g.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "i-refused") {
		t.Fatalf("Collect: %v, want the refusal of i-refused reported", err)
	}
	if len(l.terminated) != 1 || l.terminated[0] != "gone-b/i-leaked" {
		t.Fatalf("terminated %v, want [gone-b/i-leaked]", l.terminated)
	}
	if !g.reported["i-untagged"] {
		t.Errorf("the untagged instance was not reported")
	}
	// Gone from the list: forgotten.
	l.instances = l.instances[:1]
	if err := g.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(g.reported) != 0 {
		t.Errorf("reported %v after the instance went away", g.reported)
	}
}
