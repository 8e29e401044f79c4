package integration

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/internal/dashboards"
)

// dashboardMetricSources names, for the dashboards' metrics that only
// another subtest makes appear, that subtest. When it did not run (a
// -run filter), the metric is listed as not checked instead of failing.
var dashboardMetricSources = map[string]string{
	"flotilla_disruption_decisions_total":                "consolidation",
	"flotilla_interruption_actions_total":                "spot_interruption",
	"flotilla_interruption_disrupt_delay_seconds_bucket": "spot_interruption",
}

// testDashboards: every metric the Grafana dashboards (internal/dashboards)
// query is exposed by a running service, and the chart's dashboard
// ConfigMaps carry the dashboards unchanged and pass the API server's
// validation. It runs last, so the other subtests' metrics have samples;
// it provisions a few pods itself so that provisioning, launches and the
// launcher's instance gauges have theirs.
func testDashboards(ctx context.Context, t *testing.T, e *e2eEnv) {
	ds, err := dashboards.Load(filepath.Join("..", dashboards.Dir))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string][]string{} // metric → dashboards using it
	for _, d := range ds {
		names, err := d.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[n] = append(used[n], d.File)
		}
	}
	ns := e.namespace(ctx, t, "e2e-dashboards")
	checkDashboardConfigMaps(ctx, t, e, ns, ds)

	const pool, suite = "e2e-dashboards", "dashboards"
	e.pool(ctx, t, "generalcompute.yaml", pool, suite, e2eClass, nil)
	e.deployment(ctx, t, ns, "dash", 4, podSpec(suite, "500m", "512Mi"), nil)
	e.waitRunning(ctx, t, 3*time.Minute, ns, "app=dash", 4)

	var exposed map[string][]string
	var skipped []string
	// The launcher's instance gauges wait for the watcher's next garbage
	// collection listing (every minute).
	took := poll(ctx, t, 2*time.Minute, "every dashboard metric exposed", func() (bool, string) {
		var err error
		if exposed, err = e.sampleNames(ctx); err != nil {
			return false, err.Error()
		}
		var missing []string
		skipped = skipped[:0]
		for _, n := range slices.Sorted(maps.Keys(used)) {
			if len(exposed[n]) > 0 {
				continue
			}
			if src, ok := dashboardMetricSources[n]; ok && !e.summary.ran(src) {
				skipped = append(skipped, fmt.Sprintf("%s (only subtest %s makes it appear, and it did not run)", n, src))
				continue
			}
			missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(used[n], ", ")))
		}
		return len(missing) == 0, "missing: " + strings.Join(missing, "; ")
	})
	for _, s := range skipped {
		t.Logf("not checked: %s", s)
	}
	checked := len(used) - len(skipped)
	e.summary.set(t, "dashboards/metrics", "%d of %d dashboard metrics exposed (%d not checked), after %s",
		checked, len(used), len(skipped), took.Round(time.Second))
	for _, n := range slices.Sorted(maps.Keys(used)) {
		if len(exposed[n]) > 0 {
			t.Logf("%s: %s", n, strings.Join(exposed[n], ", "))
		}
	}
}

// sampleNames scrapes every running service's /metrics and returns, for
// each sample name (a histogram's as name_bucket, name_sum, name_count),
// the services exposing it.
func (e *e2eEnv) sampleNames(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for _, svc := range []string{harness.Solver, harness.Launcher, harness.Watcher, harness.Interruption} {
		addr := e.c.MetricsAddr(svc)
		if addr == "" {
			return nil, fmt.Errorf("no metrics address for %s", svc)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", svc, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		seen := map[string]bool{}
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, _, _ := strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			if !seen[name] {
				seen[name] = true
				out[name] = append(out[name], svc)
			}
		}
		err = sc.Err()
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", svc, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: GET /metrics: %s", svc, resp.Status)
		}
	}
	return out, nil
}

// checkDashboardConfigMaps renders the chart's dashboard ConfigMaps
// (dashboards.enabled=true) into namespace ns through
// hack/render-manifests.sh, checks that each carries one dashboard file
// unchanged with the sidecar's label, and creates them with a server-side
// dry run.
func checkDashboardConfigMaps(ctx context.Context, t *testing.T, e *e2eEnv, ns string, ds []dashboards.Dashboard) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "hack", "render-manifests.sh"), "--stdout",
		"-include-crds=false", "-namespace-object=false", "-namespace", ns,
		"-set", "dashboards.enabled=true", "-only", "templates/dashboards.yaml")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render the chart's dashboards: %v", err)
	}
	files := map[string]bool{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatalf("rendered document: %v", err)
		}
		if cm.Kind == "" {
			continue // the header comment
		}
		if cm.Kind != "ConfigMap" || cm.Labels["grafana_dashboard"] != "1" || cm.Namespace != ns || len(cm.Data) != 1 {
			t.Errorf("rendered %s %s/%s with labels %v and %d keys, want a ConfigMap in %s labelled grafana_dashboard=1 with one dashboard",
				cm.Kind, cm.Namespace, cm.Name, cm.Labels, len(cm.Data), ns)
		}
		for file, data := range cm.Data {
			want, err := readDashboard(file)
			if err != nil {
				t.Errorf("ConfigMap %s: %v", cm.Name, err)
			} else if strings.TrimSpace(data) != strings.TrimSpace(want) {
				t.Errorf("ConfigMap %s: %s differs from %s", cm.Name, file, dashboards.Dir)
			}
			files[file] = true
		}
		if _, err := e.kube.CoreV1().ConfigMaps(ns).Create(ctx, &cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("create ConfigMap %s (dry run): %v", cm.Name, err)
		}
	}
	for _, d := range ds {
		if !files[d.File] {
			t.Errorf("the chart ships no ConfigMap for %s", d.File)
		}
	}
}

// readDashboard reads one dashboard file of dashboards.Dir.
func readDashboard(file string) (string, error) {
	data, err := os.ReadFile(filepath.Join("..", dashboards.Dir, filepath.Base(file)))
	return string(data), err
}

// ran reports whether TestE2E's subtest name has run (its duration is in
// the summary).
func (s *summary) ran(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.values["duration/"+name]
	return ok
}
