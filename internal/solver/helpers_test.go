package solver

import (
	"fmt"
	"testing"
)

const gi = int64(1) << 30

func res(cpuMilli int64, memGi int64) Resources {
	return Resources{ResourceCPU: cpuMilli, ResourceMemory: memGi * gi}
}

// itype is an instance type with on-demand offerings in the given zones.
func itype(name string, cpu, memGi int64, price float64, zones ...string) InstanceType {
	if len(zones) == 0 {
		zones = []string{"z1"}
	}
	it := InstanceType{Name: name,
		Capacity:    Resources{ResourceCPU: cpu * 1000, ResourceMemory: memGi * gi, ResourcePods: 110},
		Allocatable: Resources{ResourceCPU: cpu * 1000, ResourceMemory: memGi * gi, ResourcePods: 110},
		Labels:      map[string]string{LabelArch: "amd64", LabelOS: "linux"}}
	for _, z := range zones {
		it.Offerings = append(it.Offerings, Offering{Zone: z, CapacityType: CapacityTypeOnDemand, PricePerHour: price, Available: true})
	}
	return it
}

// smallCatalog: three sizes in two zones.
func smallCatalog() []InstanceType {
	return []InstanceType{
		itype("small", 2, 4, 0.1, "z1", "z2"),
		itype("medium", 4, 8, 0.2, "z1", "z2"),
		itype("large", 8, 16, 0.4, "z1", "z2"),
	}
}

func mkPod(name string, cpuMilli int64) *Pod {
	return &Pod{Namespace: "default", Name: name, Labels: map[string]string{}, Requests: res(cpuMilli, 0)}
}

func mkPods(prefix string, n int, cpuMilli int64, labels map[string]string) []*Pod {
	var out []*Pod
	for i := 0; i < n; i++ {
		p := mkPod(fmt.Sprintf("%s-%d", prefix, i), cpuMilli)
		p.Labels = labels
		out = append(out, p)
	}
	return out
}

func basicProblem(pods ...*Pod) *Problem {
	return &Problem{Pods: pods, NodePools: []NodePool{{Name: "default"}}, InstanceTypes: smallCatalog()}
}

func mustSolve(t testing.TB, p *Problem) *Plan {
	t.Helper()
	pl, err := Solve(t.Context(), p)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	checkPlan(t, p, pl)
	return pl
}

// placement maps each placed pod to the node (existing name or claim index
// as "claim-N") and its labels.
type placement struct {
	node   map[PodRef]string
	labels map[string]map[string]string
}

func placements(p *Problem, pl *Plan) placement {
	out := placement{node: map[PodRef]string{}, labels: map[string]map[string]string{}}
	for i, nc := range pl.NodeClaims {
		name := fmt.Sprintf("claim-%d", i)
		l := map[string]string{LabelHostname: name}
		for k, v := range nc.Labels {
			l[k] = v
		}
		out.labels[name] = l
		for _, r := range nc.Pods {
			out.node[r] = name
		}
	}
	for name, refs := range pl.ExistingBindings {
		for _, r := range refs {
			out.node[r] = name
		}
	}
	for _, n := range p.Nodes {
		l := map[string]string{LabelHostname: n.Name}
		for k, v := range n.Labels {
			l[k] = v
		}
		out.labels[n.Name] = l
	}
	for _, n := range p.NodeClaims {
		l := map[string]string{LabelHostname: n.Name}
		for k, v := range n.Labels {
			l[k] = v
		}
		out.labels[n.Name] = l
	}
	return out
}

// checkPlan checks basic invariants: each pod exactly once, claims fit on
// their launched type, options cheapest first.
func checkPlan(t testing.TB, p *Problem, pl *Plan) {
	t.Helper()
	seen := map[PodRef]int{}
	for _, nc := range pl.NodeClaims {
		for _, r := range nc.Pods {
			seen[r]++
		}
		var it *InstanceType
		for i := range p.InstanceTypes {
			if p.InstanceTypes[i].Name == nc.InstanceType {
				it = &p.InstanceTypes[i]
			}
		}
		if it == nil {
			t.Fatalf("claim launches unknown type %s", nc.InstanceType)
		}
		for k, q := range nc.Requests {
			alloc, ok := it.Allocatable[k]
			if !ok && k == ResourcePods {
				alloc = 110
			}
			if q > alloc {
				t.Errorf("claim %s on %s: %s %d > allocatable %d", nc.Pods, nc.InstanceType, k, q, alloc)
			}
		}
		if len(nc.InstanceTypeOptions) == 0 || nc.InstanceTypeOptions[0] != nc.InstanceType {
			t.Errorf("claim options %v do not start with launched %s", nc.InstanceTypeOptions, nc.InstanceType)
		}
		if nc.Labels[LabelZone] != nc.Zone || nc.Labels[LabelCapacityType] != nc.CapacityType {
			t.Errorf("claim labels %v do not pin zone %s / %s", nc.Labels, nc.Zone, nc.CapacityType)
		}
	}
	for _, refs := range pl.ExistingBindings {
		for _, r := range refs {
			seen[r]++
		}
	}
	for _, u := range pl.Unschedulable {
		seen[u.Pod]++
		if u.Reason == "" {
			t.Errorf("pod %s unschedulable without reason", u.Pod)
		}
	}
	for _, pod := range p.Pods {
		if seen[pod.Ref()] != 1 {
			t.Errorf("pod %s appears %d times in the plan", pod.Ref(), seen[pod.Ref()])
		}
	}
}

