package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLastFix(t *testing.T) {
	r := func(events ...[2]string) osvRange {
		var o osvRange
		o.Type = "SEMVER"
		for _, e := range events {
			o.Events = append(o.Events, struct {
				Introduced string `json:"introduced,omitempty"`
				Fixed      string `json:"fixed,omitempty"`
			}{e[0], e[1]})
		}
		return o
	}
	intro := func(v string) [2]string { return [2]string{v, ""} }
	fixed := func(v string) [2]string { return [2]string{"", v} }
	for _, tc := range []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"one fix", []osvRange{r(intro("0"), fixed("0.62.0"))}, "0.62.0"},
		{"two release branches", []osvRange{r(intro("0"), fixed("1.26.9"), intro("1.27.0-0"), fixed("1.27.2"))}, "1.27.2"},
		{"the later fix wins across ranges", []osvRange{r(intro("1.27.0"), fixed("1.27.2")), r(intro("0"), fixed("1.26.10"))}, "1.27.2"},
		{"no fix", []osvRange{r(intro("0"))}, ""},
		{"reintroduced after the fix", []osvRange{r(intro("0"), fixed("1.2.0"), intro("1.3.0"))}, ""},
		{"another range open", []osvRange{r(intro("0"), fixed("1.2.0")), r(intro("2.0.0"))}, ""},
		{"range without events", []osvRange{r(intro("0"), fixed("1.2.0")), r()}, ""},
		{"no ranges", nil, ""},
		{"pseudo-version", []osvRange{r(intro("0"), fixed("0.0.0-20260225185322-738bad662b20"))}, "0.0.0-20260225185322-738bad662b20"},
		{"unorderable version", []osvRange{r(intro("0"), fixed("1.2.x"))}, ""},
		{"not semver", []osvRange{{Type: "GIT"}}, ""},
	} {
		if got := lastFix(tc.ranges); got != tc.want {
			t.Errorf("%s: lastFix = %q, want %q", tc.name, got, tc.want)
		}
	}
}

const prefix = "golang.org/x/vulndb@v0.0.0-1/data/osv/"

func osvZip(t *testing.T, files map[string]string) *zip.Reader {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

const (
	stdlibEntry = `{"id":"GO-2026-0001","modified":"2026-10-01T00:00:00Z","affected":[
		{"package":{"name":"stdlib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.26.9"}]}],
		 "ecosystem_specific":{"imports":[{"path":"net/http","symbols":["Serve"]}]}}]}`
	// One module, two packages: fixed only from the later of the two fixes.
	netEntry = `{"id":"GO-2026-0002","modified":"0001-01-01T00:00:00Z","affected":[
		{"package":{"name":"golang.org/x/net","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.60.0"}]}]},
		{"package":{"name":"golang.org/x/net","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.62.0"}]}]},
		{"package":{"name":"stdlib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`
)

func TestBuildTree(t *testing.T) {
	zr := osvZip(t, map[string]string{
		prefix + "GO-2026-0001.json": stdlibEntry,
		prefix + "GO-2026-0002.json": netEntry,
		// Not OSV entries of this version's data/osv: skipped.
		"golang.org/x/vulndb@v0.0.0-1/data/reports/GO-2026-0001.yaml":  "id: GO-2026-0001",
		"golang.org/x/vulndb@v0.0.0-1/data/osv/sub/GO-2026-0003.json":  "{}",
		"golang.org/x/vulndb@v0.0.0-1/data/excluded/GO-2026-0004.json": "{}",
	})
	files, err := readOSV(zr, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("read %d entries, want 2: %v", len(files), keys(files))
	}
	dbTime := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	tree, err := buildTree(files, dbTime)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(tree), "ID/GO-2026-0001.json ID/GO-2026-0002.json index/db.json index/modules.json"; got != want {
		t.Fatalf("files %s, want %s", got, want)
	}
	if string(tree["ID/GO-2026-0002.json"]) != netEntry {
		t.Error("ID/GO-2026-0002.json is not the entry's own bytes")
	}
	var db dbMeta
	if err := json.Unmarshal(tree["index/db.json"], &db); err != nil || !db.Modified.Equal(dbTime) {
		t.Errorf("db.json = %s (%v), want modified %v", tree["index/db.json"], err, dbTime)
	}
	var index []moduleMeta
	if err := json.Unmarshal(tree["index/modules.json"], &index); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(index)
	want := `[{"path":"golang.org/x/net","vulns":[{"id":"GO-2026-0002","modified":"0001-01-01T00:00:00Z","fixed":"0.62.0"}]},` +
		`{"path":"stdlib","vulns":[{"id":"GO-2026-0001","modified":"2026-10-01T00:00:00Z","fixed":"1.26.9"},{"id":"GO-2026-0002","modified":"0001-01-01T00:00:00Z"}]}]`
	if string(got) != want {
		t.Errorf("modules.json\n got %s\nwant %s", got, want)
	}

	// A later entry moves the database's time.
	late := strings.Replace(stdlibEntry, "2026-10-01", "2026-12-01", 1)
	tree, err = buildTree(map[string][]byte{"GO-2026-0001.json": []byte(late)}, dbTime)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tree["index/db.json"]); got != `{"modified":"2026-12-01T00:00:00Z"}` {
		t.Errorf("db.json = %s, want the entry's later time", got)
	}
}

func TestBuildTreeRejects(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"file not named after its id": {"GO-2026-0009.json": stdlibEntry},
		"not JSON":                    {"GO-2026-0001.json": "id: GO-2026-0001"},
		"no affected module":          {"GO-2026-0001.json": `{"id":"GO-2026-0001"}`},
		"no standard library":         {"GO-2026-0002.json": strings.Replace(netEntry, `"stdlib"`, `"example.com/m"`, 1)},
	} {
		in := map[string][]byte{}
		for k, v := range files {
			in[k] = []byte(v)
		}
		if _, err := buildTree(in, time.Time{}); err == nil {
			t.Errorf("%s: buildTree succeeded", name)
		}
	}
	if _, err := readOSV(osvZip(t, map[string]string{"x/data/osv/GO-1.json": "{}"}), prefix); err == nil {
		t.Error("readOSV of a zip without entries succeeded")
	}
}

func TestWriteTree(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cache", "vulndb-v1")
	tree := map[string][]byte{
		"ID/GO-2026-0001.json": []byte(stdlibEntry + "\n"),
		"index/db.json":        []byte(`{"modified":"2026-11-05T23:49:57Z"}`),
		"index/modules.json":   []byte(`[]`),
	}
	if err := writeTree(out, tree); err != nil {
		t.Fatal(err)
	}
	for name, want := range tree {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != strings.TrimSpace(string(want)) {
			t.Errorf("%s = %q", name, got)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary directories left behind: %v", left)
	}
}

func keys[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}
