package integration

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flotilla-io/flotilla/integration/controlplane"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/planner"
)

// methodRecorder records the HTTP method and path of every request the
// planner's client sends.
type methodRecorder struct {
	next http.RoundTripper

	mu   sync.Mutex
	seen []string
}

func (m *methodRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.seen = append(m.seen, req.Method+" "+req.URL.Path)
	m.mu.Unlock()
	return m.next.RoundTrip(req)
}

func (m *methodRecorder) requests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

// plannerClient is the client `flotilla plan` reads with: a controller-runtime
// client whose transport refuses anything but GET, here with every request
// recorded in front of that guard.
func plannerClient(t *testing.T, cfg *rest.Config) (client.Client, *methodRecorder) {
	t.Helper()
	rec := &methodRecorder{}
	c := rest.CopyConfig(cfg)
	c.Wrap(planner.ReadOnlyTransport)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	kube, err := client.New(c, client.Options{Scheme: planner.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return kube, rec
}

// TestPlanLive runs the planner against a real API server: first without
// the Karpenter CRDs (a clear error), then with deploy/crds, the examples of
// examples/karpenter applied unchanged and a Deployment whose pods the
// real kube-scheduler marks unschedulable. The plan must propose NodeClaims
// for every pending pod, send only GET requests, and leave every object as
// it was.
func TestPlanLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cp := startFreshControlPlane(ctx, t, true)
	t.Logf("control plane up in %s", time.Since(start).Round(time.Millisecond))
	opts := planner.Options{
		Types:  &planner.CatalogTypes{Specs: ec2catalog.Embedded(), SpotPriceFactor: planner.DefaultSpotPriceFactor},
		Solver: planner.InProcess{}, InstanceTypesSource: "embedded catalog", SolverName: "in-process",
	}

	t.Run("no CRDs", func(t *testing.T) {
		kube, rec := plannerClient(t, cp.Config)
		_, err := planner.Plan(ctx, kube, opts)
		if !errors.Is(err, planner.ErrNoCRDs) || err.Error() != "cluster has no karpenter.sh/v1 NodePool CRD; install deploy/crds" {
			t.Fatalf("err = %v, want the missing NodePool CRD", err)
		}
		assertOnlyGets(t, rec)
	})

	if err := installKarpenterCRDs(ctx, cp.Config); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	applied := applyExamples(ctx, t, dyn)
	const replicas = 6
	createPendingDeployment(ctx, t, cp, replicas)
	pendingKeys := waitUnschedulable(ctx, t, cp, replicas)

	before := objectVersions(ctx, t, dyn)
	kube, rec := plannerClient(t, cp.Config)
	begin := time.Now()
	rep, err := planner.Plan(ctx, kube, opts)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	after := objectVersions(ctx, t, dyn)

	p := rep.Provisioning
	var planned []string
	for _, nc := range p.NodeClaims {
		planned = append(planned, nc.Pods...)
		if !slices.Contains(applied, nc.NodePool) || nc.InstanceType == "" || len(nc.InstanceTypeOptions) == 0 || nc.PricePerHour <= 0 {
			t.Errorf("NodeClaim %+v", nc)
		}
	}
	slices.Sort(planned)
	if p.PendingPods != replicas || !slices.Equal(planned, pendingKeys) || len(p.Unschedulable) != 0 {
		t.Errorf("pending %d, planned %v, unschedulable %+v; want NodeClaims for %v", p.PendingPods, planned, p.Unschedulable, pendingKeys)
	}
	if p.CostPerHour <= 0 || p.LowerBoundPerHour <= 0 || p.LowerBoundPerHour > p.CostPerHour+1e-9 || rep.Cost.PlannedPerHour != p.CostPerHour {
		t.Errorf("costs: plan %v, bound %v, total %+v", p.CostPerHour, p.LowerBoundPerHour, rep.Cost)
	}
	if rep.Consolidation.Candidates != 0 || len(rep.Consolidation.Decisions) != 0 {
		t.Errorf("consolidation of a cluster without NodeClaims: %+v", rep.Consolidation)
	}
	assertOnlyGets(t, rec)
	if changed := diffVersions(before, after); len(changed) > 0 {
		t.Errorf("objects changed during the plan: %v", changed)
	}
	t.Logf("planned %d pods onto %d NodeClaims ($%.4f/h, lower bound $%.4f/h) in %s with %d GET requests; %d objects unchanged",
		len(planned), len(p.NodeClaims), p.CostPerHour, p.LowerBoundPerHour, took.Round(time.Millisecond), len(rec.requests()), len(after))

	// The guard the CLI installs refuses a write before it is sent.
	err = kube.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plan-must-not-write"}})
	if !errors.Is(err, planner.ErrWriteRefused) {
		t.Errorf("a write through the planner's client: %v, want it refused", err)
	}
}

func assertOnlyGets(t *testing.T, rec *methodRecorder) {
	t.Helper()
	reqs := rec.requests()
	if len(reqs) == 0 {
		t.Error("no request recorded")
	}
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("the planner sent %s", r)
		}
	}
}

func createPendingDeployment(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": "plan-web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plan-web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("2Gi")},
				}}}},
			},
		},
	}
	if _, err := cp.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitUnschedulable waits until the Deployment's pods exist and the
// scheduler marked each Unschedulable; it returns their keys, sorted.
func waitUnschedulable(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, n int) []string {
	t.Helper()
	var keys []string
	waitFor(ctx, t, "the Deployment's pods to be unschedulable", func() (bool, error) {
		pods, err := cp.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=plan-web"})
		if err != nil {
			return false, err
		}
		keys = keys[:0]
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					keys = append(keys, p.Namespace+"/"+p.Name)
				}
			}
		}
		return len(pods.Items) == n && len(keys) == n, nil
	})
	slices.Sort(keys)
	return keys
}

// versionedResources are the kinds compared before and after a plan.
var versionedResources = []schema.GroupVersionResource{
	karpv1.NodePoolsResource, karpv1.NodeClaimsResource, awsv1.EC2NodeClassesResource,
	{Version: "v1", Resource: "pods"}, {Version: "v1", Resource: "nodes"}, {Version: "v1", Resource: "namespaces"},
	{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "events"},
	{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
}

// objectVersions maps "resource/namespace/name" to the resourceVersion of
// every object of versionedResources.
func objectVersions(ctx context.Context, t *testing.T, dyn dynamic.Interface) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvr := range versionedResources {
		l, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr.Resource, err)
		}
		for _, o := range l.Items {
			if gvr.Resource == "events" && !flotillaEvent(o.Object) {
				continue
			}
			out[gvr.Resource+"/"+o.GetNamespace()+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	return out
}

// flotillaEvent reports whether a Flotilla component recorded the event:
// only those are compared, since the kube-scheduler keeps recording
// FailedScheduling events for the pending pods on its own.
func flotillaEvent(obj map[string]any) bool {
	for _, path := range [][]string{{"reportingComponent"}, {"source", "component"}} {
		if v, _, _ := unstructured.NestedString(obj, path...); strings.Contains(strings.ToLower(v), "flotilla") {
			return true
		}
	}
	return false
}

// diffVersions lists the objects added, removed or updated.
func diffVersions(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		old, ok := before[k]
		switch {
		case !ok:
			out = append(out, "added "+k)
		case old != v:
			out = append(out, "updated "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	slices.Sort(out)
	return out
}
