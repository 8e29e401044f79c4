// Package workload builds solver problems for benchmarks and the CLI:
// Karpenter's scheduling benchmark mix as its benchmark code builds it
// (KarpenterBenchmarkMix), an earlier self-selecting model of it
// (KarpenterMix), and a problem built from a public trace and an EC2
// catalog snapshot.
package workload

import (
	"fmt"
	"math/rand/v2"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Zones and capacity types of the KarpenterMix catalog.
var (
	mixSpotZones     = []string{"test-zone-1", "test-zone-2"}
	mixOnDemandZones = []string{"test-zone-1", "test-zone-2", "test-zone-3"}
)

// KarpenterMixInstanceTypes is the number of instance types in the
// KarpenterMix catalog.
const KarpenterMixInstanceTypes = 400

const gib = int64(1) << 30

// MixPrice is the price per hour of a KarpenterMix instance type with the
// given CPU (millicores) and memory (bytes): $0.1 per vCPU plus $0.1 per GB.
func MixPrice(cpuMilli, memoryBytes int64) float64 {
	return 0.1*float64(cpuMilli)/1000 + 0.1*float64(memoryBytes)/1e9
}

// KarpenterMixCatalog returns the 400 instance types "fake-it-0" ..
// "fake-it-399": type i has i+1 vCPUs, 2(i+1) GiB of memory and room for
// 10(i+1) pods, all allocatable, offered as spot in two zones and on-demand
// in three, all at MixPrice. KarpenterBenchmarkCatalog is the same with
// Karpenter's per-node overhead reserved.
func KarpenterMixCatalog() []solver.InstanceType {
	return KarpenterMixCatalogN(KarpenterMixInstanceTypes)
}

// KarpenterMixCatalogN returns n instance types: the first 400 are those of
// KarpenterMixCatalog; type 400+j ("fake-mem-j") has (j mod 400)+1 vCPUs
// and 4(⌊j/400⌋+1) GiB per vCPU (memory-optimised series), priced and
// offered the same way.
func KarpenterMixCatalogN(n int) []solver.InstanceType {
	return mixCatalog(n, nil)
}

// mixCatalog builds the types of KarpenterMixCatalogN with overhead
// subtracted from each type's capacity to give its allocatable; the price
// stays that of the capacity.
func mixCatalog(n int, overhead solver.Resources) []solver.InstanceType {
	types := make([]solver.InstanceType, 0, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("fake-it-%d", i)
		size, gibPerCPU := int64(i+1), int64(2)
		if i >= KarpenterMixInstanceTypes {
			j := i - KarpenterMixInstanceTypes
			name = fmt.Sprintf("fake-mem-%d", j)
			size, gibPerCPU = int64(j%KarpenterMixInstanceTypes+1), 4*int64(j/KarpenterMixInstanceTypes+1)
		}
		capacity := solver.Resources{
			solver.ResourceCPU:    1000 * size,
			solver.ResourceMemory: gibPerCPU * size * gib,
			solver.ResourcePods:   10 * size,
		}
		price := MixPrice(capacity[solver.ResourceCPU], capacity[solver.ResourceMemory])
		var offerings []solver.Offering
		for _, z := range mixSpotZones {
			offerings = append(offerings, solver.Offering{Zone: z, CapacityType: solver.CapacityTypeSpot, PricePerHour: price, Available: true})
		}
		for _, z := range mixOnDemandZones {
			offerings = append(offerings, solver.Offering{Zone: z, CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price, Available: true})
		}
		allocatable := solver.Resources{}
		for k, v := range capacity {
			allocatable[k] = v - overhead[k]
		}
		types = append(types, solver.InstanceType{
			Name:        name,
			Capacity:    capacity,
			Allocatable: allocatable,
			Labels: map[string]string{
				solver.LabelArch:         "amd64",
				solver.LabelOS:           "linux",
				solver.LabelInstanceType: name,
			},
			Offerings: offerings,
		})
	}
	return types
}

// Shares of the KarpenterMix pods, in order. Pod names are
// "<share>-<index>" and every pod carries the label "workload": share.
const (
	SharePlain          = "plain"
	ShareZonalSpread    = "zonal-spread"
	ShareHostnameSpread = "hostname-spread"
	ShareZonalAffinity  = "zonal-affinity"
	ShareAntiAffinity   = "hostname-anti-affinity"
)

// Shares lists the KarpenterMix shares in order.
var Shares = []string{SharePlain, ShareZonalSpread, ShareHostnameSpread, ShareZonalAffinity, ShareAntiAffinity}

// Label keys used by the KarpenterMix pods.
const (
	LabelWorkload = "workload"
	LabelAffinity = "my-affinity"
)

// AffinityValues are the values of LabelAffinity the zonal-affinity pods
// take; each pod's required affinity term selects its own value.
var AffinityValues = []string{"a", "b", "c", "d"}

var (
	mixCPU    = []int64{100, 250, 500, 1000, 1500}
	mixMemory = []int64{100, 256, 512, 1024, 2048, 4096} // MiB
)

// KarpenterMix returns a problem with n pending pods and no existing nodes,
// an earlier, simplified model of Karpenter's scheduling benchmark (the
// bench workloads karpenter-mix-selfselect-n; KarpenterBenchmarkMix is the
// faithful one): each share selects exactly itself, the zonal-affinity
// pods use 4 values of another key, the pods have ReplicaSet owners and
// the catalog reserves no overhead. It has the 400-type catalog of
// KarpenterMixCatalog, one NodePool "default" with no requirements, and
// pods (namespace "default") in five equal shares, the remainder going to
// the plain share:
//
//   - plain: requests only;
//   - zonal-spread: topology spread maxSkew 1 DoNotSchedule over
//     topology.kubernetes.io/zone selecting the share;
//   - hostname-spread: the same over kubernetes.io/hostname;
//   - zonal-affinity: each pod labelled my-affinity=v for v drawn from
//     AffinityValues, with required pod affinity over the zone to
//     my-affinity=v;
//   - hostname-anti-affinity: labelled app=nginx, with required
//     anti-affinity over the hostname to app=nginx.
//
// CPU requests are drawn from {100m, 250m, 500m, 1, 1500m} and memory from
// {100Mi, 256Mi, 512Mi, 1Gi, 2Gi, 4Gi}, with math/rand/v2 seeded by seed.
func KarpenterMix(n int, seed int64) *solver.Problem {
	// math/rand, not crypto/rand: benchmarks need the same workload from the
	// same seed, and nothing here is secret. The stream constant spells
	// "karpente".
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b617270656e7465)) //nolint:gosec // G404: reproducible benchmark data, not security
	share := n / len(Shares)
	counts := make([]int, len(Shares))
	for i := range counts {
		counts[i] = share
	}
	counts[0] += n - share*len(Shares)

	pods := make([]*solver.Pod, 0, n)
	for si, name := range Shares {
		for i := 0; i < counts[si]; i++ {
			pods = append(pods, mixPod(rng, name, i))
		}
	}
	return &solver.Problem{
		Pods:          pods,
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: KarpenterMixCatalog(),
	}
}

