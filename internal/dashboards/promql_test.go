package dashboards

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`flotilla_watcher_pending_pods`, []string{"flotilla_watcher_pending_pods"}},
		{`max(flotilla_watcher_pending_pods)`, []string{"flotilla_watcher_pending_pods"}},
		{`histogram_quantile(0.99, sum by (le, method) (rate(a_bucket{method="Solve"}[$__rate_interval])))`, []string{"a_bucket"}},
		{`sum by (le) (increase(a_bucket[${__range}]))`, []string{"a_bucket"}},
		{`sum(rate(a_total[5m])) by (reason) / ignoring (reason) group_left sum(rate(b_total[5m]))`, []string{"a_total", "b_total"}},
		{`a / on (nodepool) group_left (zone) b`, []string{"a", "b"}},
		{`count without (instance) (a) > bool 0.5e3 and b offset 1h30m`, []string{"a", "b"}},
		{`sum(a{x=~"}{[(", y!='\'', z=` + "`)`" + `})`, []string{"a"}},
		{`label_replace(up, "dst", "$1", "src", "(.*)")`, []string{"up"}},
		{`topk(3, sum by (instance_type) (a:recorded:rate5m))`, []string{"a:recorded:rate5m"}},
		{`max_over_time(a[1h:5m]) - 1e-3`, []string{"a"}},
		{`vector(1)`, nil},
	}
	for _, tt := range tests {
		got, err := MetricNames(tt.expr)
		if err != nil {
			t.Errorf("MetricNames(%s): %v", tt.expr, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("MetricNames(%s) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestMetricNamesErrors(t *testing.T) {
	for _, expr := range []string{
		``, ` `, `sum(a`, `a)`, `a{b="c"`, `a{b="c}`, `rate(a[5m)`, `rate(a[5m]`, `a]`, `a}`,
		`"unterminated`, `sum by (le (a)`, `a[${x]`, `a + $`,
	} {
		if got, err := MetricNames(expr); err == nil {
			t.Errorf("MetricNames(%q) = %q, want an error", expr, got)
		}
	}
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// FuzzMetricNames: no input panics, and every name found is a metric name
// that occurs in the expression.
func FuzzMetricNames(f *testing.F) {
	f.Add(`histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[$__rate_interval])))`)
	f.Add(`a / on (b) group_left c{d=~"e|f"} offset 5m`)
	f.Add(`sum(a{x=~"}{[("})`)
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := MetricNames(expr)
		if err != nil {
			return
		}
		for _, n := range names {
			if !metricName.MatchString(n) || !strings.Contains(expr, n) {
				t.Errorf("MetricNames(%q) found %q", expr, n)
			}
		}
	})
}
