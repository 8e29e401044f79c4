package catalog

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

const mebi = 1 << 20

// eksKubeReservedCPU is the kube-reserved CPU in millicores Karpenter
// assumes on EKS: 6% of the first core, 1% of the second, 0.5% of the
// third and fourth, and 0.25% of every core above four.
func eksKubeReservedCPU(milli int64) int64 {
	ranges := []struct {
		start, end int64
		pct        float64
	}{
		{0, 1000, 0.06},
		{1000, 2000, 0.01},
		{2000, 4000, 0.005},
		{4000, 1 << 62, 0.0025},
	}
	var reserved float64
	for _, r := range ranges {
		if milli <= r.start {
			break
		}
		top := min(milli, r.end)
		reserved += float64(top-r.start) * r.pct
	}
	return int64(reserved)
}

// eksKubeReservedMemory is the kube-reserved memory in bytes Karpenter
// assumes on EKS: 11 MiB per pod plus 255 MiB.
func eksKubeReservedMemory(maxPods int64) int64 { return (11*maxPods + 255) * mebi }

// eksEvictionMemory is the memory.available hard-eviction threshold.
const eksEvictionMemory = 100 * mebi

// eksKubeReservedEphemeral is the kube-reserved ephemeral storage, and
// eksEvictionNodefsPercent the nodefs.available eviction threshold.
const (
	eksKubeReservedEphemeral = 1 << 30
	eksEvictionNodefsPercent = 10
)

// allocatable returns the allocatable resources for a capacity under an
// overhead policy. Capacity quantities must be valid.
func allocatable(capacity map[string]string, overhead string) (map[string]string, error) {
	out := make(map[string]string, len(capacity))
	for k, v := range capacity {
		out[k] = v
	}
	if overhead != OverheadEKS {
		return out, nil
	}
	var pods int64 = DefaultMaxPods
	if v, ok := capacity["pods"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("capacity pods: %w", err)
		}
		pods = q.Value()
	}
	if v, ok := capacity["cpu"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("capacity cpu: %w", err)
		}
		m := q.MilliValue()
		out["cpu"] = resource.NewMilliQuantity(max(0, m-eksKubeReservedCPU(m)), resource.DecimalSI).String()
	}
	if v, ok := capacity["memory"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("capacity memory: %w", err)
		}
		b := q.Value() - eksKubeReservedMemory(pods) - eksEvictionMemory
		out["memory"] = resource.NewQuantity(max(0, b), resource.BinarySI).String()
	}
	if v, ok := capacity["ephemeral-storage"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("capacity ephemeral-storage: %w", err)
		}
		total := q.Value()
		b := total - eksKubeReservedEphemeral - total*eksEvictionNodefsPercent/100
		out["ephemeral-storage"] = resource.NewQuantity(max(0, b), resource.BinarySI).String()
	}
	return out, nil
}
