package workload

import (
	"fmt"
	"math/rand"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// The facts below come from Karpenter's scheduling benchmark,
// pkg/controllers/provisioning/scheduling/scheduling_benchmark_test.go
// (makeDiversePods and its helpers), its fake cloud provider,
// pkg/cloudprovider/fake/instancetype.go (InstanceTypes, NewInstanceType,
// PriceFromResources) and pkg/test (Pod, NamespacedObjectMeta), in
// kubernetes-sigs/karpenter at commit
// 2266468104f36373ed002241afaee2d3bbc26078.

// Label keys of the KarpenterBenchmarkMix pods.
const (
	// LabelMyLabel is the key of the plain and spread pods' label and of
	// the spread pods' selectors.
	LabelMyLabel = "my-label"
	// LabelMyAffininity is the key of the zonal-affinity pods' label and
	// selector, misspelt as in Karpenter's benchmark.
	LabelMyAffininity = "my-affininity"
	// LabelDiscovery is the label Karpenter's test helpers put on every
	// pod (value "unspecified"); no selector uses it.
	LabelDiscovery = "testing/cluster"
)

// BenchmarkLabelValues are the values every LabelMyLabel and
// LabelMyAffininity label and selector is drawn from, uniformly.
var BenchmarkLabelValues = []string{"a", "b", "c", "d", "e", "f", "g"}

// BenchmarkOverhead is what each KarpenterBenchmarkCatalog type reserves
// (the fake instance types' kube-reserved): 100m CPU and 10Mi of memory.
var BenchmarkOverhead = solver.Resources{
	solver.ResourceCPU:    100,
	solver.ResourceMemory: 10 << 20,
}

// KarpenterBenchmarkCatalog returns Karpenter's 400 fake instance types as
// its benchmark uses them: KarpenterMixCatalog's types (type i with i+1
// vCPUs, 2(i+1) GiB, 10(i+1) pods, priced on its capacity at $0.1 per vCPU
// plus $0.1 per GB, spot in two zones and on-demand in three) with
// BenchmarkOverhead subtracted from each type's allocatable.
func KarpenterBenchmarkCatalog() []solver.InstanceType {
	return KarpenterBenchmarkCatalogN(KarpenterMixInstanceTypes)
}

// KarpenterBenchmarkCatalogN is KarpenterMixCatalogN(n) with
// BenchmarkOverhead reserved on every type, the 400 memory-optimised types
// beyond the first 400 included (those are Flotilla's, not Karpenter's).
func KarpenterBenchmarkCatalogN(n int) []solver.InstanceType {
	return mixCatalog(n, BenchmarkOverhead)
}

// KarpenterBenchmarkMix returns a problem with n pending pods and no
// existing nodes, built as Karpenter's makeDiversePods(n) builds its pods,
// against KarpenterBenchmarkCatalog and one NodePool "default" with no
// requirements and Karpenter's limits (10,000,000 CPUs, 10,000,000Gi).
//
// The pods are bare (no owner) in namespace "default", each labelled
// testing/cluster=unspecified besides the labels below, named
// "<kind>-<index>" (Karpenter's names are random). n/5 pods of each kind,
// in this order, then the remainder as more plain pods:
//
//   - plain: labelled my-label=v;
//   - zonal-spread: labelled my-label=v, with a topology spread
//     constraint (maxSkew 1, DoNotSchedule, over the zone) selecting
//     my-label=w, v and w drawn independently, so the selector usually
//     matches other pods (plain ones included) and not the pod itself;
//   - hostname-spread: the same over the hostname;
//   - zonal-affinity: labelled my-affininity=v, with required pod
//     affinity over the zone to my-affininity=v (self-affinity);
//   - hostname-anti-affinity: labelled app=nginx, with required pod
//     anti-affinity over the hostname to app=nginx.
//
// Every label value is drawn uniformly from BenchmarkLabelValues, CPU
// requests from {100m, 250m, 500m, 1, 1500m} and memory from {100Mi, 256Mi,
// 512Mi, 1Gi, 2Gi, 4Gi}, one draw each per pod in Karpenter's order (pod
// label, selector label, CPU, memory) from math/rand seeded with seed, as
// Karpenter's benchmark draws from math/rand seeded with 42.
func KarpenterBenchmarkMix(n int, seed int64) *solver.Problem {
	// math/rand, not crypto/rand: benchmarks need the same workload from
	// the same seed, and nothing here is secret.
	rng := rand.New(rand.NewSource(seed)) //nolint:gosec // G404: reproducible benchmark data, not security
	per := n / len(Shares)
	pods := make([]*solver.Pod, 0, n)
	for _, kind := range Shares {
		for i := 0; i < per; i++ {
			pods = append(pods, benchmarkPod(rng, kind, i))
		}
	}
	for i := per; len(pods) < n; i++ {
		pods = append(pods, benchmarkPod(rng, SharePlain, i))
	}
	return &solver.Problem{
		Pods: pods,
		NodePools: []solver.NodePool{{
			Name: "default",
			Limits: solver.Resources{
				solver.ResourceCPU:    10_000_000 * 1000,
				solver.ResourceMemory: 10_000_000 * gib,
			},
		}},
		InstanceTypes: KarpenterBenchmarkCatalog(),
	}
}

// benchmarkPod builds pod i of the given kind, drawing from rng in the
// order Karpenter's helpers do.
func benchmarkPod(rng *rand.Rand, kind string, i int) *solver.Pod {
	p := &solver.Pod{
		Namespace: "default",
		Name:      fmt.Sprintf("%s-%d", kind, i),
		Labels:    map[string]string{LabelDiscovery: "unspecified"},
	}
	switch kind {
	case SharePlain:
		p.Labels[LabelMyLabel] = benchmarkLabelValue(rng)
	case ShareZonalSpread, ShareHostnameSpread:
		key := solver.LabelZone
		if kind == ShareHostnameSpread {
			key = solver.LabelHostname
		}
		p.Labels[LabelMyLabel] = benchmarkLabelValue(rng)
		p.TopologySpread = []solver.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: solver.DoNotSchedule,
			LabelSelector:     &solver.LabelSelector{MatchLabels: map[string]string{LabelMyLabel: benchmarkLabelValue(rng)}},
		}}
	case ShareZonalAffinity:
		v := benchmarkLabelValue(rng)
		p.Labels[LabelMyAffininity] = v
		p.PodAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{LabelMyAffininity: v}},
			TopologyKey:   solver.LabelZone,
		}}
	case ShareAntiAffinity:
		p.Labels["app"] = "nginx"
		p.PodAntiAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			TopologyKey:   solver.LabelHostname,
		}}
	}
	p.Requests = solver.Resources{
		solver.ResourceCPU:    mixCPU[rng.Intn(len(mixCPU))],
		solver.ResourceMemory: mixMemory[rng.Intn(len(mixMemory))] << 20,
	}
	return p
}

func benchmarkLabelValue(rng *rand.Rand) string {
	return BenchmarkLabelValues[rng.Intn(len(BenchmarkLabelValues))]
}
