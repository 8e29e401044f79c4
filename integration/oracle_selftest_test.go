package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// TestSchedulerOracleRejectsBadPlacements makes sure the oracle can fail:
// each case places two pods that break one filter, and the plugin named
// must reject one of them in the final state and in every binding order,
// while the same pods on two nodes pass.
func TestSchedulerOracleRejectsBadPlacements(t *testing.T) {
	o, err := newSchedOracle(oracleNamespaces)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	antiWeb := solver.PodAffinity{Required: []solver.PodAffinityTerm{{TopologyKey: solver.LabelHostname,
		LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}}
	cases := []struct {
		name, plugin string
		mod          func(*solver.Pod)
		taints       []solver.Taint
	}{
		{name: "resources", plugin: "NodeResourcesFit", mod: func(p *solver.Pod) { p.Requests[solver.ResourceCPU] = 1200 }},
		{name: "host ports", plugin: "NodePorts", mod: func(p *solver.Pod) { p.HostPorts = []solver.HostPort{{Port: 80, Protocol: "TCP"}} }},
		{name: "anti-affinity", plugin: "InterPodAffinity", mod: func(p *solver.Pod) { p.PodAntiAffinity = antiWeb }},
		{name: "node selector", plugin: "NodeAffinity", mod: func(p *solver.Pod) { p.NodeSelector = map[string]string{"example.com/missing": "x"} }},
		{name: "taint", plugin: "TaintToleration", mod: func(*solver.Pod) {}, taints: []solver.Taint{{Key: "k", Value: "v", Effect: solver.EffectNoSchedule}}},
		{name: "spread", plugin: "PodTopologySpread", mod: func(p *solver.Pod) {
			p.TopologySpread = []solver.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: solver.LabelHostname, WhenUnsatisfiable: solver.DoNotSchedule,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alloc := solver.Resources{solver.ResourceCPU: 2000, solver.ResourceMemory: 4 * gib, solver.ResourcePods: 10}
			cl := &oracleCluster{}
			for _, name := range []string{"n-0", "n-1"} {
				labels := map[string]string{solver.LabelHostname: name}
				cl.nodes = append(cl.nodes, oracleNode(name, labels, tc.taints, alloc, false))
			}
			for i, name := range []string{"web-0", "web-1"} {
				p := &solver.Pod{Namespace: "default", Name: name, Labels: map[string]string{"app": "web"},
					Requests: solver.Resources{solver.ResourceCPU: 100, solver.ResourceMemory: gib}}
				tc.mod(p)
				cl.todo = append(cl.todo, placement{pod: oraclePod(p, nil), node: []string{"n-0", "n-0"}[i]})
			}
			final, order := o.checkFinal(ctx, cl), o.checkOrder(ctx, cl)
			for _, got := range [][]oracleFailure{final, order} {
				if len(got) == 0 || !strings.HasSuffix(got[0].rej.Plugin, "/"+tc.plugin) {
					t.Fatalf("want a rejection by %s, got %+v", tc.plugin, got)
				}
			}
			if tc.name == "node selector" || tc.name == "taint" {
				return // no node is right for these pods
			}
			cl.todo[1].node = "n-1"
			if bad := append(o.checkFinal(ctx, cl), o.checkOrder(ctx, cl)...); len(bad) > 0 {
				t.Fatalf("pods on two nodes rejected: %s", bad[0].rej)
			}
		})
	}
}
