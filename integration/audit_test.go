package integration

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/flotilla-io/flotilla/integration/controlplane"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/audit"
)

// TestAuditLive runs the audit against a real API server of its own: first
// without the Karpenter CRDs (the clear error), then with deploy/crds, the
// examples of examples/karpenter, a Deployment of three replicas without a
// PodDisruptionBudget, Flotilla's interruption Deployment (queue set, kept
// off managed nodes) and one of its pods bound to a node a NodePool
// launched. The audit must find what is wrong, nothing about what is right,
// and send only GET requests.
func TestAuditLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	cp := startFreshControlPlane(ctx, t, false)
	t.Logf("control plane up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("no CRDs", func(t *testing.T) {
		_, err := audit.Load(ctx, cp.Config)
		if !errors.Is(err, audit.ErrNoNodePoolCRD) || err.Error() != "cluster has no karpenter.sh/v1 NodePool CRD" {
			t.Fatalf("err = %v, want the missing NodePool CRD", err)
		}
	})

	if err := installKarpenterCRDs(ctx, cp.Config); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	pools := applyExamples(ctx, t, dyn)
	createAuditObjects(ctx, t, cp)

	cfg, rec := recordingConfig(cp.Config)
	begin := time.Now()
	in, err := audit.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	if !in.FromLiveCluster || len(in.NodePools) != len(pools) || len(in.EC2NodeClasses) != 1 || len(in.Nodes) != 1 {
		t.Fatalf("loaded %d NodePools (want %d), %d EC2NodeClasses, %d Nodes", len(in.NodePools), len(pools), len(in.EC2NodeClasses), len(in.Nodes))
	}
	rep := audit.Run(in)
	got := map[string]audit.Finding{}
	for _, f := range rep.Findings {
		got[f.Check+" "+f.Object.String()] = f
		t.Logf("%s %s [%s] %s", f.Severity, f.Object, f.Check, f.Message)
	}
	want := map[string]audit.Severity{
		"controller-placement Pod flotilla/flotilla-interruption-0": audit.SeverityRequired,
		"disruption-budget Deployment shop/web":                     audit.SeverityHigh,
		"limit-range Namespace shop":                                audit.SeverityRecommended,
		"limit-range Namespace default":                             audit.SeverityRecommended,
	}
	for k, sev := range want {
		if f, ok := got[k]; !ok || f.Severity != sev {
			t.Errorf("finding %q: got %+v, want severity %s", k, f, sev)
		}
	}
	for _, unwanted := range []string{
		"ami-pinned EC2NodeClass default",
		"controller-placement Deployment flotilla/flotilla-interruption",
		"interruption-handling Deployment flotilla/flotilla-interruption",
		"resource-requests Deployment shop/web",
		"memory-requests-equal-limits Deployment shop/web",
		"limit-range Namespace kube-system",
	} {
		if _, ok := got[unwanted]; ok {
			t.Errorf("unexpected finding %q", unwanted)
		}
	}
	for _, np := range pools {
		for _, check := range []string{audit.CheckNodePoolLimits, audit.CheckNodePoolOverlap, audit.CheckSpotDiversity} {
			if f, ok := got[check+" NodePool "+np]; ok {
				t.Errorf("example NodePool finding: %+v", f)
			}
		}
	}
	if !rep.Failed() {
		t.Error("a controller pod on a managed node must fail a required item")
	}
	reqs := rec.requests()
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("the audit sent %s", r)
		}
	}
	t.Logf("audit: %d findings (%d required, %d high, %d recommended) from %d GET requests in %s",
		len(rep.Findings), rep.Count(audit.SeverityRequired), rep.Count(audit.SeverityHigh), rep.Count(audit.SeverityRecommended), len(reqs), took.Round(time.Millisecond))

	t.Run("unreachable", func(t *testing.T) {
		dead := rest.CopyConfig(cp.Config)
		dead.Host = "https://127.0.0.1:1"
		_, err := audit.Load(ctx, dead)
		if !errors.Is(err, audit.ErrUnreachable) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("err = %v, want one line wrapping ErrUnreachable", err)
		}
	})
}

// createAuditObjects creates the workloads, the controller and the node the
// audit looks at.
func createAuditObjects(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	kube := cp.Client
	for _, ns := range []string{"shop", "flotilla"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lr := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flotilla", Name: "defaults"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		}}},
	}
	if _, err := kube.CoreV1().LimitRanges("flotilla").Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	requests := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	web := auditDeployment("shop", "web", 3, corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Resources: requests}}})
	interruption := auditDeployment("flotilla", "flotilla-interruption", 1, corev1.PodSpec{
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: karpv1.NodePoolLabelKey, Operator: corev1.NodeSelectorOpDoesNotExist}}}},
		}}},
		Containers: []corev1.Container{{Name: "interruption", Image: "flotilla-interruption", Args: []string{"--interruption-queue=flotilla-test"}, Resources: requests}},
	})
	for _, d := range []*appsv1.Deployment{web, interruption} {
		if _, err := kube.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A node launched by a NodePool, and a pod of the interruption service
	// bound to it (as if created before the affinity was added).
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "audit-managed-0", Labels: map[string]string{karpv1.NodePoolLabelKey: "generalcompute"}}}
	if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flotilla", Name: "flotilla-interruption-0", Labels: interruption.Spec.Template.Labels},
		Spec:       *interruption.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.Affinity = nil
	pod.Spec.NodeName = node.Name
	if _, err := kube.CoreV1().Pods("flotilla").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func auditDeployment(ns, name string, replicas int32, spec corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// auditRecorder records the method and path of every request.
type auditRecorder struct {
	mu   sync.Mutex
	reqs []string
}

// recordingTransport records each request in rec before sending it.
type recordingTransport struct {
	rec  *auditRecorder
	next http.RoundTripper
}

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.rec.mu.Lock()
	rt.rec.reqs = append(rt.rec.reqs, req.Method+" "+req.URL.Path)
	rt.rec.mu.Unlock()
	return rt.next.RoundTrip(req)
}

func (r *auditRecorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

// recordingConfig returns a copy of cfg whose requests rec records.
func recordingConfig(cfg *rest.Config) (*rest.Config, *auditRecorder) {
	rec := &auditRecorder{}
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return recordingTransport{rec: rec, next: rt}
	})
	return out, rec
}
