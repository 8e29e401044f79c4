package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/planner"
)

// fakeAPIServer answers discovery and lists like a kube-apiserver holding
// the given lists (path -> list object), and records every request.
type fakeAPIServer struct {
	crds      bool
	forbidden bool
	lists     map[string]any

	mu       sync.Mutex
	requests []string
}

type resourceDef struct {
	group, version, name, kind string
	namespaced                 bool
}

var fakeResources = []resourceDef{
	{"", "v1", "pods", "Pod", true}, {"", "v1", "nodes", "Node", false}, {"", "v1", "namespaces", "Namespace", false},
	{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true}, {"", "v1", "persistentvolumes", "PersistentVolume", false},
	{"apps", "v1", "daemonsets", "DaemonSet", true}, {"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true},
	{"storage.k8s.io", "v1", "storageclasses", "StorageClass", false},
	{"karpenter.sh", "v1", "nodepools", "NodePool", false}, {"karpenter.sh", "v1", "nodeclaims", "NodeClaim", false},
	{"karpenter.k8s.aws", "v1", "ec2nodeclasses", "EC2NodeClass", false},
}

func (f *fakeAPIServer) served(r resourceDef) bool {
	return f.crds || !strings.HasPrefix(r.group, "karpenter")
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if body, ok := f.discovery(r.URL.Path); ok {
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	for _, res := range fakeResources {
		if !f.served(res) || r.URL.Path != listPath(res) {
			continue
		}
		if f.forbidden {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonForbidden, Code: 403,
				Message: fmt.Sprintf(`%s is forbidden: User "viewer" cannot list resource %q in API group %q at the cluster scope`, res.name, res.name, res.group)})
			return
		}
		list, ok := f.lists[res.name]
		if !ok {
			list = map[string]any{"kind": res.kind + "List", "apiVersion": gv(res), "metadata": map[string]any{}, "items": []any{}}
		}
		_ = json.NewEncoder(w).Encode(list)
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: 404})
}

func gv(r resourceDef) string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

func listPath(r resourceDef) string {
	if r.group == "" {
		return "/api/v1/" + r.name
	}
	return "/apis/" + gv(r) + "/" + r.name
}

func (f *fakeAPIServer) discovery(path string) (any, bool) {
	switch path {
	case "/api":
		return map[string]any{"kind": "APIVersions", "versions": []string{"v1"}}, true
	case "/apis":
		var groups []any
		seen := map[string]bool{}
		for _, r := range fakeResources {
			if r.group == "" || seen[r.group] || !f.served(r) {
				continue
			}
			seen[r.group] = true
			v := map[string]any{"groupVersion": gv(r), "version": r.version}
			groups = append(groups, map[string]any{"name": r.group, "versions": []any{v}, "preferredVersion": v})
		}
		return map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}, true
	}
	var resources []any
	var groupVersion string
	for _, r := range fakeResources {
		if f.served(r) && (path == "/api/"+gv(r) && r.group == "" || path == "/apis/"+gv(r) && r.group != "") {
			groupVersion = gv(r)
			resources = append(resources, map[string]any{"name": r.name, "kind": r.kind, "namespaced": r.namespaced, "verbs": []string{"get", "list", "watch"}})
		}
	}
	if resources == nil {
		return nil, false
	}
	return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": groupVersion, "resources": resources}, true
}

func (f *fakeAPIServer) methods() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, r := range f.requests {
		out[strings.Fields(r)[0]]++
	}
	return out
}

// kubeconfigFor writes a kubeconfig for the server URL with two contexts:
// "fake" (current: the URL) and "other" (a closed port).
func kubeconfigFor(t *testing.T, url string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: %q}
- name: other
  cluster: {server: "http://%s"}
users:
- name: admin
  user: {token: test}
contexts:
- name: fake
  context: {cluster: fake, user: admin}
- name: other
  context: {cluster: other, user: admin}
