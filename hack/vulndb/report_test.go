package main

import (
	"bytes"
	"strings"
	"testing"
)

const config = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","go_version":"go1.26.8","scan_level":"symbol","scan_mode":"source"}}
{"progress":{"message":"Scanning your code and 300 packages across 50 dependent modules for known vulnerabilities..."}}
`

// Findings as govulncheck -format json emits them: module and package level
// for every vulnerability in the build, symbol level for the called ones.
const stream = config + `
{"osv":{"id":"GO-2026-6599","summary":"Reset context tracking in html/template","aliases":["CVE-2026-94448"]}}
{"osv":{"id":"GO-2026-6860","summary":"Something in golang.org/x/net/html"}}
{"osv":{"id":"GO-2026-6604","summary":"Not called"}}
{"finding":{"osv":"GO-2026-6599","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"html/template"}]}}
{"finding":{"osv":"GO-2026-6599","fixed_version":"v1.26.9","trace":[
  {"module":"stdlib","version":"v1.26.8","package":"html/template","function":"Execute","receiver":"*Template"},
  {"module":"github.com/flotilla-io/flotilla","package":"github.com/flotilla-io/flotilla/internal/ec2sim","function":"ServeListener","position":{"filename":"internal/ec2sim/sim.go","offset":1,"line":603,"column":2}}]}}
{"finding":{"osv":"GO-2026-6860","fixed_version":"v0.62.0","trace":[
  {"module":"golang.org/x/net","version":"v0.57.0","package":"golang.org/x/net/html","function":"Parse"},
  {"module":"m","package":"m","function":"main","position":{"filename":"main.go","line":9,"column":3}}]}}
{"finding":{"osv":"GO-2026-6604","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/mail"}]}}
{"osv":{"id":"GO-2026-6611","summary":"One report, two modules"}}
{"finding":{"osv":"GO-2026-6611","fixed_version":"v1.26.9","trace":[
  {"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Read","receiver":"readTrackingBody"},
  {"module":"m","package":"m","function":"main","position":{"filename":"main.go","line":5,"column":1}}]}}
{"finding":{"osv":"GO-2026-6611","fixed_version":"v0.60.0","trace":[
  {"module":"golang.org/x/net","version":"v0.57.0","package":"golang.org/x/net/http2","function":"String","receiver":"SettingID"},
  {"module":"m","package":"m","function":"main","position":{"filename":"main.go","line":7,"column":1}}]}}
`

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		stdlib  string
		wantErr string
		want    []string
	}{
		{"fail", "4 reachable vulnerabilities", []string{
			"  VULNERABLE GO-2026-6599: stdlib@go1.26.8, fixed in go1.26.9: Reset context tracking in html/template (CVE-2026-94448)\n" +
				"      html/template.Template.Execute reached from github.com/flotilla-io/flotilla/internal/ec2sim.ServeListener at internal/ec2sim/sim.go:603:2\n",
			"  VULNERABLE GO-2026-6860: golang.org/x/net@v0.57.0, fixed in v0.62.0: Something in golang.org/x/net/html\n" +
				"      golang.org/x/net/html.Parse reached from m.main at main.go:9:3\n",
			"  VULNERABLE GO-2026-6611: golang.org/x/net@v0.57.0, fixed in v0.60.0: One report, two modules\n" +
				"      golang.org/x/net/http2.SettingID.String reached from m.main at main.go:7:1\n",
			"  VULNERABLE GO-2026-6611: stdlib@go1.26.8, fixed in go1.26.9: One report, two modules\n" +
				"      net/http.readTrackingBody.Read reached from m.main at main.go:5:1\n",
			"not reached (in required modules or imported packages, no vulnerable symbol called): GO-2026-6604 (stdlib)\n",
			"govulncheck m (go1.26.8): 4 reachable, 4 failing, 1 not reached\n",
		}},
		{"warn", "2 reachable vulnerabilities", []string{
			"  warning GO-2026-6599: stdlib@go1.26.8, fixed in go1.26.9",
			"  VULNERABLE GO-2026-6860: golang.org/x/net@v0.57.0",
			// The x/net half of a report that names the standard library too still fails.
			"  VULNERABLE GO-2026-6611: golang.org/x/net@v0.57.0",
			"  warning GO-2026-6611: stdlib@go1.26.8",
			"govulncheck m (go1.26.8): 4 reachable, 2 failing, 1 not reached\n",
		}},
	} {
		var out bytes.Buffer
		err := reportCmd([]string{"-module", "m", "-stdlib", tc.stdlib}, strings.NewReader(stream), &out)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("-stdlib %s: error %v, want %q", tc.stdlib, err, tc.wantErr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("-stdlib %s: output lacks %q:\n%s", tc.stdlib, w, out.String())
			}
		}
	}

	// Only stdlib findings, warned about: the check passes.
	var out bytes.Buffer
	onlyStd := strings.Replace(stream, `"function":"Parse"`, `"function":""`, 1)
	onlyStd = strings.Replace(onlyStd, `"function":"String"`, `"function":""`, 1)
	if err := reportCmd([]string{"-module", "m", "-stdlib", "warn"}, strings.NewReader(onlyStd), &out); err != nil {
		t.Errorf("stdlib findings with -stdlib warn: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2 reachable, 0 failing, 3 not reached") {
		t.Errorf("output:\n%s", out.String())
	}

	// Nothing found.
	out.Reset()
	if err := reportCmd(nil, strings.NewReader(config), &out); err != nil {
		t.Errorf("no findings: %v", err)
	}
	if got := out.String(); got != "govulncheck . (go1.26.8): 0 reachable, 0 failing, 0 not reached\n" {
		t.Errorf("no findings: output %q", got)
	}
}

func TestReportRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty output (govulncheck did not run)": "",
		"text output":                            "=== Symbol Results ===\n",
		"another protocol":                       strings.Replace(config, "v1.0.0", "v2.0.0", 1),
		"package scan level":                     strings.Replace(config, `"scan_level":"symbol"`, `"scan_level":"package"`, 1),
		"finding without trace":                  config + `{"finding":{"osv":"GO-1"}}`,
	} {
		var out bytes.Buffer
		if err := reportCmd(nil, strings.NewReader(in), &out); err == nil {
			t.Errorf("%s: report succeeded:\n%s", name, out.String())
		}
	}
	if err := reportCmd([]string{"-stdlib", "ignore"}, strings.NewReader(config), &bytes.Buffer{}); err == nil {
		t.Error("-stdlib ignore accepted")
	}
}
