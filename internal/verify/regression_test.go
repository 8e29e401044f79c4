package verify

import (
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Regression tests for solver bugs the property tests found, each reduced
// to a small problem.

func bugType(name, arch, cpus string, capacity, alloc solver.Resources, offs ...solver.Offering) solver.InstanceType {
	return solver.InstanceType{Name: name, Capacity: capacity, Allocatable: alloc,
		Labels: map[string]string{solver.LabelArch: arch, solver.LabelOS: "linux",
			solver.LabelInstanceType: name, labelCPUs: cpus},
		Offerings: offs}
}

func spot(zone string, price float64) solver.Offering {
	return solver.Offering{Zone: zone, CapacityType: solver.CapacityTypeSpot, PricePerHour: price, Available: true}
}

func replicas(app string, n int, cpu, mem int64, f func(p *solver.Pod)) []*solver.Pod {
	var out []*solver.Pod
	for i := 0; i < n; i++ {
		p := &solver.Pod{Namespace: "default", Name: app + "-" + string(rune('0'+i)),
			Labels: map[string]string{"app": app}, Owner: "ReplicaSet/default/" + app,
			Requests: solver.Resources{solver.ResourceCPU: cpu, solver.ResourceMemory: mem}}
		if f != nil {
			f(p)
		}
		out = append(out, p)
	}
	return out
}

func appSpread(app, key string, maxSkew int32) []solver.TopologySpreadConstraint {
	return []solver.TopologySpreadConstraint{{MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: solver.DoNotSchedule,
		LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
}

func solveAndVerify(t *testing.T, p *solver.Problem) {
	t.Helper()
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Plan(p, plan); err != nil {
		t.Fatalf("%v\nplan: %s", err, dump(plan))
	}
}

// Zonal spread (maxSkew 1) of 8 amd64-only pods, next to 6 plain 1-CPU
// pods: the solver puts 7 spread pods in zone-2 and 1 in zone-3, although
// both zones are eligible (it-4 is amd64 and offered in both).
func TestSolverBugZonalSpreadSkew(t *testing.T) {
	p := &solver.Problem{
		NodePools: []solver.NodePool{{Name: "pool-0"}},
		InstanceTypes: []solver.InstanceType{
			bugType("it-3", "arm64", "2", res(2000, 8, 30), solver.Resources{"cpu": 1900, "memory": 8321499136, "pods": 30},
				spot("zone-2", 0.0576)),
			bugType("it-4", "amd64", "4", res(4000, 16, 8), solver.Resources{"cpu": 4000, "memory": 16911433728, "pods": 8},
				spot("zone-2", 0.09696), spot("zone-3", 0.10272)),
		},
	}
	p.Pods = append(replicas("d0", 6, 1000, gi, nil), replicas("d4", 8, 250, 128*mi, func(p *solver.Pod) {
		p.RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
			{Key: solver.LabelArch, Operator: solver.OpIn, Values: []string{"amd64"}}}}}
		p.TopologySpread = appSpread("d4", solver.LabelZone, 1)
	})...)
	solveAndVerify(t, p)
}

// Hostname spread (maxSkew 2) of 3 small pods that need more than 8 CPUs:
// all three go on the zone-3 claim; a zone-2 claim opened afterwards for a
// zone-anti-affine pod is an eligible hostname domain with none of them, so
// kube-scheduler would see skew 3.
func TestSolverBugHostnameSpreadLaterClaim(t *testing.T) {
	p := &solver.Problem{
		NodePools: []solver.NodePool{{Name: "pool-0"}},
		InstanceTypes: []solver.InstanceType{
			bugType("it-0", "arm64", "8", res(8000, 64, 3), solver.Resources{"cpu": 7750, "memory": 64*gi - 256*mi, "pods": 3},
				spot("zone-3", 0.26112)),
			bugType("it-2", "arm64", "16", res(16000, 128, 8), solver.Resources{"cpu": 15750, "memory": 128*gi - 256*mi, "pods": 8},
				od("zone-2", 1.3184), spot("zone-3", 0.51712)),
		},
	}
	p.Pods = append(replicas("d1", 4, 3000, 16*gi, func(p *solver.Pod) {
		p.PodAntiAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "d1"}}}}
	}), replicas("d4", 3, 100, 128*mi, func(p *solver.Pod) {
		p.RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
			{Key: labelCPUs, Operator: solver.OpGt, Values: []string{"8"}}}}}
		p.TopologySpread = appSpread("d4", solver.LabelHostname, 2)
	})...)
	solveAndVerify(t, p)
}

