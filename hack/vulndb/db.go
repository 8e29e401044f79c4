package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// dbModule is the module that carries the Go vulnerability database's
// reports and their OSV form (data/osv/GO-YYYY-NNNN.json).
const dbModule = "golang.org/x/vulndb"

// The part of an OSV entry that the index needs. ID/<id>.json keeps the
// entry's own bytes, so fields not named here reach govulncheck unchanged.
type entry struct {
	ID       string     `json:"id"`
	Modified time.Time  `json:"modified"`
	Affected []affected `json:"affected"`
}

type affected struct {
	Package struct {
		Name string `json:"name"` // the module path; "stdlib" and "toolchain" for Go itself
	} `json:"package"`
	Ranges []osvRange `json:"ranges"`
}

type osvRange struct {
	Type   string `json:"type"`
	Events []struct {
		Introduced string `json:"introduced,omitempty"`
		Fixed      string `json:"fixed,omitempty"`
	} `json:"events"`
}

// The index files, as govulncheck's file:// client reads them.
type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	// Fixed lets govulncheck skip reading the entry for a module at this
	// version or later; "" makes it read the entry every time.
	Fixed string `json:"fixed,omitempty"`
}

// download is what `go mod download -json` prints about one module version.
type download struct {
	Zip, Info, Sum, Error string
}

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	version := fs.String("version", "", "version of "+dbModule+" to take from the module proxy")
	sum := fs.String("sum", "", "expected h1: hash of that version's zip (as in go.sum)")
	out := fs.String("out", "", "directory to write the database into (replaced only if absent)")
	_ = fs.Parse(args)
	if *version == "" || *sum == "" || *out == "" {
		return errors.New("build needs -version, -sum and -out")
	}
	if _, err := os.Stat(filepath.Join(*out, "index", "modules.json")); err == nil {
		fmt.Fprintf(os.Stderr, "vulndb: %s already built\n", *out)
		return nil
	}

	cmd := exec.Command("go", "mod", "download", "-json", dbModule+"@"+*version) //nolint:gosec // G204: the version is our own pin
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	var dl download
	if err != nil {
		_ = json.Unmarshal(raw, &dl) // its JSON says why, when it printed any
		return fmt.Errorf("go mod download %s@%s: %w %s", dbModule, *version, err, dl.Error)
	}
	if err := json.Unmarshal(raw, &dl); err != nil {
		return fmt.Errorf("go mod download %s@%s: %w", dbModule, *version, err)
	}
	if dl.Sum != *sum {
		return fmt.Errorf("%s@%s has hash %s, want %s", dbModule, *version, dl.Sum, *sum)
	}
	info, err := os.ReadFile(dl.Info)
	if err != nil {
		return err
	}
	var vi struct{ Time time.Time }
	if err := json.Unmarshal(info, &vi); err != nil {
		return fmt.Errorf("%s: %w", dl.Info, err)
	}

	zr, err := zip.OpenReader(dl.Zip)
	if err != nil {
		return err
	}
	defer zr.Close()
	files, err := readOSV(&zr.Reader, dbModule+"@"+*version+"/data/osv/")
	if err != nil {
		return err
	}
	tree, err := buildTree(files, vi.Time)
	if err != nil {
		return err
	}
	if err := writeTree(*out, tree); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vulndb: %d entries of %s@%s in %s\n", len(files), dbModule, *version, *out)
	return nil
}

// readOSV returns the bytes of each OSV entry directly under dir in the zip,
// keyed by file name.
func readOSV(zr *zip.Reader, dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, dir) || strings.Contains(f.Name[len(dir):], "/") || path.Ext(f.Name) != ".json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		files[path.Base(f.Name)] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no OSV entries under %s", dir)
	}
	return files, nil
}

// buildTree returns the database's files, keyed by their path under its root.
// modified is the database's own time (the vulndb commit's), used when it is
// later than every entry's (the entries in the module carry no time of their own).
func buildTree(files map[string][]byte, modified time.Time) (map[string][]byte, error) {
	tree := map[string][]byte{}
	modules := map[string]*moduleMeta{}
	db := dbMeta{Modified: modified.UTC()}
	for name, b := range files {
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if e.ID == "" || name != e.ID+".json" {
			return nil, fmt.Errorf("%s: entry has id %q; want the file named after it", name, e.ID)
		}
		if len(e.Affected) == 0 {
			return nil, fmt.Errorf("%s: entry affects no module", name)
		}
		if e.Modified.After(db.Modified) {
			db.Modified = e.Modified
		}
		for _, a := range e.Affected {
			p := a.Package.Name
			if p == "" {
				return nil, fmt.Errorf("%s: affected package without a name", name)
			}
			m := modules[p]
			if m == nil {
				m = &moduleMeta{Path: p}
				modules[p] = m
			}
			fix := lastFix(a.Ranges)
			if n := len(m.Vulns); n > 0 && m.Vulns[n-1].ID == e.ID {
				// Several packages of one module in one entry: one line for
				// the module, fixed only where every package is.
				if prev := m.Vulns[n-1].Fixed; prev == "" || fix == "" {
					m.Vulns[n-1].Fixed = ""
				} else if semver.Compare("v"+fix, "v"+prev) > 0 {
					m.Vulns[n-1].Fixed = fix
				}
				continue
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: fix})
		}
		tree["ID/"+name] = b
	}
	if modules["stdlib"] == nil {
		// A database without the standard library is not the Go one; a scan
		// against it would pass without having checked anything.
		return nil, errors.New("no entry affects the standard library")
	}

	index := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		index = append(index, m)
	}
	sort.Slice(index, func(i, j int) bool { return index[i].Path < index[j].Path })
	var err error
	if tree["index/modules.json"], err = json.Marshal(index); err != nil {
		return nil, err
	}
	if tree["index/db.json"], err = json.Marshal(db); err != nil {
		return nil, err
	}
	return tree, nil
}

// lastFix returns the version (OSV style, no "v") from which on no SEMVER
// range affects the module any more, or "" when there is none: no fix, a range
// left open by a later introduction, or a version this code cannot order.
// "" is always safe: govulncheck then reads the entry and checks the ranges.
func lastFix(ranges []osvRange) string {
	fixed := ""
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		if len(r.Events) == 0 {
			return "" // a range without events affects every version
		}
		open := false
		for _, ev := range r.Events {
			switch {
			case ev.Fixed != "":
				if !semver.IsValid("v" + ev.Fixed) {
					return ""
				}
				if fixed == "" || semver.Compare("v"+ev.Fixed, "v"+fixed) > 0 {
					fixed = ev.Fixed
				}
				open = false
			case ev.Introduced != "":
				open = true
			}
		}
		if open {
			return ""
		}
	}
	if fixed == "" {
		return ""
	}
	// Every range ends in a fix; one introduced after the latest fix would
	// have left its range open, so fixed covers them all.
	return fixed
}

// writeTree writes the tree into a new directory beside out, then renames it
// to out, so that an interrupted build leaves no half database behind.
func writeTree(out string, tree map[string][]byte) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), filepath.Base(out)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"ID", "index"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o750); err != nil {
			return err
		}
	}
	for name, b := range tree {
		if err := os.WriteFile(filepath.Join(tmp, filepath.FromSlash(name)), bytes.TrimSpace(b), 0o600); err != nil {
			return err
		}
	}
	return os.Rename(tmp, out)
}
