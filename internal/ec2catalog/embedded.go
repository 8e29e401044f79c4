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
