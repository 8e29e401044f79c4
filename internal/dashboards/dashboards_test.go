package dashboards

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-io/flotilla/internal/interruption"
	launchermetrics "github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	watchermetrics "github.com/flotilla-io/flotilla/internal/watcher/metrics"
)

func load(t *testing.T) []Dashboard {
	t.Helper()
	ds, err := Load(filepath.Join("..", "..", Dir))
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestDashboards checks the dashboards' structure: unique uids and titles,
// the Prometheus data source variable used by every panel and query,
// unique panel ids, panels inside the 24-column grid, and queries that
// scan as PromQL and select metrics.
func TestDashboards(t *testing.T) {
	ds := load(t)
	if len(ds) != 2 {
		t.Errorf("%d dashboards, want 2 (capacity and cost, performance)", len(ds))
	}
	uids, titles := map[string]bool{}, map[string]bool{}
	for _, d := range ds {
		if d.UID == "" || d.Title == "" || uids[d.UID] || titles[d.Title] {
			t.Errorf("%s: uid %q and title %q must be set and unique", d.File, d.UID, d.Title)
		}
		uids[d.UID], titles[d.Title] = true, true
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d, want 36 or later (panel data sources by uid)", d.File, d.SchemaVersion)
		}
		if v := d.Templating.List; len(v) != 1 || v[0].Name != "datasource" || v[0].Type != "datasource" || v[0].Query != "prometheus" {
			t.Errorf("%s: templating %+v, want only the Prometheus data source variable \"datasource\"", d.File, v)
		}
		if len(d.Panels) == 0 {
			t.Errorf("%s: no panels", d.File)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			name := fmt.Sprintf("%s: panel %d %q", d.File, p.ID, p.Title)
			if p.ID <= 0 || ids[p.ID] {
				t.Errorf("%s: id must be positive and unique", name)
			}
			ids[p.ID] = true
			if p.Type != "stat" && p.Type != "timeseries" {
				t.Errorf("%s: type %q, want stat or timeseries", name, p.Type)
			}
			if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24-column grid", name, g)
			}
			checkDatasource(t, name, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", name)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: refId %q must be set and unique", name, tg.RefID)
				}
				refs[tg.RefID] = true
				checkDatasource(t, name+" query "+tg.RefID, tg.Datasource)
				checkExpr(t, name+" query "+tg.RefID, tg.Expr)
			}
		}
	}
}

func checkDatasource(t *testing.T, name string, ds Datasource) {
	t.Helper()
	if ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: datasource %+v, want prometheus ${datasource}", name, ds)
	}
}

// checkExpr: the query scans, selects Flotilla metrics, takes quantiles of
// histogram buckets only, and rates of counters only.
func checkExpr(t *testing.T, name, expr string) {
	t.Helper()
	names, err := MetricNames(expr)
	if err != nil {
		t.Errorf("%s: %s: %v", name, expr, err)
		return
	}
	if len(names) == 0 {
		t.Errorf("%s: %s selects no metric", name, expr)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "flotilla_") {
			t.Errorf("%s: %s is not a Flotilla metric", name, n)
		}
		if strings.Contains(expr, "histogram_quantile(") && !strings.HasSuffix(n, "_bucket") {
			t.Errorf("%s: histogram_quantile over %s, not a _bucket series", name, n)
		}
		if (strings.Contains(expr, "rate(") || strings.Contains(expr, "increase(")) &&
			!strings.HasSuffix(n, "_total") && !strings.HasSuffix(n, "_bucket") {
			t.Errorf("%s: rate or increase of %s, not a counter", name, n)
		}
	}
}

// TestDashboardMetricsDefined checks every metric the dashboards use
// against the collectors the services register (as samples: a histogram's
// name_bucket, name_sum, name_count), so a renamed metric fails here, not
// only in TestE2E's dashboards subtest, which checks the running services.
func TestDashboardMetricsDefined(t *testing.T) {
	var cs []prometheus.Collector
	cs = append(cs, watchermetrics.New().Collectors()...)
	cs = append(cs, disruption.NewMetrics().Collectors()...)
	cs = append(cs, launchermetrics.New().Collectors()...)
	cs = append(cs, interruption.NewMetrics().Collectors()...)
	cs = append(cs, solverapi.NewMetrics().Collectors()...)
	defined := map[string]bool{}
	for _, c := range cs {
		for _, name := range familyNames(t, c) {
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				defined[name+suffix] = true
			}
		}
	}
	for _, d := range load(t) {
		names, err := d.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !defined[n] {
				t.Errorf("%s uses %s, which no service defines", d.File, n)
			}
		}
	}
}

// descName reads the fully qualified name out of a Desc's String form,
// the only place client_golang exposes it.
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func familyNames(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no fqName in %s", d)
		}
		out = append(out, m[1])
	}
	return out
}
