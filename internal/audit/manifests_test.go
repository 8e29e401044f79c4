package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadManifests(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", `# comment only document
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: shop}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Service
metadata: {name: ignored}
---
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: old-version-ignored}
`)
	writeFile(t, dir, "sub/b.yml", nodePool("general", "")+"\n---\n"+nodeClass("default", "amiSelectorTerms: [{alias: al2023@v20240807}]"))
	writeFile(t, dir, "sub/notes.txt", "not a manifest: [")
	single := writeFile(t, t.TempDir(), "coredns.conf", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: coredns, namespace: kube-system}\ndata: {Corefile: x}\n")

	in, err := LoadManifests([]string{dir, single})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Namespaces) != 1 || len(in.Deployments) != 1 || len(in.NodePools) != 1 || len(in.EC2NodeClasses) != 1 || len(in.ConfigMaps) != 1 {
		t.Fatalf("loaded %+v", in)
	}
	if ns := in.Deployments[0].Namespace; ns != "default" {
		t.Errorf("Deployment namespace %q, want default", ns)
	}
	if in.NodePools[0].Name != "general" || in.EC2NodeClasses[0].Spec.AMISelectorTerms[0].Alias != "al2023@v20240807" {
		t.Errorf("decoded %+v %+v", in.NodePools[0].ObjectMeta, in.EC2NodeClasses[0].Spec)
	}
	if in.FromLiveCluster {
		t.Error("manifests are not a live cluster")
	}
}

func TestLoadManifestsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content, want string
	}{
		{"malformed YAML", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\n---\nkind: [\n", "bad.yaml: document 2: invalid YAML"},
		{"scalar document", "just a string\n", "bad.yaml: document 1: not a Kubernetes object"},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", "bad.yaml: document 1: missing apiVersion or kind"},
		{"wrong field type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: many}\n", "bad.yaml: document 1 (Deployment web): "},
		{"bad quantity", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: p}\nspec: {limits: {cpu: lots}}\n", "bad.yaml: document 1 (NodePool p): "},
		{"bad list item", "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Namespace, metadata: {name: a}}, {kind: Pod}]\n", "bad.yaml: document 1: item 2: missing apiVersion or kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, "bad.yaml", tc.content)
			_, err := LoadManifests([]string{p})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadManifests(nil); err == nil {
		t.Error("no paths: want an error")
	}
	if _, err := LoadManifests([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing file: want an error")
	}
	if _, err := LoadManifests([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no .yaml") {
		t.Errorf("empty dir: err = %v", err)
	}
}

func TestValueSet(t *testing.T) {
	in := func(v ...string) *valueSet {
		s := &valueSet{}
		s.add("In", v)
		return s
	}
	if in("a", "b").intersect(in("c")).empty() != true {
		t.Error("In a,b and In c must be disjoint")
	}
	if in("a", "b").intersect(in("b", "c")).empty() {
		t.Error("In a,b and In b,c share b")
	}
	gt := &valueSet{}
	gt.add("Gt", []string{"4"})
	if !gt.allows("5") || gt.allows("4") || gt.allows("x") {
		t.Error("Gt 4")
	}
	bad := &valueSet{}
	bad.add("Gt", []string{"four"})
	if !bad.allows("x") || bad.exists {
		t.Error("an unparsable bound must leave the set open")
	}
	notIn := &valueSet{}
	notIn.add("NotIn", []string{"spot"})
	if notIn.allows("spot") || !notIn.allows("on-demand") || notIn.intersect(in("spot")).empty() != true {
		t.Error("NotIn spot")
	}
}

func TestAPIError(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New(`User "x" cannot list resource "nodes"`))
	err := apiError("listing nodes", forbidden, "https://h")
	if !strings.HasPrefix(err.Error(), "listing nodes: forbidden: ") || !apierrors.IsForbidden(err) {
		t.Errorf("forbidden: %v", err)
	}
	err = apiError("listing pods", apierrors.NewInternalError(errors.New("boom")), "https://h")
	if errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "listing pods: ") {
		t.Errorf("status error: %v", err)
	}
	err = apiError("discovering karpenter.sh/v1", errors.New("dial tcp: connection refused"), "https://h")
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "cannot reach the API server at https://h: ") {
		t.Errorf("unreachable: %v", err)
	}
}
