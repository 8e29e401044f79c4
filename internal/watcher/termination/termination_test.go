package termination

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/lifecycle"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// launcher records Terminate calls; other methods are not used here.
type launcher struct {
	launcherv1.LauncherServiceClient
	terminated []string
}

func (l *launcher) Terminate(_ context.Context, in *launcherv1.TerminateRequest, _ ...grpc.CallOption) (*launcherv1.TerminateResponse, error) {
	l.terminated = append(l.terminated, in.GetNodeClaim()+"/"+in.GetInstanceId())
	return &launcherv1.TerminateResponse{State: "shutting-down"}, nil
}

type nopRecorder struct{}

func (nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

func TestForceAfter(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	tgp := &metav1.Duration{Duration: time.Hour}
	for _, tc := range []struct {
		name     string
		deletion *metav1.Time
		tgp      *metav1.Duration
		deadline string
		want     string
	}{
		{name: "neither", deletion: &deleted, want: ""},
		{name: "grace period", deletion: &deleted, tgp: tgp, want: "2026-11-27T11:00:00Z"},
		{name: "deadline earlier", deletion: &deleted, tgp: tgp, deadline: "2026-11-27T10:02:00Z", want: "2026-11-27T10:02:00Z"},
		{name: "grace period earlier", deletion: &deleted, tgp: tgp, deadline: "2026-11-27T12:00:00Z", want: "2026-11-27T11:00:00Z"},
		{name: "deadline alone", deletion: &deleted, deadline: "2026-11-27T10:02:00Z", want: "2026-11-27T10:02:00Z"},
		{name: "deadline inside the minimum grace", deletion: &deleted, deadline: "2026-11-27T10:00:10Z", want: "2026-11-27T10:00:30Z"},
		{name: "deadline before the deletion", deletion: &deleted, deadline: "2026-11-27T09:00:00Z", want: "2026-11-27T10:00:30Z"},
		{name: "deadline in the distant past", deletion: &deleted, tgp: tgp, deadline: "1970-01-01T00:00:00Z", want: "2026-11-27T10:00:30Z"},
		{name: "unreadable deadline", deletion: &deleted, deadline: "soon", want: ""},
		{name: "not deleting", deadline: "2026-11-27T10:02:00Z", want: ""},
	} {
		claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: tc.deletion}}
		claim.Spec.TerminationGracePeriod = tc.tgp
		if tc.deadline != "" {
			claim.Annotations = map[string]string{DeadlineAnnotationKey: tc.deadline}
		}
		got := ""
		if at := ForceAfter(claim, 30*time.Second); at != nil {
			got = at.UTC().Format(time.RFC3339)
		}
		if got != tc.want {
			t.Errorf("%s: ForceAfter = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A deleted NodeClaim whose node runs nothing: one Reconcile taints the
// node, finds it drained, terminates the instance, deletes the node and
// releases the NodeClaim.
func TestReconcileTerminatesAnEmptyNode(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	pid := "aws:///us-east-1a/i-0abc"
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-a", Finalizers: []string{karpv1.TerminationFinalizer},
		Labels: map[string]string{karpv1.NodePoolLabelKey: "general"}}}
	claim.Status.ProviderID, claim.Status.NodeName = pid, "node-a"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Finalizers: []string{karpv1.TerminationFinalizer}}, Spec: corev1.NodeSpec{ProviderID: pid}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(claim, node).WithStatusSubresource(&karpv1.NodeClaim{}).
		WithIndex(&corev1.Node{}, lifecycle.IndexNodeProviderID, func(o client.Object) []string { return []string{o.(*corev1.Node).Spec.ProviderID} }).
		WithIndex(&corev1.Pod{}, lifecycle.IndexPodNodeName, func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		Build()
	ctx := context.Background()
	if err := kube.Delete(ctx, claim); err != nil { // the finalizer keeps it, deleting
		t.Fatal(err)
	}
	cs := kubefake.NewClientset(node.DeepCopy())
	l := &launcher{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &Controller{Client: kube, Clientset: cs, Drainer: &drain.Drainer{Client: cs, Log: log}, Launcher: l, Recorder: nopRecorder{},
		Metrics: metrics.New(), Journal: journal.New(8, time.Now), Log: log}
	if _, err := c.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}}); err != nil {
		t.Fatal(err)
	}
	if len(l.terminated) != 1 || l.terminated[0] != claim.Name+"/i-0abc" {
		t.Errorf("terminated %v, want [%s/i-0abc]", l.terminated, claim.Name)
	}
	tainted, err := cs.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil || len(tainted.Spec.Taints) == 0 || tainted.Spec.Taints[0].Key != karpv1.DisruptedTaintKey {
		t.Errorf("node taints before deletion: %v (%v)", tainted.Spec.Taints, err)
	}
	if err := kube.Get(ctx, client.ObjectKey{Name: "node-a"}, &corev1.Node{}); err == nil {
		t.Error("the node still exists")
	}
	if err := kube.Get(ctx, client.ObjectKey{Name: claim.Name}, &karpv1.NodeClaim{}); err == nil {
		t.Error("the NodeClaim still exists: its finalizer was not released")
	}
	if e := c.Journal.Recent(0); len(e) != 1 || e[0].Kind != "Terminate" {
		t.Errorf("journal %v", e)
	}
}

