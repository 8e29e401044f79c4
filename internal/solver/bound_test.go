package solver

import (
	"context"
	"fmt"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// tinyProblem draws 1..6 pods (cpu, memory, some on arm64 only) and 1..4
// instance types (random shapes, prices, one or two arches, some with a
// spot offering) in one NodePool.
func tinyProblem(t *rapid.T) *Problem {
	p := &Problem{NodePools: []NodePool{{Name: "default"}}}
	nt := rapid.IntRange(1, 4).Draw(t, "types")
	for i := 0; i < nt; i++ {
		cpu := rapid.Int64Range(1, 8).Draw(t, "cpu")
		mem := rapid.Int64Range(1, 16).Draw(t, "mem")
		price := float64(rapid.IntRange(1, 100).Draw(t, "price")) / 100
		it := itype(fmt.Sprintf("t%d", i), cpu, mem, price)
		if rapid.Bool().Draw(t, "arm") {
			it.Labels[LabelArch] = "arm64"
		}
		if rapid.Bool().Draw(t, "spot") {
			it.Offerings = append(it.Offerings, Offering{Zone: "z1", CapacityType: CapacityTypeSpot,
				PricePerHour: price * float64(rapid.IntRange(20, 120).Draw(t, "spotPct")) / 100, Available: true})
		}
		p.InstanceTypes = append(p.InstanceTypes, it)
	}
	np := rapid.IntRange(1, 6).Draw(t, "pods")
	for i := 0; i < np; i++ {
		pod := mkPod(fmt.Sprintf("p%d", i), rapid.Int64Range(100, 6000).Draw(t, "podCPU"))
		pod.Requests[ResourceMemory] = rapid.Int64Range(0, 12).Draw(t, "podMem") * gi
		if rapid.IntRange(0, 3).Draw(t, "sel") == 0 {
			pod.NodeSelector = map[string]string{LabelArch: "arm64"}
		}
		p.Pods = append(p.Pods, pod)
	}
	return p
}

// bruteForce is the cheapest cost of placing every pod of want (a set of
// pod indexes) on new nodes: it tries every partition of the pods into
// nodes, each node the cheapest offering that holds its pods and that
// every pod's selector accepts.
func bruteForce(p *Problem, want []int) float64 {
	best := math.Inf(1)
	var groups [][]int
	var rec func(i int, cost float64)
	rec = func(i int, cost float64) {
		if cost >= best {
			return
		}
		if i == len(want) {
			best = cost
			return
		}
		pod := want[i]
		for g := range groups {
			old := nodeCost(p, groups[g])
			groups[g] = append(groups[g], pod)
			if c := nodeCost(p, groups[g]); !math.IsInf(c, 1) {
				rec(i+1, cost-old+c)
			}
			groups[g] = groups[g][:len(groups[g])-1]
		}
		groups = append(groups, []int{pod})
		if c := nodeCost(p, groups[len(groups)-1]); !math.IsInf(c, 1) {
			rec(i+1, cost+c)
		}
		groups = groups[:len(groups)-1]
	}
	rec(0, 0)
	return best
}

func nodeCost(p *Problem, pods []int) float64 {
	best := math.Inf(1)
	for i := range p.InstanceTypes {
		it := &p.InstanceTypes[i]
		sum := Resources{ResourcePods: int64(len(pods))}
		ok := true
		labels := map[string]string{LabelArch: it.Labels[LabelArch]}
		for _, idx := range pods {
			ok = ok && p.Pods[idx].NodeSelectorMatches(labels)
			for k, v := range p.Pods[idx].Requests {
				sum[k] += v
			}
		}
		for k, v := range sum {
			ok = ok && v <= it.Allocatable[k]
		}
		if !ok {
			continue
		}
		for _, o := range it.Offerings {
			best = min(best, o.PricePerHour)
		}
	}
	return best
}

// The bound never beats the true optimum on tiny inputs, and never exceeds
// the cost of the plan Solve returns.
func TestPropertyLowerBoundBelowBruteForceOptimum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := tinyProblem(t)
		plan, err := Solve(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		bad := map[PodRef]bool{}
		for _, u := range plan.Unschedulable {
			bad[u.Pod] = true
		}
		var want []int
		for i, pod := range p.Pods {
			if !bad[pod.Ref()] {
				want = append(want, i)
			}
		}
		opt := bruteForce(p, want)
		if plan.LowerBoundPerHour > opt+1e-9 {
			t.Fatalf("bound %v above the optimum %v (plan %v)", plan.LowerBoundPerHour, opt, plan.CostPerHour)
		}
		if plan.LowerBoundPerHour > plan.CostPerHour+1e-9 {
			t.Fatalf("bound %v above the plan's cost %v", plan.LowerBoundPerHour, plan.CostPerHour)
		}
		if plan.CostPerHour < opt-1e-9 {
			t.Fatalf("plan %v cheaper than the brute-force optimum %v", plan.CostPerHour, opt)
		}
	})
}

// A CPU-only pod and a memory-only pod share one node: taking each pod's
// largest resource share would charge two nodes; the bound must not.
func TestLowerBoundIsNotPerPodMax(t *testing.T) {
	p := &Problem{
		NodePools:     []NodePool{{Name: "default"}},
		InstanceTypes: []InstanceType{itype("one", 2, 4, 1)},
		Pods:          []*Pod{mkPod("cpu", 2000), {Namespace: "default", Name: "mem", Requests: Resources{ResourceMemory: 4 * gi}}},
	}
	plan, err := Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NodeClaims) != 1 || plan.LowerBoundPerHour > 1+1e-9 || plan.LowerBoundPerHour < 0.5 {
		t.Fatalf("nodes %d, cost %v, bound %v: want one node and a bound in [0.5, 1]", len(plan.NodeClaims), plan.CostPerHour, plan.LowerBoundPerHour)
	}
}

// Pods that fit an existing node are charged nothing.
func TestLowerBoundExistingCapacity(t *testing.T) {
	p := &Problem{
		NodePools:     []NodePool{{Name: "default"}},
		InstanceTypes: smallCatalog(),
		Nodes: []Node{{Name: "n1", Labels: map[string]string{LabelArch: "amd64"},
			Allocatable: Resources{ResourceCPU: 4000, ResourceMemory: 8 * gi, ResourcePods: 110}}},
		Pods: []*Pod{mkPod("a", 1000)},
	}
	plan, err := Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if plan.LowerBoundPerHour != 0 || plan.CostPerHour != 0 {
		t.Fatalf("cost %v, bound %v: want 0 and 0", plan.CostPerHour, plan.LowerBoundPerHour)
	}
}
