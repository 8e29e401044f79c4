package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKubeAPI is the least of a Kubernetes API server the watcher and the
// launcher need to start: discovery of the resources they read, an empty
// list of each, and watches that stay open (ending a watch-list's initial
// events at once). Creates are echoed back; everything else is not found.
// It lets the image tests start those two services without a control plane.
type fakeKubeAPI struct {
	*httptest.Server
	done chan struct{}
}

// kubeResource is one resource the fake serves.
type kubeResource struct {
	group, version, resource, kind string
	namespaced                     bool
}

func (r kubeResource) groupVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

var kubeResources = []kubeResource{
	{"", "v1", "pods", "Pod", true},
	{"", "v1", "nodes", "Node", false},
	{"", "v1", "namespaces", "Namespace", false},
	{"", "v1", "events", "Event", true},
	{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true},
	{"", "v1", "persistentvolumes", "PersistentVolume", false},
	{"", "v1", "services", "Service", true},
	{"", "v1", "replicationcontrollers", "ReplicationController", true},
	{"", "v1", "configmaps", "ConfigMap", true},
	{"apps", "v1", "daemonsets", "DaemonSet", true},
	{"apps", "v1", "replicasets", "ReplicaSet", true},
	{"apps", "v1", "statefulsets", "StatefulSet", true},
	{"apps", "v1", "deployments", "Deployment", true},
	{"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true},
	{"storage.k8s.io", "v1", "storageclasses", "StorageClass", false},
	{"storage.k8s.io", "v1", "csinodes", "CSINode", false},
	{"storage.k8s.io", "v1", "volumeattachments", "VolumeAttachment", false},
	{"coordination.k8s.io", "v1", "leases", "Lease", true},
	{"events.k8s.io", "v1", "events", "Event", true},
	{"karpenter.sh", "v1", "nodepools", "NodePool", false},
	{"karpenter.sh", "v1", "nodeclaims", "NodeClaim", false},
	{"karpenter.k8s.aws", "v1", "ec2nodeclasses", "EC2NodeClass", false},
}

func newFakeKubeAPI(t *testing.T) *fakeKubeAPI {
	t.Helper()
	f := &fakeKubeAPI{done: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.done)
		f.CloseClientConnections()
		f.Close()
	})
	return f
}

// kubeconfig writes a kubeconfig for the fake into dir.
func (f *fakeKubeAPI) kubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: %q}}]
users: [{name: fake, user: {token: fake}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
`, f.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeKubeAPI) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/version":
		writeJSON(w, 200, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.0"})
	case r.URL.Path == "/api":
		writeJSON(w, 200, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
	case r.URL.Path == "/apis":
		writeJSON(w, 200, apiGroupList())
	case len(parts) == 2 && parts[0] == "api", len(parts) == 3 && parts[0] == "apis":
		writeJSON(w, 200, apiResourceList(strings.Join(parts[1:], "/")))
	case parts[0] == "api" && len(parts) > 2:
		f.resource(w, r, "", parts[1], parts[2:])
	case parts[0] == "apis" && len(parts) > 3:
		f.resource(w, r, parts[1], parts[2], parts[3:])
	default:
		notFound(w)
	}
}

func apiGroupList() map[string]any {
	var groups []map[string]any
	seen := map[string]bool{}
	for _, res := range kubeResources {
		if res.group == "" || seen[res.group] {
			continue
		}
		seen[res.group] = true
		gv := map[string]string{"groupVersion": res.groupVersion(), "version": res.version}
		groups = append(groups, map[string]any{"name": res.group, "versions": []any{gv}, "preferredVersion": gv})
	}
	return map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
}

func apiResourceList(gv string) map[string]any {
	resources := []map[string]any{}
	for _, res := range kubeResources {
		if res.groupVersion() == gv {
			resources = append(resources, map[string]any{"name": res.resource, "singularName": strings.ToLower(res.kind),
				"namespaced": res.namespaced, "kind": res.kind, "verbs": []string{"get", "list", "watch", "create", "update", "patch", "delete"}})
		}
	}
	return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
}

// resource serves rest, the path after the group version:
// [namespaces/NS/]RESOURCE[/NAME].
func (f *fakeKubeAPI) resource(w http.ResponseWriter, r *http.Request, group, version string, rest []string) {
	if len(rest) >= 3 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	var res *kubeResource
	for i := range kubeResources {
		if kubeResources[i].group == group && kubeResources[i].version == version && kubeResources[i].resource == rest[0] {
			res = &kubeResources[i]
		}
	}
	switch {
	case res == nil:
		notFound(w)
	case r.Method == http.MethodPost && len(rest) == 1:
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	case r.Method != http.MethodGet || len(rest) != 1:
		notFound(w)
	case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
		f.watch(w, r, *res)
	default:
		writeJSON(w, 200, map[string]any{"kind": res.kind + "List", "apiVersion": res.groupVersion(),
			"metadata": map[string]string{"resourceVersion": "1"}, "items": []any{}})
	}
}

// watch streams nothing until the client or the test ends; a watch-list
// (sendInitialEvents) gets its end-of-initial-events bookmark first.
func (f *fakeKubeAPI) watch(w http.ResponseWriter, r *http.Request, res kubeResource) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	if r.URL.Query().Get("sendInitialEvents") == "true" {
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
			"kind": res.kind, "apiVersion": res.groupVersion(),
			"metadata": map[string]any{"resourceVersion": "1", "annotations": map[string]string{"k8s.io/initial-events-end": "true"}},
		}})
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-f.done:
	}
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"reason": "NotFound", "code": http.StatusNotFound, "message": "not found"})
}
