package integration

import (
	"fmt"
	"strings"

	"github.com/flotilla-io/flotilla/internal/solver"
)

const gib = int64(1) << 30

// instanceType builds a catalog entry offered on-demand in three zones.
func instanceType(name string, vcpu, memGiB, gpus int64, price float64) solver.InstanceType {
	family, size, _ := strings.Cut(name, ".")
	alloc := solver.Resources{solver.ResourceCPU: vcpu * 1000, solver.ResourceMemory: memGiB * gib, solver.ResourcePods: 110}
	labels := map[string]string{
		solver.LabelInstanceType:            name,
		solver.LabelArch:                    "amd64",
		solver.LabelOS:                      "linux",
		"karpenter.k8s.aws/instance-family": family,
		"karpenter.k8s.aws/instance-size":   size,
	}
	if gpus > 0 {
		alloc["nvidia.com/gpu"] = gpus
		labels["karpenter.k8s.aws/instance-gpu-count"] = fmt.Sprint(gpus)
	}
	it := solver.InstanceType{Name: name, Capacity: alloc, Allocatable: alloc, Labels: labels}
	for _, zone := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		it.Offerings = append(it.Offerings, solver.Offering{Zone: zone, CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price, Available: true})
	}
	return it
}

// bestPracticeProblem is Karpenter's best-practice pair of NodePools — a
// tainted GPU pool of p3 instances and a team pool of m5/c5/r5 large to
// 2xlarge — beside a general pool, with GPU pods, team pods and a zonally
// spread web tier.
func bestPracticeProblem() *solver.Problem {
	p := &solver.Problem{
		InstanceTypes: []solver.InstanceType{
			instanceType("p3.8xlarge", 32, 244, 4, 12.24),
			instanceType("p3.16xlarge", 64, 488, 8, 24.48),
			instanceType("m5.large", 2, 8, 0, 0.096),
			instanceType("m5.xlarge", 4, 16, 0, 0.192),
			instanceType("m5.2xlarge", 8, 32, 0, 0.384),
			instanceType("c5.large", 2, 4, 0, 0.085),
			instanceType("c5.xlarge", 4, 8, 0, 0.17),
			instanceType("c5.2xlarge", 8, 16, 0, 0.34),
			instanceType("r5.large", 2, 16, 0, 0.126),
			instanceType("r5.xlarge", 4, 32, 0, 0.252),
			instanceType("r5.2xlarge", 8, 64, 0, 0.504),
		},
		NodePools: []solver.NodePool{
			{
				Name:   "gpu",
				Taints: []solver.Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: solver.EffectNoSchedule}},
				Requirements: []solver.Requirement{
					{Key: solver.LabelInstanceType, Operator: solver.OpIn, Values: []string{"p3.8xlarge", "p3.16xlarge"}},
					{Key: solver.LabelCapacityType, Operator: solver.OpIn, Values: []string{solver.CapacityTypeOnDemand}},
				},
			},
			{
				Name:   "team",
				Labels: map[string]string{"billing-team": "my-team"},
				Requirements: []solver.Requirement{
					{Key: "karpenter.k8s.aws/instance-family", Operator: solver.OpIn, Values: []string{"m5", "c5", "r5"}},
					{Key: "karpenter.k8s.aws/instance-size", Operator: solver.OpIn, Values: []string{"large", "xlarge", "2xlarge"}},
				},
			},
			{
				Name: "general",
				Requirements: []solver.Requirement{
					{Key: "karpenter.k8s.aws/instance-family", Operator: solver.OpIn, Values: []string{"m5", "c5", "r5"}},
				},
			},
		},
	}
	add := func(name string, n int, mod func(*solver.Pod)) {
		for i := 0; i < n; i++ {
			pod := &solver.Pod{
				Namespace: "default", Name: fmt.Sprintf("%s-%d", name, i), Labels: map[string]string{"app": name},
				Owner:    "ReplicaSet/default/" + name,
				Requests: solver.Resources{solver.ResourceCPU: 500, solver.ResourceMemory: gib},
			}
			mod(pod)
			p.Pods = append(p.Pods, pod)
		}
	}
	add("train", 6, func(pod *solver.Pod) {
		pod.Requests = solver.Resources{solver.ResourceCPU: 4000, solver.ResourceMemory: 32 * gib, "nvidia.com/gpu": 1}
		pod.Tolerations = []solver.Toleration{{Key: "nvidia.com/gpu", Operator: "Equal", Value: "true", Effect: solver.EffectNoSchedule}}
	})
	add("team-api", 8, func(pod *solver.Pod) {
		pod.RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
			{Key: "billing-team", Operator: solver.OpIn, Values: []string{"my-team"}},
		}}}
	})
	add("web", 9, func(pod *solver.Pod) {
		pod.TopologySpread = []solver.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: solver.LabelZone, WhenUnsatisfiable: solver.DoNotSchedule,
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		}}
	})
	add("cache", 4, func(pod *solver.Pod) {
		pod.Requests = solver.Resources{solver.ResourceCPU: 250, solver.ResourceMemory: 6 * gib}
		pod.PodAntiAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "cache"}},
			TopologyKey:   solver.LabelHostname,
		}}
	})
	return p
}