// A node a user deletes takes its NodeClaim with it; a node without a
// NodeClaim just loses our finalizer.
func TestNodeDeletionDeletesItsNodeClaim(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	pid := "aws:///us-east-1a/i-0def"
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-b", Finalizers: []string{karpv1.TerminationFinalizer}}}
	claim.Status.ProviderID = pid
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b", Finalizers: []string{karpv1.TerminationFinalizer}}, Spec: corev1.NodeSpec{ProviderID: pid}}
	stray := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-stray", Finalizers: []string{karpv1.TerminationFinalizer}}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0000"}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(claim, node, stray).WithStatusSubresource(&karpv1.NodeClaim{}).
		WithIndex(&karpv1.NodeClaim{}, lifecycle.IndexClaimProviderID, func(o client.Object) []string { return []string{o.(*karpv1.NodeClaim).Status.ProviderID} }).
		Build()
	ctx := context.Background()
	c := &Controller{Client: kube, Journal: journal.New(8, time.Now)}
	for _, n := range []*corev1.Node{node, stray} {
		if err := kube.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, err := c.reconcileNode(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Name: n.Name}}); err != nil {
			t.Fatal(err)
		}
	}
	got := &karpv1.NodeClaim{}
	if err := kube.Get(ctx, client.ObjectKey{Name: claim.Name}, got); err != nil || got.DeletionTimestamp == nil {
		t.Errorf("the NodeClaim of a deleted node is not deleting (%v)", err)
	}
	if err := kube.Get(ctx, client.ObjectKey{Name: "node-stray"}, &corev1.Node{}); err == nil {
		t.Error("a node without a NodeClaim kept our finalizer")
	}
}

// A NodeClaim deleted with a Disrupt deadline already past (a late request,
// a resumed disruption, an annotation written by hand): its pods are evicted
// through the Eviction API, PodDisruptionBudgets and do-not-disrupt hold,
// and nothing is deleted outright until the minimum grace after the
// deletion has run out.
func TestPastDeadlineStillEvicts(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	pid := "aws:///us-east-1a/i-0past"
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-p", Finalizers: []string{karpv1.TerminationFinalizer},
		Labels:      map[string]string{karpv1.NodePoolLabelKey: "general"},
		Annotations: map[string]string{DeadlineAnnotationKey: "2000-01-01T00:00:00Z"}}}
	claim.Status.ProviderID, claim.Status.NodeName = pid, "node-p"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-p"}, Spec: corev1.NodeSpec{ProviderID: pid}}
	pod := func(name string, annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: annotations},
			Spec: corev1.PodSpec{NodeName: "node-p"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	pods := []*corev1.Pod{pod("free", nil), pod("guarded", nil), pod("pinned", map[string]string{drain.DoNotDisruptAnnotationKey: "true"})}
	objs := []client.Object{claim, node}
	kubeObjs := []runtime.Object{node.DeepCopy()}
	for _, p := range pods {
		objs = append(objs, p)
		kubeObjs = append(kubeObjs, p.DeepCopy())
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&karpv1.NodeClaim{}).
		WithIndex(&corev1.Node{}, lifecycle.IndexNodeProviderID, func(o client.Object) []string { return []string{o.(*corev1.Node).Spec.ProviderID} }).
		WithIndex(&corev1.Pod{}, lifecycle.IndexPodNodeName, func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		Build()
	ctx := context.Background()
	if err := kube.Delete(ctx, claim); err != nil {
		t.Fatal(err)
	}
	deleting := &karpv1.NodeClaim{}
	if err := kube.Get(ctx, client.ObjectKey{Name: claim.Name}, deleting); err != nil || deleting.DeletionTimestamp == nil {
		t.Fatalf("the NodeClaim is not deleting: %v", err)
	}
	cs := kubefake.NewClientset(kubeObjs...)
	var evicted, deleted []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction).Name
		evicted = append(evicted, name)
		if name == "guarded" {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		return true, nil, nil
	})
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		deleted = append(deleted, a.(k8stesting.DeleteAction).GetName())
		return true, nil, nil
	})
	now := deleting.DeletionTimestamp.Time
	l := &launcher{}
	log := slog.New(slog.DiscardHandler)
	c := &Controller{Client: kube, Clientset: cs, Drainer: &drain.Drainer{Client: cs, Log: log, Now: func() time.Time { return now }},
		Launcher: l, Recorder: nopRecorder{}, Metrics: metrics.New(), Journal: journal.New(8, time.Now), Log: log, MinGrace: 30 * time.Second}
	req := reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}}

	for _, at := range []time.Duration{0, 10 * time.Second, 29 * time.Second} {
		now = deleting.DeletionTimestamp.Add(at)
		if _, err := c.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if len(deleted) != 0 || len(l.terminated) != 0 {
		t.Fatalf("within the minimum grace: pods deleted %v, instances terminated %v; want evictions only", deleted, l.terminated)
	}
	if !slices.Contains(evicted, "free") || !slices.Contains(evicted, "guarded") || slices.Contains(evicted, "pinned") {
		t.Fatalf("evictions %v: want free and guarded tried, pinned (do-not-disrupt) left alone", evicted)
	}

	now = deleting.DeletionTimestamp.Add(30 * time.Second)
	if _, err := c.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(deleted, "guarded") || !slices.Contains(deleted, "pinned") {
		t.Fatalf("after the minimum grace: deleted %v, want the pods evictions could not move", deleted)
	}
}
