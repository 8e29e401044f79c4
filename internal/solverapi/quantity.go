package solverapi

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// maxAmount bounds every converted amount (millicores, bytes or units) so
// that the solver can add thousands of them without overflowing int64:
// 2^56 bytes is 64 PiB, 2^56 millicores about 7*10^13 cores.
const maxAmount = int64(1) << 56

// isByteResource reports whether name is counted in bytes, where
// fractional amounts round up to a whole byte.
func isByteResource(name string) bool {
	return name == solver.ResourceMemory || name == solver.ResourceEphemeralStorage ||
		name == "storage" || strings.HasPrefix(name, "hugepages-")
}

// parseAmount converts a Kubernetes quantity of resource name into the
// solver's integer unit: millicores for cpu (rounded up, as Kubernetes
// does), bytes for memory and storage (rounded up), whole units for
// everything else (pods and extended resources must be whole numbers).
func parseAmount(name, value string) (int64, error) {
	q, err := resource.ParseQuantity(value)
	if err != nil {
		return 0, fmt.Errorf("invalid quantity %q", value)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("quantity %q must not be negative", value)
	}
	// Check the bound before scaling: MilliValue and Value saturate or
	// wrap for huge quantities.
	limit := float64(maxAmount)
	if name == solver.ResourceCPU {
		limit /= 1000
	}
	if q.AsApproximateFloat64() > limit {
		return 0, fmt.Errorf("quantity %q is too large", value)
	}
	switch {
	case name == solver.ResourceCPU:
		return q.MilliValue(), nil
	case isByteResource(name):
		return q.Value(), nil
	}
	if q.MilliValue()%1000 != 0 {
		return 0, fmt.Errorf("quantity %q of %s must be a whole number", value, name)
	}
	return q.Value(), nil
}

// formatAmount renders an amount in the solver's unit as a canonical
// Kubernetes quantity: "1500m" or "2" for cpu, binary suffixes for byte
// resources where exact ("1Gi"), plain integers otherwise.
func formatAmount(name string, v int64) string {
	switch {
	case name == solver.ResourceCPU:
		return resource.NewMilliQuantity(v, resource.DecimalSI).String()
	case isByteResource(name):
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return resource.NewQuantity(v, resource.DecimalSI).String()
}

// resourcesToProto renders domain resources as a quantity map; nil for
// none.
func resourcesToProto(r solver.Resources) map[string]string {
	if len(r) == 0 {
		return nil
	}
	out := make(map[string]string, len(r))
	for k, v := range r {
		out[k] = formatAmount(k, v)
	}
	return out
}
