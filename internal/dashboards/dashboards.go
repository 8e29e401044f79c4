// Package dashboards reads Flotilla's Grafana dashboards, the JSON files in
// Dir that the Helm chart ships as ConfigMaps, and names the metrics their
// queries select, so that tests can check every one of them exists.
package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Dir holds the dashboards, relative to the repository root. It is inside
// the chart because Helm's .Files reads only the chart's own directory.
const Dir = "deploy/helm/flotilla/dashboards"

// Dashboard is the part of Grafana's dashboard JSON model the tests read.
type Dashboard struct {
	// File is the file's base name.
	File          string  `json:"-"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Variable is a dashboard template variable.
type Variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

// Panel is one panel of a dashboard.
type Panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource Datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []Target `json:"targets"`
}

// Datasource names a panel's or a query's data source.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID      string     `json:"refId"`
	Expr       string     `json:"expr"`
	Datasource Datasource `json:"datasource"`
}

// Load reads every *.json dashboard of dir, in file name order.
func Load(dir string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s", dir)
	}
	var out []Dashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		d.File = filepath.Base(f)
		out = append(out, d)
	}
	return out, nil
}

// Metrics returns the sorted, distinct metric names the dashboard's queries
// select, as they appear in the exposition format (a histogram's as
// name_bucket, name_sum or name_count).
func (d Dashboard) Metrics() ([]string, error) {
	var names []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			n, err := MetricNames(t.Expr)
			if err != nil {
				return nil, fmt.Errorf("%s: panel %d %q, query %s: %w", d.File, p.ID, p.Title, t.RefID, err)
			}
			names = append(names, n...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
