package instancetype

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// reference is shared/data/karpenter-reference-instance-types.json: what
// Karpenter's AWS provider publishes for each type (AL2023, default kubelet,
// no blockDeviceMappings).
type reference struct {
	InstanceTypes map[string]struct {
		Labels    map[string]string `json:"labels"`
		Resources map[string]string `json:"resources"`
	} `json:"instanceTypes"`
}

// sharedData finds the repository root's sibling shared/data by walking up
// from the package directory to the directory holding go.mod; it skips the
// test when the data is absent (CI has it).
func sharedData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the package directory; cannot locate ../shared/data")
		}
		dir = parent
	}
	data := filepath.Join(filepath.Dir(dir), "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "karpenter-reference-instance-types.json")); err != nil {
		t.Skipf("reference data absent (%v); the golden test needs %s", err, data)
	}
	return data
}

// deliberate lists the fields (label keys and resource names, prefixed
// "label " or "resource ") where Flotilla differs from Karpenter's
// reference on purpose or for a reason not yet removed, with that reason.
// A listed field may differ on any type; an unlisted one must match on
// every type, and a listed one that never differs fails the test (the
// entry is stale).
var deliberate = map[string]string{
	"label " + LabelTenancy: "Karpenter puts instance-tenancy on its offerings' requirements, not on the type; " +
		"Flotilla's offerings carry only zone and capacity type, so the type says default (the only tenancy Flotilla launches) " +
		"and a NodePool requirement on dedicated tenancy leaves no type instead of being written on a default-tenancy node",
}

func TestGoldenKarpenterReference(t *testing.T) {
	data := sharedData(t)
	raw, err := os.ReadFile(filepath.Join(data, "karpenter-reference-instance-types.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(data, "ec2-us-east-1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ec2catalog.Parse(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	mismatches := map[string][]string{} // field -> types
	compared := 0
	for _, csvSpec := range specs {
		want, ok := ref.InstanceTypes[csvSpec.Name]
		if !ok {
			continue
		}
		spec, ok := ec2catalog.Lookup(csvSpec.Name)
		if !ok {
			t.Errorf("%s: in the CSV but not in the embedded catalog (regenerate it)", csvSpec.Name)
			continue
		}
		compared++
		it, err := Convert(InfoFromSpec(spec), nil, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		for _, k := range unionKeys(want.Labels, it.Labels) {
			if want.Labels[k] != it.Labels[k] {
				mismatches["label "+k] = append(mismatches["label "+k], spec.Name+" ("+it.Labels[k]+" vs "+want.Labels[k]+")")
			}
		}
		for _, k := range unionKeys(want.Resources, it.Allocatable) {
			if !sameQuantity(want.Resources[k], it.Allocatable[k]) {
				mismatches["resource "+k] = append(mismatches["resource "+k], spec.Name+" ("+it.Allocatable[k]+" vs "+want.Resources[k]+")")
			}
		}
	}
	if compared != 1094 {
		t.Errorf("compared %d types, want the 1094 both files hold", compared)
	}
	for _, field := range sortedKeys(mismatches) {
		types := mismatches[field]
		reason, listed := deliberate[field]
		if listed {
			t.Logf("%s: %d types differ (deliberate: %s)", field, len(types), reason)
			continue
		}
		t.Errorf("%s: %d types differ from Karpenter (got vs want), e.g. %s", field, len(types), strings.Join(types[:min(5, len(types))], ", "))
	}
	for _, field := range sortedKeys(deliberate) {
		if _, ok := mismatches[field]; !ok {
			t.Errorf("%s is listed as a deliberate difference but matches on every type; remove the entry", field)
		}
	}
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sameQuantity compares two quantity strings by value; "" is absent.
func sameQuantity(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	qa, errA := resource.ParseQuantity(a)
	qb, errB := resource.ParseQuantity(b)
	return errA == nil && errB == nil && qa.Cmp(qb) == 0
}