// Consolidation: node-2 is replaced by a claim of the heavier NodePool pool-2 with options it-1 (2 CPUs
// allocatable) and it-3 (1.75 CPUs; minValues 2 keeps both); a later action
// deletes node-1 and binds its pods to "replacement-for-node-2", sized as
// it-1 only: on it-3 the replacement would need 1.85 CPUs.
func TestSolverBugConsolidationReplacementOptions(t *testing.T) {
	tol := []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
	mk := func(name, app string, cpu, mem int64, f func(p *solver.Pod)) *solver.Pod {
		p := &solver.Pod{Namespace: "default", Name: name, Labels: map[string]string{"app": app}, Owner: "ReplicaSet/default/" + app,
			Requests: solver.Resources{solver.ResourceCPU: cpu, solver.ResourceMemory: mem}, Tolerations: tol}
		if f != nil {
			f(p)
		}
		return p
	}
	nodeLabels := func(name, pool, it, zone string) map[string]string {
		return map[string]string{solver.LabelHostname: name, solver.LabelNodePool: pool, solver.LabelInstanceType: it,
			solver.LabelZone: zone, solver.LabelCapacityType: solver.CapacityTypeSpot, solver.LabelArch: "amd64",
			solver.LabelOS: "linux", labelCPUs: "2"}
	}
	p := &solver.Problem{
		NodePools: []solver.NodePool{
			{Name: "pool-0"},
			{Name: "pool-2", Weight: 95, Requirements: []solver.Requirement{{Key: solver.LabelInstanceType, Operator: solver.OpExists, MinValues: 2}}},
		},
		InstanceTypes: []solver.InstanceType{
			bugType("it-1", "arm64", "2", res(2000, 4, 8), solver.Resources{"cpu": 2000, "memory": 4*gi - 256*mi, "pods": 8},
				spot("zone-3", 0.04)),
			bugType("it-3", "amd64", "2", res(2000, 16, 30), solver.Resources{"cpu": 1750, "memory": 16*gi - 256*mi, "pods": 30},
				spot("zone-3", 0.064)),
		},
		Nodes: []solver.Node{
			{Name: "node-1", NodePool: "pool-2", Labels: nodeLabels("node-1", "pool-2", "it-3", "zone-2"),
				Taints:      []solver.Taint{{Key: "dedicated", Value: "pool-2", Effect: solver.EffectNoSchedule}},
				Allocatable: solver.Resources{"cpu": 1750, "memory": 16*gi - 256*mi, "pods": 30},
				Pods: []*solver.Pod{mk("node-1-pod-0", "d1", 250, gi, nil),
					mk("node-1-pod-1", "db", 100, 128*mi, func(p *solver.Pod) { p.HostPorts = []solver.HostPort{{Port: 8080, Protocol: "TCP"}} })},
				InstanceType: "it-3", Zone: "zone-2", CapacityType: solver.CapacityTypeSpot, PricePerHour: 0.064},
			{Name: "node-2", NodePool: "pool-0", Labels: nodeLabels("node-2", "pool-0", "it-0", "zone-3"),
				Allocatable: solver.Resources{"cpu": 2000, "memory": 8*gi - 256*mi, "pods": 3},
				Pods: []*solver.Pod{mk("node-2-pod-0", "db", 1000, 128*mi, func(p *solver.Pod) {
					p.NodeSelector = map[string]string{solver.LabelZone: "zone-3"}
				}), mk("node-2-pod-1", "cache", 500, gi, nil)},
				InstanceType: "it-0", Zone: "zone-3", CapacityType: solver.CapacityTypeSpot, PricePerHour: 0.05376},
		},
	}
	cp, err := solver.Consolidate(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Consolidation(p, cp); err != nil {
		t.Fatalf("%v\nplan: %s", err, dump(cp))
	}
}
