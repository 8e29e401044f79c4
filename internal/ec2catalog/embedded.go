package ec2catalog

import "sync"

//go:generate go run ./gen -csv ../../../shared/data/ec2-us-east-1.csv -reference ../../../shared/data/karpenter-reference-instance-types.json -out zz_generated_catalog.go

// Embedded returns a copy of the catalog compiled into the binary (see
// zz_generated_catalog.go for its sources), sorted by name. The launcher
// falls back to it when DescribeInstanceTypes or the Pricing API cannot be
// reached.
func Embedded() []Spec {
	return append([]Spec(nil), embedded...)
}

var (
	embeddedIndexOnce sync.Once
	embeddedIndex     map[string]int
)

// Lookup finds an instance type in the embedded catalog.
func Lookup(name string) (Spec, bool) {
	embeddedIndexOnce.Do(func() {
		embeddedIndex = make(map[string]int, len(embedded))
		for i, s := range embedded {
			embeddedIndex[s.Name] = i
		}
	})
	i, ok := embeddedIndex[name]
	if !ok {
		return Spec{}, false
	}
	return embedded[i], true
}

// Region is the region whose prices the embedded catalog holds.
const Region = "us-east-1"

// embeddedZones are the zones the embedded catalog's types are offered in
// per region: the catalog has no per-zone availability, so every type is
// offered in each of these.
var embeddedZones = map[string][]string{
	Region: {"us-east-1a", "us-east-1b", "us-east-1c"},
}

// Regions lists the regions the embedded catalog has, sorted.
func Regions() []string {
	return sortedKeys(embeddedZones)
}

// RegionZones returns the zones the embedded catalog offers its types in
// for region; ok is false for a region it does not have.
func RegionZones(region string) (zones []string, ok bool) {
	z, ok := embeddedZones[region]
	return append([]string(nil), z...), ok
}
