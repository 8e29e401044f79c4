package solver_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/verify"
)

// Inter-pod rules whose selectors match pods of another deployment, found
// by the kube-scheduler oracle (docs/findings/oracle-findings.md): every
// plan must pass verify.Plan's final-state check, in which each placed pod
// is judged against all the others.

const gib = int64(1) << 30

func fsType(name string, cpu int64, price float64, zones ...string) solver.InstanceType {
	alloc := solver.Resources{solver.ResourceCPU: cpu * 1000, solver.ResourceMemory: 4 * cpu * gib, solver.ResourcePods: 110}
	it := solver.InstanceType{Name: name, Capacity: alloc, Allocatable: alloc,
		Labels: map[string]string{solver.LabelArch: "amd64", solver.LabelOS: "linux", solver.LabelInstanceType: name}}
	for _, z := range zones {
		it.Offerings = append(it.Offerings, solver.Offering{Zone: z, CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price, Available: true})
	}
	return it
}

func fsPods(app string, n int, cpuMilli int64, f func(*solver.Pod)) []*solver.Pod {
	var out []*solver.Pod
	for i := 0; i < n; i++ {
		p := &solver.Pod{Namespace: "default", Name: fmt.Sprintf("%s-%d", app, i), Labels: map[string]string{"app": app},
			Owner: "ReplicaSet/default/" + app, Requests: solver.Resources{solver.ResourceCPU: cpuMilli, solver.ResourceMemory: gib / 4}}
		if f != nil {
			f(p)
		}
		out = append(out, p)
	}
	return out
}

func appIn(apps ...string) *solver.LabelSelector {
	return &solver.LabelSelector{MatchExpressions: []solver.LabelSelectorRequirement{{Key: "app", Operator: solver.OpIn, Values: apps}}}
}

func spreadOver(key string, maxSkew int32, sel *solver.LabelSelector) func(*solver.Pod) {
	return func(p *solver.Pod) {
		p.TopologySpread = []solver.TopologySpreadConstraint{{MaxSkew: maxSkew, TopologyKey: key,
			WhenUnsatisfiable: solver.DoNotSchedule, LabelSelector: sel}}
	}
}

func affineTo(key string, sel *solver.LabelSelector) func(*solver.Pod) {
	return func(p *solver.Pod) {
		p.PodAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: sel, TopologyKey: key}}
	}
}

// emptyNode is an existing on-demand node with room for cpuMilli.
func emptyNode(name, zone string, cpuMilli int64) solver.Node {
	return solver.Node{Name: name, Zone: zone, CapacityType: solver.CapacityTypeOnDemand, InstanceType: "c4", PricePerHour: 0.2,
		Labels: map[string]string{solver.LabelHostname: name, solver.LabelZone: zone, solver.LabelArch: "amd64", solver.LabelOS: "linux",
			solver.LabelCapacityType: solver.CapacityTypeOnDemand},
		Allocatable: solver.Resources{solver.ResourceCPU: cpuMilli, solver.ResourceMemory: 8 * gib, solver.ResourcePods: 110}}
}

// solveFinalState solves p, requires verify.Plan to accept the plan and
// returns it.
func solveFinalState(t *testing.T, p *solver.Problem) *solver.Plan {
	t.Helper()
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	if err := verify.Plan(p, plan); err != nil {
		enc, _ := json.MarshalIndent(plan, "", "  ")
		t.Fatalf("verify.Plan rejects the plan: %v\nplan: %s", err, enc)
	}
	return plan
}

// placedPods counts the pods a plan places.
func placedPods(plan *solver.Plan) int {
	n := 0
	for _, c := range plan.NodeClaims {
		n += len(c.Pods)
	}
	for _, refs := range plan.ExistingBindings {
		n += len(refs)
	}
	return n
}

// F1, hostname: d0 spreads over the pods of d1 (maxSkew 1), which carry
// no constraint. The solver used to put the d0 pods on two nodes, then
// both small d1 pods into the room left on the first: 2 against 0.
func TestSpreadOverAnotherDeploymentByHostname(t *testing.T) {
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1")},
		Pods: append(fsPods("d0", 2, 3000, spreadOver(solver.LabelHostname, 1, appIn("d1"))),
			fsPods("d1", 2, 500, nil)...),
	}
	plan := solveFinalState(t, p)
	if len(plan.Unschedulable) > 0 || placedPods(plan) != 4 {
		t.Fatalf("want all 4 pods placed, got unschedulable %+v", plan.Unschedulable)
	}
}

// F1, zone: d2 spreads by zone (maxSkew 1) over the pods of d0, not over
// itself. Zone z2 holds a full existing node, so it is a domain. The
// solver used to fill d2's claims in z1 with every d0 pod: 4 against 0.
func TestSpreadOverAnotherDeploymentByZone(t *testing.T) {
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1", "z2")},
		Nodes:         []solver.Node{emptyNode("old-z2", "z2", 100)},
		Pods: append(fsPods("d2", 2, 3000, spreadOver(solver.LabelZone, 1, appIn("d0"))),
			fsPods("d0", 4, 250, nil)...),
	}
	plan := solveFinalState(t, p)
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("want all pods placed, got unschedulable %+v", plan.Unschedulable)
	}
}

