package drain

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func critical(p *corev1.Pod) { p.Spec.PriorityClassName = SystemNodeCritical }
func daemon(p *corev1.Pod) {
	p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds"})
}
func doNotDisrupt(p *corev1.Pod) {
	p.Annotations = map[string]string{DoNotDisruptAnnotationKey: "true"}
}
func mirror(p *corev1.Pod) {
	p.Annotations = map[string]string{MirrorPodAnnotationKey: "abc"}
}
func succeeded(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
func toleratesAll(p *corev1.Pod) {
	p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
}
func terminatingSince(d time.Duration) podOpt {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(t0.Add(-d))
		p.DeletionTimestamp = &ts
	}
}

// cluster is a fake clientset whose eviction subresource deletes the pod,
// unless the pod is listed in pdbBlocked, which answers 429 as a
// PodDisruptionBudget refusal does.
func cluster(t *testing.T, pdbBlocked []string, pods ...*corev1.Pod) (*fake.Clientset, *[]string) {
	t.Helper()
	objs := make([]runtime.Object, 0, len(pods))
	for _, p := range pods {
		objs = append(objs, p)
	}
	c := fake.NewClientset(objs...)
	var evictions []string
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateAction)
		if !ok || a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := ca.GetObject().(*policyv1.Eviction)
		evictions = append(evictions, ev.Name)
		if slices.Contains(pdbBlocked, ev.Name) {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		if err := c.Tracker().Delete(a.GetResource(), ev.Namespace, ev.Name); err != nil {
			return true, nil, err
		}
		return true, nil, nil
	})
	return c, &evictions
}

func node() *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}} }

func drainer(c *fake.Clientset) *Drainer {
	return &Drainer{Client: c, Now: func() time.Time { return t0 }, Metrics: NewMetrics(), Log: slog.New(slog.DiscardHandler)}
}

func TestDrainOrder(t *testing.T) {
	pods := []*corev1.Pod{
		pod("ds", daemon), pod("crit", critical), pod("web-1"), pod("web-2"), pod("ds-crit", daemon, critical),
	}
	c, evictions := cluster(t, nil, pods...)
	d := drainer(c)
	var order [][]string
	for range 6 {
		live := livePods(t, c)
		res, err := d.Drain(context.Background(), node(), live, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Done {
			break
		}
		slices.Sort(res.Evicted)
		order = append(order, res.Evicted)
	}
	want := [][]string{{"default/web-1", "default/web-2"}, {"default/crit"}, {"default/ds"}, {"default/ds-crit"}}
	if !slices.EqualFunc(order, want, slices.Equal) {
		t.Fatalf("eviction passes = %v, want %v", order, want)
	}
	if len(*evictions) != 5 {
		t.Fatalf("evictions = %v", *evictions)
	}
}

func livePods(t *testing.T, c *fake.Clientset) []*corev1.Pod {
	t.Helper()
	l, err := c.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*corev1.Pod, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out
}

func TestDrainPDBBlocked(t *testing.T) {
	c, evictions := cluster(t, []string{"guarded"}, pod("guarded"), pod("free"))
	d := drainer(c)
	res, err := d.Drain(context.Background(), node(), livePods(t, c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done || !slices.Equal(res.Evicted, []string{"default/free"}) {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Blocked) != 1 || res.Blocked[0].Pod != "default/guarded" {
		t.Fatalf("blocked = %+v", res.Blocked)
	}
	// The next pass retries the blocked pod.
	res, err = d.Drain(context.Background(), node(), livePods(t, c), nil)
	if err != nil || res.Done || len(res.Blocked) != 1 {
		t.Fatalf("second pass = %+v, %v", res, err)
	}
	if got := *evictions; len(got) != 3 || got[2] != "guarded" {
		t.Fatalf("evictions = %v", got)
	}
}

func TestDrainIgnoredPods(t *testing.T) {
	pods := []*corev1.Pod{pod("mirror", mirror), pod("done", succeeded), pod("tolerant", toleratesAll),
		pod("stuck", terminatingSince(2*time.Minute)), pod("other-node", func(p *corev1.Pod) { p.Spec.NodeName = "n2" })}
	c, evictions := cluster(t, nil, pods...)
	res, err := drainer(c).Drain(context.Background(), node(), pods, nil)
	if err != nil || !res.Done || len(*evictions) != 0 {
		t.Fatalf("result = %+v, err %v, evictions %v", res, err, *evictions)
	}
}

func TestDrainWaitsForTerminating(t *testing.T) {
	pods := []*corev1.Pod{pod("leaving", terminatingSince(10*time.Second))}
	c, evictions := cluster(t, nil, pods...)
	res, err := drainer(c).Drain(context.Background(), node(), pods, nil)
	if err != nil || res.Done || len(*evictions) != 0 {
		t.Fatalf("result = %+v, err %v, evictions %v", res, err, *evictions)
	}
}

func TestDrainDoNotDisruptUntilDeadline(t *testing.T) {
	c, evictions := cluster(t, []string{"guarded"}, pod("pinned", doNotDisrupt), pod("guarded"), pod("ds", daemon))
	d := drainer(c)
	deadline := t0.Add(time.Minute)
	res, err := d.Drain(context.Background(), node(), livePods(t, c), &deadline)
	if err != nil {
		t.Fatal(err)
	}
	if res.Done || len(res.Evicted) != 0 || len(res.Blocked) != 2 {
		t.Fatalf("before deadline: %+v", res)
	}
	if slices.Contains(*evictions, "pinned") {
		t.Fatal("do-not-disrupt pod was evicted before the deadline")
	}
	// After the deadline every remaining pod is deleted outright.
	d.Now = func() time.Time { return deadline }
	res, err = d.Drain(context.Background(), node(), livePods(t, c), &deadline)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Deleted)
	if !slices.Equal(res.Deleted, []string{"default/ds", "default/guarded", "default/pinned"}) {
		t.Fatalf("after deadline: %+v", res)
	}
	res, err = d.Drain(context.Background(), node(), livePods(t, c), &deadline)
	if err != nil || !res.Done {
		t.Fatalf("final pass: %+v %v", res, err)
	}
}

func TestDrainNoDeadlineNeverForces(t *testing.T) {
	c, _ := cluster(t, nil, pod("pinned", doNotDisrupt))
	d := drainer(c)
	d.Now = func() time.Time { return t0.Add(1000 * time.Hour) }
	res, err := d.Drain(context.Background(), node(), livePods(t, c), nil)
	if err != nil || res.Done || len(res.Deleted) != 0 || len(res.Blocked) != 1 {
		t.Fatalf("result = %+v %v", res, err)
	}
}

func TestDrainEvictionError(t *testing.T) {
	c, _ := cluster(t, nil, pod("a"))
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "a", nil)
	})
	if _, err := drainer(c).Drain(context.Background(), node(), livePods(t, c), nil); err == nil {
		t.Fatal("want an error")
	}
	if _, err := (&Drainer{Client: c}).Drain(context.Background(), nil, nil, nil); err == nil {
		t.Fatal("want an error for a nil node")
	}
}

