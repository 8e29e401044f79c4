package server_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/server"
)

// TestPolicyTableInOperationsDoc holds docs/operations.md's authorization
// table to the policy in code: every method with exactly its callers.
func TestPolicyTableInOperationsDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	pkg := map[string]string{
		"launcher": "flotilla.launcher.v1.LauncherService", "watcher": "flotilla.watcher.v1.WatcherService",
		"solver": "flotilla.solver.v1.SolverService", "interruption": "flotilla.interruption.v1.InterruptionService",
	}
	_, section, ok := strings.Cut(string(doc), "\n## Authorization\n")
	if !ok {
		t.Fatal("docs/operations.md has no Authorization section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 4 || pkg[cells[0]] == "" {
			continue
		}
		var callers []string
		if cells[3] == "any authenticated client" {
			callers = []string{"*"}
		} else {
			for _, c := range strings.Split(cells[3], ", ") {
				callers = append(callers, strings.Trim(c, "`"))
			}
		}
		for _, m := range strings.Split(cells[1], ", ") {
			documented["/"+pkg[cells[0]]+"/"+strings.Trim(m, "`")] = callers
		}
	}
	code := server.PolicyTable()
	for method, who := range code {
		slices.Sort(who)
		doc := documented[method]
		slices.Sort(doc)
		if !slices.Equal(who, doc) {
			t.Errorf("%s: policy allows %v, docs/operations.md says %v", method, who, doc)
		}
	}
	for method := range documented {
		if _, ok := code[method]; !ok {
			t.Errorf("docs/operations.md lists %s, which the policy does not", method)
		}
	}
}
