package lifecycle

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// racingLauncher deletes the NodeClaim (as a disruption rollback and
// termination would, finding no instance yet) while it launches.
type racingLauncher struct {
	launcherv1.LauncherServiceClient
	kube       client.Client
	launched   []*launcherv1.LaunchRequest
	terminated []*launcherv1.TerminateRequest
}

func (l *racingLauncher) Launch(ctx context.Context, req *launcherv1.LaunchRequest, _ ...grpc.CallOption) (*launcherv1.LaunchResponse, error) {
	l.launched = append(l.launched, req)
	claim := &karpv1.NodeClaim{}
	if err := l.kube.Get(ctx, client.ObjectKey{Name: req.GetNodeClaim()}, claim); err != nil {
		return nil, err
	}
	controllerutil.RemoveFinalizer(claim, karpv1.TerminationFinalizer)
	if err := l.kube.Update(ctx, claim); err != nil {
		return nil, err
	}
	if err := l.kube.Delete(ctx, claim); err != nil {
		return nil, err
	}
	return &launcherv1.LaunchResponse{Instance: &launcherv1.Instance{
		Id: "i-0orphan", ProviderId: "aws:///us-east-1a/i-0orphan", InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "on-demand",
	}}, nil
}

func (l *racingLauncher) Terminate(_ context.Context, req *launcherv1.TerminateRequest, _ ...grpc.CallOption) (*launcherv1.TerminateResponse, error) {
	l.terminated = append(l.terminated, req)
	return &launcherv1.TerminateResponse{}, nil
}

type nopRecorder struct{}

func (nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

// launchFixture is a fake API server holding the EC2NodeClass "default" and
// a NodeClaim of pool (with finalizers) that refers to it and is due to
// launch.
func launchFixture(t *testing.T, pool string, finalizers ...string) (client.Client, *karpv1.NodeClaim) {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: pool + "-abcde", Labels: map[string]string{karpv1.NodePoolLabelKey: pool},
		CreationTimestamp: metav1.Now(), Finalizers: finalizers}}
	claim.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(class, claim).WithStatusSubresource(&karpv1.NodeClaim{}).Build()
	return kube, claim
}

// launchController launches through launcher, with no timeouts.
func launchController(kube client.Client, launcher launcherv1.LauncherServiceClient, rec provisioning.Recorder) *Controller {
	return &Controller{Client: kube, Launcher: launcher, Recorder: rec, LaunchTimeout: 1 << 62,
		RegistrationTimeout: 1 << 62, Log: slog.New(slog.DiscardHandler)}
}

// An instance whose NodeClaim was deleted during the launch is terminated
// at once, not left running until garbage collection.
func TestInstanceOfClaimDeletedDuringLaunchIsTerminated(t *testing.T) {
	kube, claim := launchFixture(t, "general")
	launcher := &racingLauncher{kube: kube}
	c := launchController(kube, launcher, nopRecorder{})
	if _, err := c.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	// The launch names the class (the launcher reads it), never carries it.
	if len(launcher.launched) != 1 || launcher.launched[0].GetNodeClassName() != "default" ||
		launcher.launched[0].GetNodeClass() != nil || launcher.launched[0].GetCluster() != "" { //nolint:staticcheck // deprecated fields, checked unset
		t.Fatalf("launch requests %v, want one naming class default", launcher.launched)
	}
	if len(launcher.terminated) != 1 || launcher.terminated[0].GetInstanceId() != "i-0orphan" || launcher.terminated[0].GetNodeClaim() != claim.Name {
		t.Fatalf("terminated %v, want the orphaned instance i-0orphan of %s", launcher.terminated, claim.Name)
	}
}
