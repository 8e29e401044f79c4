package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderWithLock renders the chart with hack/render-manifests.sh and
// IMAGES_LOCK set to the build's lock file: every service's image is then
// pinned to its locked digest, and the CLI image, which the chart does not
// run, is left out.
func TestRenderWithLock(t *testing.T) {
	out := builtOut(t)
	cmd := exec.Command("bash", "../../hack/render-manifests.sh", "--stdout")
	cmd.Env = append(os.Environ(), "IMAGES_LOCK="+filepath.Join(out, lockFile))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	manifests, err := cmd.Output()
	if err != nil {
		t.Fatalf("render-manifests.sh: %v\n%s", err, stderr.String())
	}
	var rendered []string
	for _, line := range strings.Split(string(manifests), "\n") {
		if image, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
			rendered = append(rendered, image)
		}
	}
	if len(rendered) != 4 {
		t.Fatalf("rendered images %q, want the four services'", rendered)
	}
	for _, e := range readLock(t, out) {
		want := "ghcr.io/flotilla-io/" + e.name + ":" + e.tag + "@" + e.digest
		if found := strings.Contains(string(manifests), "image: "+want+"\n"); found != (e.name != "flotilla") {
			t.Errorf("%s: rendered images %q, want %s: %v", e.name, rendered, want, found)
		}
	}
}