func TestToleratesDisrupted(t *testing.T) {
	cases := []struct {
		tol  corev1.Toleration
		want bool
	}{
		{corev1.Toleration{Operator: corev1.TolerationOpExists}, true},
		{corev1.Toleration{Key: DisruptedTaintKey, Operator: corev1.TolerationOpExists}, true},
		{corev1.Toleration{Key: DisruptedTaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}, true},
		{corev1.Toleration{Key: DisruptedTaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}, false},
		{corev1.Toleration{Key: DisruptedTaintKey}, true},
		{corev1.Toleration{Key: DisruptedTaintKey, Value: "x"}, false},
		{corev1.Toleration{Key: "node.kubernetes.io/unschedulable", Operator: corev1.TolerationOpExists}, false},
		{corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}, false},
	}
	for _, tc := range cases {
		p := pod("p", func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{tc.tol} })
		if got := ToleratesDisrupted(p); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.tol, got, tc.want)
		}
	}
}

func TestTaintDisrupted(t *testing.T) {
	n := node()
	n.Spec.Taints = []corev1.Taint{{Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule}}
	c := fake.NewClientset(n)
	ctx := context.Background()
	for range 2 {
		if err := TaintDisrupted(ctx, c, "n1"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Taints) != 2 || got.Spec.Taints[1].Key != DisruptedTaintKey || got.Spec.Taints[0].Key != "team" {
		t.Fatalf("taints = %+v", got.Spec.Taints)
	}
	if err := TaintDisrupted(ctx, c, "missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("missing node: %v", err)
	}
}

// Untainting removes only the disrupted taint, idempotently; a node gone is
// no error.
func TestUntaintDisrupted(t *testing.T) {
	n := node()
	n.Spec.Taints = []corev1.Taint{{Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule}, DisruptedTaint()}
	c := fake.NewClientset(n)
	ctx := context.Background()
	for range 2 {
		if err := UntaintDisrupted(ctx, c, "n1"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Taints) != 1 || got.Spec.Taints[0].Key != "team" {
		t.Fatalf("taints = %+v", got.Spec.Taints)
	}
	if err := UntaintDisrupted(ctx, c, "missing"); err != nil {
		t.Fatalf("missing node: %v", err)
	}
}
