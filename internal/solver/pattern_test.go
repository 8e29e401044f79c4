package solver

import (
	"fmt"
	"testing"
	"time"
)

// The classic case first fit decreasing gets wrong: on 10-cpu nodes, two
// 4-cpu and four 3-cpu pods fit on two nodes as 4+3+3 each, while first
// fit puts 4+4 together and needs three. The pattern strategy finds two.
func TestPatternStrategyBeatsFirstFit(t *testing.T) {
	pods := append(mkPods("four", 2, 4000, nil), mkPods("three", 4, 3000, nil)...)
	p := &Problem{Pods: pods, NodePools: []NodePool{{Name: "default"}},
		InstanceTypes: []InstanceType{itype("ten", 10, 64, 1)}}
	p.Options.ImproveRounds = 1
	first := mustSolve(t, p)

	base := prepared(t, p)
	base.fillCaches()
	a, ok := runPattern(nil, p, base, time.Now().Add(10*time.Second))
	if !ok {
		t.Fatal("a resource-only batch does not suit the pattern strategy")
	}
	if a.unsched != 0 || a.cost != 2 {
		t.Fatalf("pattern plan: %d unschedulable, $%v/h; want 0 and $2/h", a.unsched, a.cost)
	}
	plan := a.s.plan()
	checkPlan(t, p, plan)
	if len(plan.NodeClaims) != 2 {
		t.Fatalf("pattern plan has %d NodeClaims, want 2", len(plan.NodeClaims))
	}

	p.Options = Options{ImproveBudget: PatternMinBudget}
	withBudget := mustSolve(t, p)
	if withBudget.CostPerHour > 2 || withBudget.CostPerHour > first.CostPerHour {
		t.Fatalf("with a %v budget the plan costs $%v/h (first strategy only: $%v/h), want at most $2/h",
			PatternMinBudget, withBudget.CostPerHour, first.CostPerHour)
	}
	if b := withBudget.LowerBoundPerHour; b < 2-1e-9 || b > withBudget.CostPerHour+1e-9 {
		t.Fatalf("lower bound $%v/h; the pattern LP proves $2/h", b)
	}
}

// The pattern LP's bound is tighter where pods cannot share nodes: three
// 6-cpu pods need three 10-cpu nodes, which the LP knows and a resource
// bound (1.8 nodes) does not.
func TestPatternBoundCountsWholePods(t *testing.T) {
	p := &Problem{Pods: mkPods("six", 3, 6000, nil), NodePools: []NodePool{{Name: "default"}},
		InstanceTypes: []InstanceType{itype("ten", 10, 64, 1)}}
	p.Options.ImproveBudget = PatternMinBudget
	pl := mustSolve(t, p)
	if pl.CostPerHour != 3 || pl.LowerBoundPerHour < 3-1e-9 || pl.LowerBoundPerHour > 3+1e-9 {
		t.Fatalf("plan $%v/h, bound $%v/h; want both $3/h", pl.CostPerHour, pl.LowerBoundPerHour)
	}
	// With a second NodePool the LP's types are not all a plan may use,
	// so its bound is left out.
	p.NodePools = append(p.NodePools, NodePool{Name: "other", Weight: -1})
	if b := mustSolve(t, p).LowerBoundPerHour; b > 3+1e-9 {
		t.Fatalf("bound $%v/h above the plan", b)
	}
}

// Pods with placement rules, existing nodes or NodePool taints nobody
// tolerates leave the strategy out.
func TestPatternStrategyEligibility(t *testing.T) {
	cases := map[string]func(p *Problem){
		"node selector": func(p *Problem) { p.Pods[0].NodeSelector = map[string]string{LabelArch: "amd64"} },
		"anti-affinity": func(p *Problem) {
			p.Pods[0].Labels = map[string]string{"app": "a"}
			p.Pods[0].PodAntiAffinity = PodAffinity{Required: []PodAffinityTerm{{
				LabelSelector: &LabelSelector{MatchLabels: map[string]string{"app": "a"}}, TopologyKey: LabelHostname}}}
		},
		"host port":     func(p *Problem) { p.Pods[0].HostPorts = []HostPort{{Port: 80, Protocol: "TCP"}} },
		"existing node": func(p *Problem) { p.Nodes = []Node{{Name: "n1", Allocatable: res(4000, 8)}} },
		"too many classes": func(p *Problem) {
			for i := range patternMaxClasses {
				p.Pods = append(p.Pods, mkPod(fmt.Sprintf("size-%d", i), int64(10+i)))
			}
		},
		"taint": func(p *Problem) {
			p.NodePools[0].Taints = []Taint{{Key: "dedicated", Value: "x", Effect: "NoSchedule"}}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			p := basicProblem(mkPods("web", 3, 1000, nil)...)
			change(p)
			if err := validateProblem(nil, p); err != nil {
				t.Fatal(err)
			}
			base := prepared(t, p)
			base.fillCaches()
			if _, ok := runPattern(nil, p, base, time.Now().Add(time.Second)); ok {
				t.Fatal("the pattern strategy ran")
			}
		})
	}
	p := basicProblem(mkPods("web", 3, 1000, nil)...)
	base := prepared(t, p)
	base.fillCaches()
	if _, ok := runPattern(nil, p, base, time.Now().Add(time.Second)); !ok {
		t.Fatal("the plain problem does not suit the strategy")
	}
}
