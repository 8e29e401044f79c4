package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The parts of govulncheck's -format json stream (protocol v1.0.0) read here.
type message struct {
	Config *struct {
		ProtocolVersion string `json:"protocol_version"`
		ScannerVersion  string `json:"scanner_version"`
		GoVersion       string `json:"go_version"`
		ScanLevel       string `json:"scan_level"`
	} `json:"config"`
	OSV *struct {
		ID      string   `json:"id"`
		Summary string   `json:"summary"`
		Aliases []string `json:"aliases"`
	} `json:"osv"`
	Finding *finding `json:"finding"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

// A frame of a finding's trace: the first is the vulnerable symbol (or only
// its package or module, for findings below symbol level), the last the
// entry point in the scanned code.
type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
	} `json:"position"`
}

func reportCmd(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	module := fs.String("module", ".", "name of the scanned module, for the output")
	stdlib := fs.String("stdlib", "fail", "reachable standard-library vulnerabilities: fail, or warn (print only)")
	_ = fs.Parse(args)
	if *stdlib != "fail" && *stdlib != "warn" {
		return fmt.Errorf("-stdlib %q: want fail or warn", *stdlib)
	}
	r, err := summarize(in)
	if err != nil {
		return fmt.Errorf("%s: reading govulncheck's output: %w", *module, err)
	}
	failing := r.print(out, *module, *stdlib == "warn")
	if failing > 0 {
		return fmt.Errorf("%s: %d reachable vulnerabilities", *module, failing)
	}
	return nil
}

type report struct {
	goVersion string
	summary   map[string]string // OSV ID → summary and aliases
	called    map[key]*finding  // a symbol-level finding of each vulnerability
	imported  map[key]bool      // vulnerabilities found only at package or module level
}

// key names one vulnerable module of a report: one report can name several
// (the standard library and golang.org/x/net, say), each judged on its own.
type key struct{ id, module string }

func summarize(in io.Reader) (*report, error) {
	r := &report{summary: map[string]string{}, called: map[key]*finding{}, imported: map[key]bool{}}
	sawConfig := false
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		switch {
		case m.Config != nil:
			if m.Config.ProtocolVersion != "v1.0.0" {
				return nil, fmt.Errorf("govulncheck protocol %q; this reader knows v1.0.0", m.Config.ProtocolVersion)
			}
			if m.Config.ScanLevel != "symbol" {
				return nil, fmt.Errorf("scan level %q; run govulncheck at symbol level (its default)", m.Config.ScanLevel)
			}
			sawConfig = true
			r.goVersion = m.Config.GoVersion
		case m.OSV != nil:
			s := m.OSV.Summary
			if len(m.OSV.Aliases) > 0 {
				s += " (" + strings.Join(m.OSV.Aliases, ", ") + ")"
			}
			r.summary[m.OSV.ID] = s
		case m.Finding != nil:
			f := m.Finding
			if len(f.Trace) == 0 {
				return nil, fmt.Errorf("finding for %s without a trace", f.OSV)
			}
			k := key{f.OSV, f.Trace[0].Module}
			if f.Trace[0].Function != "" {
				if _, ok := r.called[k]; !ok {
					r.called[k] = f
				}
			} else {
				r.imported[k] = true
			}
		}
	}
	if !sawConfig {
		return nil, errors.New("no config message: govulncheck did not run")
	}
	for k := range r.called {
		delete(r.imported, k)
	}
	return r, nil
}

// print writes the findings and returns how many of them fail the check.
func (r *report) print(out io.Writer, module string, warnStdlib bool) (failing int) {
	keys := make([]key, 0, len(r.called))
	for k := range r.called {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].id < keys[j].id || keys[i].id == keys[j].id && keys[i].module < keys[j].module
	})
	for _, k := range keys {
		id, f := k.id, r.called[k]
		vuln := f.Trace[0]
		std := vuln.Module == "stdlib" || vuln.Module == "toolchain"
		label := "VULNERABLE"
		if std && warnStdlib {
			label = "warning"
		} else {
			failing++
		}
		fix := "no fixed version"
		if f.FixedVersion != "" {
			fix = "fixed in " + version(vuln.Module, f.FixedVersion)
		}
		fmt.Fprintf(out, "  %s %s: %s@%s, %s: %s\n", label, id, vuln.Module, version(vuln.Module, vuln.Version), fix, r.summary[id])
		entry := f.Trace[len(f.Trace)-1]
		fmt.Fprintf(out, "      %s reached from %s", symbol(vuln), symbol(entry))
		if p := entry.Position; p != nil {
			fmt.Fprintf(out, " at %s:%d:%d", p.Filename, p.Line, p.Column)
		}
		fmt.Fprintln(out)
	}
	if len(r.imported) > 0 {
		rest := make([]string, 0, len(r.imported))
		for k := range r.imported {
			rest = append(rest, k.id+" ("+k.module+")")
		}
		sort.Strings(rest)
		fmt.Fprintf(out, "  not reached (in required modules or imported packages, no vulnerable symbol called): %s\n", strings.Join(rest, " "))
	}
	fmt.Fprintf(out, "govulncheck %s (%s): %d reachable, %d failing, %d not reached\n", module, r.goVersion, len(r.called), failing, len(r.imported))
	return failing
}

// version spells a standard-library version as Go releases are named.
func version(module, v string) string {
	if module == "stdlib" || module == "toolchain" {
		return "go" + strings.TrimPrefix(v, "v")
	}
	return v
}

func symbol(f *frame) string {
	s := f.Package
	if f.Receiver != "" {
		s += "." + strings.TrimPrefix(f.Receiver, "*")
	}
	if f.Function != "" {
		s += "." + f.Function
	}
	return s
}