current-context: fake
`, url, closed)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func typed(kind, apiVersion string, items any) map[string]any {
	b, err := json.Marshal(items)
	if err != nil {
		panic(err)
	}
	var out []any
	_ = json.Unmarshal(b, &out)
	for _, it := range out {
		m := it.(map[string]any)
		m["kind"], m["apiVersion"] = strings.TrimSuffix(kind, "List"), apiVersion
	}
	return map[string]any{"kind": kind, "apiVersion": apiVersion, "metadata": map[string]any{"resourceVersion": "7"}, "items": out}
}

// pendingCluster is one NodePool, its EC2NodeClass and two pending pods.
func pendingCluster() map[string]any {
	pool := karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general"}}
	pool.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	pool.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized
	class := awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	class.Spec.Role = "KarpenterNodeRole"
	var pods []corev1.Pod
	for _, name := range []string{"web-1", "web-2"} {
		pods = append(pods, corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}},
		})
	}
	return map[string]any{
		"nodepools":      typed("NodePoolList", "karpenter.sh/v1", []karpv1.NodePool{pool}),
		"ec2nodeclasses": typed("EC2NodeClassList", "karpenter.k8s.aws/v1", []awsv1.EC2NodeClass{class}),
		"pods":           typed("PodList", "v1", pods),
	}
}

func TestPlanAgainstFakeAPIServer(t *testing.T) {
	api := &fakeAPIServer{crds: true, lists: pendingCluster()}
	srv := httptest.NewServer(api)
	defer srv.Close()
	kubeconfig := kubeconfigFor(t, srv.URL)

	var out, errb bytes.Buffer
	if code := runPlan([]string{"--kubeconfig", kubeconfig, "-o", "json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep planner.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	placed := 0
	for _, nc := range rep.Provisioning.NodeClaims {
		placed += len(nc.Pods)
		if nc.NodePool != "general" || len(nc.InstanceTypeOptions) == 0 || nc.PricePerHour <= 0 || nc.Zone == "" {
			t.Errorf("NodeClaim %+v", nc)
		}
	}
	if rep.Provisioning.PendingPods != 2 || placed != 2 || rep.Provisioning.LowerBoundPerHour <= 0 || !strings.Contains(rep.InstanceTypes, "embedded catalog") {
		t.Errorf("report %+v", rep.Provisioning)
	}
	if m := api.methods(); len(m) != 1 || m["GET"] == 0 {
		t.Errorf("methods sent to the API server: %v; want GET only", m)
	}

	out.Reset()
	if code := runPlan([]string{"--kubeconfig", kubeconfig, "--spot-price-factor", "0"}, &out, &errb); code != exitOK {
		t.Fatalf("text: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"PROVISIONING: 2 pending pods", "general", "on-demand", "Launch: ", "lower bound", "DISRUPTION: 0 launched NodeClaims", "Cost: $0.0000/hour now -> $"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("text output:\n%s", out.String())
}

func TestPlanBadInput(t *testing.T) {
	withCRDs := httptest.NewServer(&fakeAPIServer{crds: true})
	defer withCRDs.Close()
	noCRDs := httptest.NewServer(&fakeAPIServer{})
	defer noCRDs.Close()
	denied := httptest.NewServer(&fakeAPIServer{crds: true, forbidden: true})
	defer denied.Close()
	catalog := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(catalog, []byte("name,price\nm5.large,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no CRDs", []string{"--kubeconfig", kubeconfigFor(t, noCRDs.URL)}, "flotilla plan: cluster has no karpenter.sh/v1 NodePool CRD; install deploy/crds"},
		{"RBAC denied", []string{"--kubeconfig", kubeconfigFor(t, denied.URL)}, `flotilla plan: RBAC denied a read: nodepools is forbidden: User "viewer"`},
		{"unreachable API server", []string{"--kubeconfig", kubeconfigFor(t, withCRDs.URL), "--context", "other"}, "flotilla plan: cannot reach the Kubernetes API server"},
		{"unknown context", []string{"--kubeconfig", kubeconfigFor(t, withCRDs.URL), "--context", "nope"}, "flotilla plan: kubeconfig: "},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(t.TempDir(), "none")}, "flotilla plan: kubeconfig: "},
		{"bad catalog", []string{"--kubeconfig", kubeconfigFor(t, withCRDs.URL), "--catalog", catalog}, "flotilla plan: --catalog " + catalog + ": catalog header: missing column"},
		{"both sources", []string{"--launcher-addr", "127.0.0.1:1", "--catalog", catalog}, "--launcher-addr and --catalog: give one"},
		{"bad output", []string{"-o", "yaml"}, `-o "yaml": use text or json`},
		{"solver without certificates", []string{"--solver-addr", "127.0.0.1:1"}, "--launcher-addr and --solver-addr need --tls-cert, --tls-key and --tls-ca"},
		{"insecure and certificates", []string{"--insecure", "--tls-ca", "ca.crt"}, "--insecure: cannot be combined"},
		{"bad spot factor", []string{"--spot-price-factor", "2"}, "--spot-price-factor 2: must be between 0 and 1"},
		{"argument", []string{"now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runPlan(tc.args, &out, &errb)
			if code != exitBadInput || !strings.HasPrefix(errb.String(), tc.want) && !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
			if strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
				t.Errorf("want one line on stderr and nothing on stdout; got %q / %q", errb.String(), out.String())
			}
		})
	}
}

func TestPlanUnreachableLauncher(t *testing.T) {
	srv := httptest.NewServer(&fakeAPIServer{crds: true, lists: pendingCluster()})
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	var out, errb bytes.Buffer
	code := runPlan([]string{"--kubeconfig", kubeconfigFor(t, srv.URL), "--launcher-addr", dead, "--insecure", "--timeout", "20s"}, &out, &errb)
	if code != exitBadInput || !strings.HasPrefix(errb.String(), "flotilla plan: the launcher at "+dead+" does not answer") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestPlanHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runPlan([]string{"-h"}, &out, &errb); code != exitOK || out.String() != planUsage {
		t.Errorf("exit %d, stdout %q", code, out.String())
	}
}