func unschedulable(pl *Plan) map[string]string {
	out := map[string]string{}
	for _, u := range pl.Unschedulable {
		out[u.Pod.Name] = u.Reason
	}
	return out
}

// checkTopology verifies, on the final placement, required anti-affinity
// (both directions), required affinity and DoNotSchedule spreads of the
// pending pods, counting pods already on nodes.
func checkTopology(t testing.TB, p *Problem, pl *Plan) {
	t.Helper()
	pm := placements(p, pl)
	type placed struct {
		pod  *Pod
		node string
	}
	var all []placed
	for _, n := range p.Nodes {
		for _, pod := range n.Pods {
			all = append(all, placed{pod, n.Name})
		}
	}
	for _, n := range p.NodeClaims {
		for _, pod := range n.Pods {
			all = append(all, placed{pod, n.Name})
		}
	}
	for _, pod := range p.Pods {
		if n, ok := pm.node[pod.Ref()]; ok {
			all = append(all, placed{pod, n})
		}
	}
	for _, a := range all {
		la := pm.labels[a.node]
		for _, term := range a.pod.PodAntiAffinity.Required {
			for _, b := range all {
				if a.pod == b.pod {
					continue
				}
				lb := pm.labels[b.node]
				if va, ok := la[term.TopologyKey]; ok && lb[term.TopologyKey] == va && term.Selects(a.pod, b.pod, p.Namespaces) {
					t.Errorf("anti-affinity of %s violated by %s (%s=%s)", a.pod.Ref(), b.pod.Ref(), term.TopologyKey, va)
				}
			}
		}
	}
	for _, pod := range p.Pods {
		n, ok := pm.node[pod.Ref()]
		if !ok {
			continue
		}
		la := pm.labels[n]
		for _, term := range pod.PodAffinity.Required {
			found := false
			for _, b := range all {
				if b.pod != pod && pm.labels[b.node][term.TopologyKey] == la[term.TopologyKey] && term.Selects(pod, b.pod, p.Namespaces) {
					found = true
				}
			}
			if !found {
				// Allowed only as the first of its kind.
				anyMatch := false
				for _, b := range all {
					if b.pod != pod && term.Selects(pod, b.pod, p.Namespaces) {
						anyMatch = true
					}
				}
				if anyMatch {
					t.Errorf("affinity of %s not satisfied", pod.Ref())
				}
			}
		}
		for _, c := range pod.TopologySpread {
			if c.WhenUnsatisfiable == ScheduleAnyway {
				continue
			}
			counts := map[string]int{}
			for node, l := range pm.labels {
				d, ok := l[c.TopologyKey]
				if !ok {
					continue
				}
				if c.NodeAffinityPolicy != PolicyIgnore && !pod.NodeSelectorMatches(l) {
					continue
				}
				_ = node
				counts[d] += 0
			}
			for _, b := range all {
				l := pm.labels[b.node]
				d, ok := l[c.TopologyKey]
				if !ok || (c.NodeAffinityPolicy != PolicyIgnore && !pod.NodeSelectorMatches(l)) {
					continue
				}
				if c.Selects(pod, b.pod) {
					counts[d]++
				}
			}
			lo, hi := 1<<30, 0
			for _, v := range counts {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi-lo > int(c.MaxSkew) {
				t.Errorf("spread of %s on %s skew %d > %d: %v", pod.Ref(), c.TopologyKey, hi-lo, c.MaxSkew, counts)
			}
		}
	}
}

// prepared returns a solver prepared for p that nothing stops.
func prepared(t testing.TB, p *Problem) *solver {
	t.Helper()
	s, err := newSolverFrom(nil, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
