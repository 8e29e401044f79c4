package version

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDefaultIsTheChartAppVersion keeps one version: the Go default and the
// chart's appVersion (which also tags the chart's images) change together.
func TestDefaultIsTheChartAppVersion(t *testing.T) {
	const chart = "../../deploy/helm/flotilla/Chart.yaml"
	data, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", chart, err)
	}
	if c.AppVersion != chartAppVersion {
		t.Errorf("%s has appVersion %q but internal/version's default is %q: change both in one commit", chart, c.AppVersion, chartAppVersion)
	}
}

func TestFromBuildInfo(t *testing.T) {
	stamp := func(settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.99.1", Settings: settings}
	}
	const rev = "6a98806c1d2e3f4a5b6c7d8e9f00112233445566"
	for _, tc := range []struct {
		name       string
		info       *debug.BuildInfo
		wantCommit string
		wantGo     string
	}{
		{"no build info", nil, "unknown", runtime.Version()},
		{"no stamp", stamp(), "unknown", "go1.99.1"},
		{"clean", stamp(debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), rev, "go1.99.1"},
		{"modified", stamp(debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), rev + "-dirty", "go1.99.1"},
		{"empty revision", stamp(debug.BuildSetting{Key: "vcs.revision"}), "unknown", "go1.99.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := fromBuildInfo(tc.info)
			if i.CommitString() != tc.wantCommit || i.GoVersion != tc.wantGo || i.Version != Version {
				t.Errorf("got %+v, want commit %s and %s", i, tc.wantCommit, tc.wantGo)
			}
			want := Version + " commit " + tc.wantCommit + " " + tc.wantGo + " " + runtime.GOOS + "/" + runtime.GOARCH
			if i.String() != want {
				t.Errorf("String() = %q, want %q", i.String(), want)
			}
		})
	}
}

func TestLineIsOneLine(t *testing.T) {
	l := Line("solver")
	if !strings.HasPrefix(l, "solver "+Version+" commit ") || strings.Contains(l, "\n") || !strings.Contains(l, runtime.Version()) {
		t.Errorf("Line = %q", l)
	}
}

// TestBuiltBinary builds a program as a release would (-buildvcs, -X) and
// runs it: the -X version wins over the default, and the commit printed is
// the one the go command stamped — HEAD of this checkout when it stamped
// one. (The go command stamps nothing in a git worktree or without git:
// then the binary says "unknown".)
func TestBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "printversion")
	build := exec.Command(goBin, "build", "-buildvcs=auto", "-trimpath", "-o", bin,
		"-ldflags=-X github.com/flotilla-io/flotilla/internal/version.Version=9.9.9-test", "./testdata/printversion")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	i := fromBuildInfo(stamped)
	want := "printversion 9.9.9-test commit " + i.CommitString() + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if string(out) != want {
		t.Errorf("printed %q, want %q", out, want)
	}
	if i.Commit == UnknownCommit {
		t.Logf("no VCS stamp (a git worktree, no git, or not a checkout): %q", out)
		return
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err == nil && i.Commit != strings.TrimSpace(string(head)) {
		t.Errorf("commit %s, but HEAD is %s", i.Commit, head)
	}
}