func mixPod(rng *rand.Rand, share string, i int) *solver.Pod {
	p := &solver.Pod{
		Namespace: "default",
		Name:      fmt.Sprintf("%s-%d", share, i),
		Labels:    map[string]string{LabelWorkload: share},
		Owner:     "ReplicaSet/default/" + share,
		Requests: solver.Resources{
			solver.ResourceCPU:    mixCPU[rng.IntN(len(mixCPU))],
			solver.ResourceMemory: mixMemory[rng.IntN(len(mixMemory))] << 20,
		},
	}
	shareSelector := func() *solver.LabelSelector {
		return &solver.LabelSelector{MatchLabels: map[string]string{LabelWorkload: share}}
	}
	switch share {
	case ShareZonalSpread, ShareHostnameSpread:
		key := solver.LabelZone
		if share == ShareHostnameSpread {
			key = solver.LabelHostname
		}
		p.TopologySpread = []solver.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: solver.DoNotSchedule,
			LabelSelector:     shareSelector(),
		}}
	case ShareZonalAffinity:
		v := AffinityValues[rng.IntN(len(AffinityValues))]
		p.Labels[LabelAffinity] = v
		p.Owner += "-" + v
		p.PodAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{LabelAffinity: v}},
			TopologyKey:   solver.LabelZone,
		}}
	case ShareAntiAffinity:
		p.Labels["app"] = "nginx"
		p.PodAntiAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			TopologyKey:   solver.LabelHostname,
		}}
	}
	return p
}
