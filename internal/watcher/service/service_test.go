package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/termination"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

type nopRecorder struct{}

func (nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

func claimAndNode(name, instance string, annotations map[string]string) (*karpv1.NodeClaim, *corev1.Node) {
	pid := "aws:///us-east-1a/" + instance
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations,
		Finalizers: []string{karpv1.TerminationFinalizer}, Labels: map[string]string{karpv1.NodePoolLabelKey: "general"}}}
	claim.Status.ProviderID, claim.Status.NodeName = pid, "node-"+name
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + name}, Spec: corev1.NodeSpec{ProviderID: pid}}
	return claim, node
}

// pool is the NodePool the claims of claimAndNode belong to.
func pool() *karpv1.NodePool {
	return &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general"}}
}

// newService serves objs, plus the NodePool "general".
func newService(t *testing.T, objs ...client.Object) (*Service, client.Client, *kubefake.Clientset) {
	t.Helper()
	objs = append(objs, pool())
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&karpv1.NodeClaim{}).Build()
	var nodes []runtime.Object
	for _, o := range objs {
		if n, ok := o.(*corev1.Node); ok {
			nodes = append(nodes, n.DeepCopy())
		}
	}
	cs := kubefake.NewClientset(nodes...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &Service{Client: kube, Reader: kube, Clientset: cs, Recorder: nopRecorder{}, Journal: journal.New(16, time.Now),
		Metrics: metrics.New(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ctx: ctx}, kube, cs
}

// deleting waits until the NodeClaim has a deletion timestamp (its
// finalizer keeps it).
func deleting(t *testing.T, kube client.Client, name string) *karpv1.NodeClaim {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := &karpv1.NodeClaim{}
		if err := kube.Get(context.Background(), client.ObjectKey{Name: name}, c); err != nil {
			t.Fatal(err)
		}
		if c.DeletionTimestamp != nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("NodeClaim %s not deleted within 10s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDisruptRecordsTaintsAndDeletes(t *testing.T) {
	claim, node := claimAndNode("a", "i-0a", nil)
	s, kube, cs := newService(t, claim, node)
	deadline := time.Now().Add(90 * time.Second).UTC().Truncate(time.Second)
	resp, err := s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0a", Reason: "SpotInterrupted", Deadline: timestamppb.New(deadline)})
	if err != nil || !resp.GetAccepted() || resp.GetNodeName() != node.Name {
		t.Fatalf("Disrupt = %v, %v", resp, err)
	}
	got := deleting(t, kube, "a")
	if got.Annotations[DisruptionAnnotationKey] != "SpotInterrupted" || got.Annotations[termination.DeadlineAnnotationKey] != deadline.Format(time.RFC3339) {
		t.Errorf("annotations %v: want the disruption recorded with its deadline", got.Annotations)
	}
	n, err := cs.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tainted := false
	for _, taint := range n.Spec.Taints {
		tainted = tainted || taint.Key == karpv1.DisruptedTaintKey
	}
	if !tainted {
		t.Errorf("node taints %v: want %s", n.Spec.Taints, karpv1.DisruptedTaintKey)
	}
	// Asking again changes nothing.
	resp, err = s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0a"})
	if err != nil || !resp.GetAccepted() || resp.GetMessage() != "already terminating" {
		t.Errorf("second Disrupt = %v, %v", resp, err)
	}
	// An instance that is not ours is refused.
	resp, err = s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0other"})
	if !errors.Is(err, apierr.ErrNotFound) || resp != nil {
		t.Errorf("Disrupt of a stranger = %v, %v; want NotFound", resp, err)
	}
}

func TestResumeFinishesRecordedDisruptions(t *testing.T) {
	deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	recorded, n1 := claimAndNode("recorded", "i-01", map[string]string{DisruptionAnnotationKey: "SpotInterrupted", termination.DeadlineAnnotationKey: deadline})
	untouched, n2 := claimAndNode("untouched", "i-02", nil)
	s, kube, _ := newService(t, recorded, n1, untouched, n2)
	if err := s.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	deleting(t, kube, "recorded")
	c := &karpv1.NodeClaim{}
	if err := kube.Get(context.Background(), client.ObjectKey{Name: "untouched"}, c); err != nil || c.DeletionTimestamp != nil {
		t.Errorf("a NodeClaim without the record was disrupted: %v", err)
	}
	entries := s.Journal.Recent(0)
	if len(entries) != 1 || entries[0].Object != "nodeclaim/recorded" {
		t.Errorf("journal %v: want one resumed disruption", entries)
	}
	// A second Resume finds it deleting and does nothing more.
	if err := s.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if entries := s.Journal.Recent(0); len(entries) != 1 {
		t.Errorf("journal after a second Resume: %v", entries)
	}
}