// F1 where no plan can place everything: with minDomains 3 and two zones
// the minimum is 0, so a zone holding a d2 pod takes at most 2 pods of
// d1 and d2 together. The plan stays valid; what does not fit is left
// unschedulable with a reason.
func TestSpreadOverAnotherDeploymentMinDomains(t *testing.T) {
	spread := func(p *solver.Pod) {
		spreadOver(solver.LabelZone, 2, appIn("d2", "d1"))(p)
		p.TopologySpread[0].MinDomains = 3
	}
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1", "z2")},
		Pods:          append(fsPods("d2", 2, 3000, spread), fsPods("d1", 8, 250, nil)...),
	}
	plan := solveFinalState(t, p)
	for _, u := range plan.Unschedulable {
		if u.Reason == "" {
			t.Fatalf("unschedulable pod %s without a reason", u.Pod)
		}
	}
}

// F2, hostname: d1 has required hostname affinity to app In [d1, d2]; d2
// carries none. The first d1 pod may go anywhere, but d2's pod must then
// join it: the solver used to open a second node for d2 (growing d1's
// node to c8 costs more than growing allows), leaving d1 with a selected
// pod elsewhere and none beside it. d2 now upgrades d1's claim.
func TestAffinityMatchingAnotherDeploymentByHostname(t *testing.T) {
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1"), fsType("c8", 8, 1.0, "z1")},
		Pods: append(fsPods("d1", 1, 3000, affineTo(solver.LabelHostname, appIn("d1", "d2"))),
			fsPods("d2", 1, 2000, nil)...),
	}
	plan := solveFinalState(t, p)
	if len(plan.Unschedulable) > 0 || len(plan.NodeClaims) != 1 {
		t.Fatalf("want both pods on one (upgraded) claim, got %d claims, unschedulable %+v", len(plan.NodeClaims), plan.Unschedulable)
	}
}

// F2, zone: the lone d1 pod opens a claim in z1; d2's pod fits the
// existing node in z2, which first fit tries first. It must go to z1.
func TestAffinityMatchingAnotherDeploymentByZone(t *testing.T) {
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1")},
		Nodes:         []solver.Node{emptyNode("old-z2", "z2", 2000)},
		Pods: append(fsPods("d1", 1, 3000, affineTo(solver.LabelZone, appIn("d1", "d2"))),
			fsPods("d2", 1, 1000, nil)...),
	}
	plan := solveFinalState(t, p)
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("want both pods placed, got unschedulable %+v", plan.Unschedulable)
	}
	if len(plan.ExistingBindings["old-z2"]) > 0 {
		t.Fatalf("d2 placed on old-z2 in z2, away from d1's zone")
	}
}

// A spread constraint counts pods only on nodes its owner's node affinity
// accepts. d1's pods open a claim that may launch as arm (not counted by
// d2's constraint) or amd64; placing a d2 pod there narrows it to amd64,
// and both d1 pods start counting at once, unchecked: 2 in z1 against 0
// on the amd64 node in z2. The solver now refuses that narrowing.
func TestSpreadCountsOnNarrowedClaim(t *testing.T) {
	arm := fsType("a4", 4, 0.2, "z1", "z2")
	arm.Labels[solver.LabelArch] = "arm64"
	amd := func(p *solver.Pod) {
		spreadOver(solver.LabelZone, 1, appIn("d1"))(p)
		p.RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
			{Key: solver.LabelArch, Operator: solver.OpIn, Values: []string{"amd64"}}}}}
	}
	p := &solver.Problem{
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: []solver.InstanceType{arm, fsType("x4", 4, 0.2, "z1", "z2")},
		Nodes:         []solver.Node{emptyNode("old-z2", "z2", 100)},
		Pods:          append(fsPods("d1", 2, 1000, nil), fsPods("d2", 1, 500, amd)...),
	}
	plan := solveFinalState(t, p)
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("want all pods placed, got unschedulable %+v", plan.Unschedulable)
	}
}

// Issue 17, the shape of KarpenterBenchmarkMix's unschedulable zonal-spread
// pods: spread selectors that match pods placed earlier, which carry no
// constraint of their own. The two web pods come first (largest) and,
// unconstrained, both went to z1. The db pods spread over web and over
// themselves, so they went to z2 and z3, leaving z1 the emptiest zone for
// app=db. The last db pod (spread over web only) may then only go to z2
// or z3 (web counts 2, 0, 0) and in both it would put 2 db pods against 0
// in z1, breaking the spread of the db pods already there: it was left
// unschedulable. Any plan that spreads web over two zones places it.
func TestSpreadSelectingPodsPlacedEarlier(t *testing.T) {
	spreadWebAndSelf := func(p *solver.Pod) {
		p.TopologySpread = []solver.TopologySpreadConstraint{
			{MaxSkew: 1, TopologyKey: solver.LabelZone, WhenUnsatisfiable: solver.DoNotSchedule, LabelSelector: appIn("web")},
			{MaxSkew: 1, TopologyKey: solver.LabelZone, WhenUnsatisfiable: solver.DoNotSchedule, LabelSelector: appIn("db")},
		}
	}
	last := fsPods("db", 1, 1000, spreadOver(solver.LabelZone, 1, appIn("web")))
	last[0].Name = "db-last"
	pods := append(fsPods("web", 2, 3000, nil), fsPods("db", 2, 2000, spreadWebAndSelf)...)
	pods = append(pods, last...)
	for _, rounds := range []int{0, 1, 8} {
		p := &solver.Problem{
			NodePools:     []solver.NodePool{{Name: "default"}},
			InstanceTypes: []solver.InstanceType{fsType("c4", 4, 0.2, "z1", "z2", "z3")},
			Pods:          pods,
			Options:       solver.Options{ImproveRounds: rounds},
		}
		plan := solveFinalState(t, p)
		if len(plan.Unschedulable) > 0 || placedPods(plan) != len(pods) {
			t.Fatalf("rounds %d: want all %d pods placed, got unschedulable %+v", rounds, len(pods), plan.Unschedulable)
		}
	}
}
