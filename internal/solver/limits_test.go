package solver

import (
	"strings"
	"testing"
)

// TestNodePoolNodesLimit states Karpenter's rule for limits.nodes: nodes
// is a resource limit, each node counts 1, and the NodePool's existing
// nodes (Usage) count against it, so at most limit-usage new NodeClaims are
// planned; pods beyond that go to another NodePool or stay unschedulable.
// Every pod here (7 CPUs) needs its own 8-CPU node.
func TestNodePoolNodesLimit(t *testing.T) {
	tests := []struct {
		name        string
		pools       []NodePool
		pods        int
		wantClaims  map[string]int
		wantUnsched int
		reason      string
	}{
		{"under the limit", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 10}}}, 5,
			map[string]int{"np": 5}, 0, ""},
		{"limit caps new nodes", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 3}}}, 5,
			map[string]int{"np": 3}, 2, "NodePool np limit nodes=3 reached"},
		{"existing nodes count", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 3}, Usage: Resources{ResourceNodes: 2}}}, 5,
			map[string]int{"np": 1}, 4, "NodePool np limit nodes=3 reached"},
		{"limit reached", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 3}, Usage: Resources{ResourceNodes: 3}}}, 2,
			map[string]int{}, 2, "NodePool np limit nodes=3 reached"},
		{"zero nodes", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 0}}}, 1,
			map[string]int{}, 1, "NodePool np limit nodes=0 reached"},
		{"next pool takes over", []NodePool{{Name: "capped", Weight: 10, Limits: Resources{ResourceNodes: 2}}, {Name: "spare"}}, 5,
			map[string]int{"capped": 2, "spare": 3}, 0, ""},
		{"with a cpu limit, the tighter one wins", []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 4, ResourceCPU: 16000}}}, 5,
			map[string]int{"np": 2}, 3, "NodePool np limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basicProblem(mkPods("p", tt.pods, 7000, nil)...)
			p.NodePools = tt.pools
			pl := mustSolve(t, p)
			got := map[string]int{}
			for _, nc := range pl.NodeClaims {
				got[nc.NodePool]++
			}
			if len(got) != len(tt.wantClaims) {
				t.Errorf("claims per pool %v, want %v", got, tt.wantClaims)
			}
			for pool, n := range tt.wantClaims {
				if got[pool] != n {
					t.Errorf("claims per pool %v, want %v", got, tt.wantClaims)
				}
			}
			if len(pl.Unschedulable) != tt.wantUnsched {
				t.Fatalf("%d unschedulable, want %d", len(pl.Unschedulable), tt.wantUnsched)
			}
			for _, u := range pl.Unschedulable {
				if !strings.Contains(u.Reason, tt.reason) {
					t.Errorf("reason %q, want it to contain %q", u.Reason, tt.reason)
				}
			}
		})
	}
}

// TestNodesLimitSmallPods: with limits.nodes 1 the pool plans one node
// however many small pods there are, as long as they fit on it: the claim
// opens on a type that holds them all, not on the cheapest per pod.
func TestNodesLimitSmallPods(t *testing.T) {
	p := basicProblem(mkPods("p", 12, 500, nil)...)
	p.NodePools = []NodePool{{Name: "np", Limits: Resources{ResourceNodes: 1}}}
	pl := mustSolve(t, p)
	if len(pl.NodeClaims) != 1 || len(pl.Unschedulable) != 0 {
		t.Fatalf("%d claims, %d unschedulable; want 1 and 0", len(pl.NodeClaims), len(pl.Unschedulable))
	}
	// 6 CPUs of pods: large (8) is the cheapest type holding them all.
	if got := pl.NodeClaims[0].InstanceType; got != "large" {
		t.Errorf("instance type %s, want large", got)
	}
}
