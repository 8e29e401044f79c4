package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-io/flotilla/integration/controlplane"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// startFreshControlPlane starts a control plane of the test's own, without
// the Karpenter CRDs (the shared one may have them from other tests), with
// the controller manager (deployment and replicaset controllers) when
// asked.
func startFreshControlPlane(ctx context.Context, t *testing.T, controllerManager bool) *controlplane.ControlPlane {
	t.Helper()
	build := exec.CommandContext(ctx, "bash", "../hack/controlplane.sh")
	build.Stderr = os.Stderr
	out, err := build.Output()
	if err != nil {
		t.Fatalf("building the control plane: %v", err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: strings.TrimSpace(string(out)), WorkDir: t.TempDir(), ControllerManager: controllerManager})
	t.Cleanup(cp.Stop)
	if err != nil {
		t.Fatalf("starting the control plane: %v\n%s", err, cp.LogTail("kube-apiserver", 20))
	}
	return cp
}

// applyExamples applies every object of examples/karpenter unchanged and
// returns the NodePool names.
func applyExamples(ctx context.Context, t *testing.T, dyn dynamic.Interface) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", "karpenter", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var pools []string
	for _, f := range files {
		docs, err := readManifests(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range docs {
			gvr, err := gvrOf(obj)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if _, err := dyn.Resource(gvr).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "flotilla-integration"}); err != nil {
				t.Fatalf("%s: applying %s %s: %v", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
			}
			if gvr == karpv1.NodePoolsResource {
				pools = append(pools, obj.GetName())
			}
		}
	}
	return pools
}
