package solver

import (
	"testing"
)

func sel(k, v string) *LabelSelector { return &LabelSelector{MatchLabels: map[string]string{k: v}} }

func zoneNode(name, zone string, pods ...*Pod) Node {
	return Node{Name: name, NodePool: "default", Labels: map[string]string{LabelZone: zone, LabelHostname: name},
		Allocatable: Resources{ResourceCPU: 4000, ResourceMemory: 16 * gi, ResourcePods: 20}, Pods: pods}
}

// zonesOf counts placed pods per zone and per node.
func zonesOf(p *Problem, pl *Plan) (zones, nodes map[string]int) {
	pm := placements(p, pl)
	zones, nodes = map[string]int{}, map[string]int{}
	for _, pod := range p.Pods {
		if n, ok := pm.node[pod.Ref()]; ok {
			zones[pm.labels[n][LabelZone]]++
			nodes[n]++
		}
	}
	return
}

func TestPodAntiAffinity(t *testing.T) {
	anti := func(key string) []PodAffinityTerm {
		return []PodAffinityTerm{{TopologyKey: key, LabelSelector: sel("app", "web")}}
	}
	t.Run("hostname", func(t *testing.T) {
		pods := mkPods("w", 3, 100, map[string]string{"app": "web"})
		for _, p := range pods {
			p.PodAntiAffinity.Required = anti(LabelHostname)
		}
		p := basicProblem(pods...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.NodeClaims) != 3 {
			t.Fatalf("claims %d", len(pl.NodeClaims))
		}
	})
	t.Run("zone: one per zone, rest unschedulable", func(t *testing.T) {
		pods := mkPods("w", 3, 100, map[string]string{"app": "web"})
		for _, p := range pods {
			p.PodAntiAffinity.Required = anti(LabelZone)
		}
		p := basicProblem(pods...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.NodeClaims) != 2 || len(pl.Unschedulable) != 1 {
			t.Fatalf("claims %d unschedulable %d", len(pl.NodeClaims), len(pl.Unschedulable))
		}
	})
	t.Run("symmetric: existing pod's anti-affinity repels", func(t *testing.T) {
		old := mkPod("old", 100)
		old.Labels = map[string]string{"app": "db"}
		old.PodAntiAffinity.Required = anti(LabelZone)
		p := basicProblem(mkPods("w", 1, 100, map[string]string{"app": "web"})...)
		p.Nodes = []Node{zoneNode("n1", "z1", old)}
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.ExistingBindings) != 0 || pl.NodeClaims[0].Zone != "z2" {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("namespaceSelector", func(t *testing.T) {
		other := &Pod{Namespace: "team-a", Name: "x", Labels: map[string]string{"app": "web"}, Requests: res(100, 0)}
		pod := mkPod("p", 100)
		pod.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "web"),
			NamespaceSelector: sel("team", "a")}}
		p := basicProblem(pod)
		p.Namespaces = map[string]map[string]string{"team-a": {"team": "a"}}
		p.Nodes = []Node{zoneNode("n1", "z1", other)}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings) != 0 {
			t.Fatalf("namespaceSelector ignored")
		}
		// Without the namespace selector the term looks in its own namespace only.
		pod.PodAntiAffinity.Required[0].NamespaceSelector = nil
		pl = mustSolve(t, p)
		if len(pl.ExistingBindings) != 1 {
			t.Fatalf("term matched another namespace")
		}
	})
	t.Run("matchLabelKeys", func(t *testing.T) {
		var pods []*Pod
		for i, v := range []string{"v1", "v2", "v1"} {
			pod := mkPod("p"+string(rune('a'+i)), 100)
			pod.Labels = map[string]string{"app": "web", "version": v}
			pod.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "web"), MatchLabelKeys: []string{"version"}}}
			pods = append(pods, pod)
		}
		p := basicProblem(pods...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.NodeClaims) != 2 {
			t.Fatalf("claims %d, want 2 (v1 pods apart, v2 shares)", len(pl.NodeClaims))
		}
	})
	t.Run("preferred anti-affinity relaxed", func(t *testing.T) {
		pods := mkPods("w", 3, 100, map[string]string{"app": "web"})
		for _, p := range pods {
			p.PodAntiAffinity.Preferred = []WeightedPodAffinityTerm{{Weight: 10, Term: anti(LabelZone)[0]}}
		}
		p := basicProblem(pods...)
		pl := mustSolve(t, p)
		zones, _ := zonesOf(p, pl)
		if len(pl.Unschedulable) != 0 || zones["z1"] == 0 || zones["z2"] == 0 {
			t.Fatalf("zones %v unschedulable %v", zones, pl.Unschedulable)
		}
	})
}

func TestPodAffinity(t *testing.T) {
	t.Run("hostname: follow existing pod", func(t *testing.T) {
		db := mkPod("db", 100)
		db.Labels = map[string]string{"app": "db"}
		pod := mkPod("p", 100)
		pod.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "db")}}
		p := basicProblem(pod)
		p.Nodes = []Node{zoneNode("n0", "z1"), zoneNode("n1", "z1", db)}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings["n1"]) != 1 {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("zone: new claim in the target's zone", func(t *testing.T) {
		db := mkPod("db", 100)
		db.Labels = map[string]string{"app": "db"}
		pod := mkPod("p", 3000)
		pod.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelZone, LabelSelector: sel("app", "db")}}
		p := basicProblem(pod)
		n := zoneNode("n1", "z2", db)
		n.Allocatable[ResourceCPU] = 1000
		p.Nodes = []Node{n}
		pl := mustSolve(t, p)
		if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Zone != "z2" {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("no target and not self-matching: unschedulable", func(t *testing.T) {
		pod := mkPod("p", 100)
		pod.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelZone, LabelSelector: sel("app", "db")}}
		pl := mustSolve(t, basicProblem(pod))
		if len(pl.Unschedulable) != 1 {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("self-matching: first pod anchors, rest follow", func(t *testing.T) {
		pods := mkPods("w", 6, 1500, map[string]string{"app": "web"})
		for _, p := range pods {
			p.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelZone, LabelSelector: sel("app", "web")}}
		}
		p := basicProblem(pods...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		zones, _ := zonesOf(p, pl)
		if len(zones) != 1 || len(pl.Unschedulable) != 0 {
			t.Fatalf("zones %v", zones)
		}
	})
	t.Run("target pending later in order", func(t *testing.T) {
		db := mkPod("db", 100)
		db.Labels = map[string]string{"app": "db"}
		pod := mkPod("big", 2000)
		pod.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "db")}}
		p := basicProblem(pod, db)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.Unschedulable) != 0 || len(pl.NodeClaims) != 1 {
			t.Fatalf("got %+v %v", pl.NodeClaims, pl.Unschedulable)
		}
	})
}

func TestTopologySpread(t *testing.T) {
	spread := func(key string, skew int32) TopologySpreadConstraint {
		return TopologySpreadConstraint{MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: DoNotSchedule, LabelSelector: sel("app", "web")}
	}
	mk := func(n int, c TopologySpreadConstraint) []*Pod {
		pods := mkPods("w", n, 100, map[string]string{"app": "web"})
		for _, p := range pods {
			p.TopologySpread = []TopologySpreadConstraint{c}
		}
		return pods
	}
	t.Run("zone", func(t *testing.T) {
		p := basicProblem(mk(4, spread(LabelZone, 1))...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		zones, _ := zonesOf(p, pl)
		if zones["z1"] != 2 || zones["z2"] != 2 {
			t.Fatalf("zones %v", zones)
		}
	})
	t.Run("zone counts existing pods", func(t *testing.T) {
		old := mkPods("old", 2, 100, map[string]string{"app": "web"})
		p := basicProblem(mk(2, spread(LabelZone, 1))...)
		p.Nodes = []Node{zoneNode("n1", "z1", old...)}
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		zones, _ := zonesOf(p, pl)
		if zones["z2"] != 2 {
			t.Fatalf("zones %v", zones)
		}
	})
	t.Run("hostname", func(t *testing.T) {
		p := basicProblem(mk(3, spread(LabelHostname, 1))...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.NodeClaims) != 3 {
			t.Fatalf("claims %d", len(pl.NodeClaims))
		}
	})
	t.Run("hostname maxSkew 2", func(t *testing.T) {
		p := basicProblem(mk(4, spread(LabelHostname, 2))...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.NodeClaims) != 2 {
			t.Fatalf("claims %d", len(pl.NodeClaims))
		}
	})
	t.Run("minDomains above available zones caps each zone", func(t *testing.T) {
		c := spread(LabelZone, 1)
		c.MinDomains = 3
		p := basicProblem(mk(4, c)...)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.Unschedulable) != 2 {
			t.Fatalf("unschedulable %d, want 2", len(pl.Unschedulable))
		}
	})
	t.Run("ScheduleAnyway is relaxed", func(t *testing.T) {
		c := spread(LabelZone, 1)
		c.WhenUnsatisfiable = ScheduleAnyway
		pods := mk(4, c)
		for _, p := range pods {
			p.NodeSelector = map[string]string{LabelZone: "z1"}
		}
		p := basicProblem(pods...)
		p.Nodes = []Node{zoneNode("n2", "z2")}
		p.Nodes[0].Taints = []Taint{{Key: "k", Effect: EffectNoSchedule}}
		pl := mustSolve(t, p)
		if len(pl.Unschedulable) != 0 {
			t.Fatalf("unschedulable %v", pl.Unschedulable)
		}
	})
	// Only z1 can get new nodes; a tainted, empty node sits in z2.
	policyProblem := func(c TopologySpreadConstraint, selector map[string]string) *Problem {
		pods := mk(3, c)
		for _, p := range pods {
			p.NodeSelector = selector
		}
		p := basicProblem(pods...)
		p.InstanceTypes = []InstanceType{itype("small", 2, 4, 0.1, "z1")}
		n := zoneNode("n2", "z2")
		n.Taints = []Taint{{Key: "k", Effect: EffectNoSchedule}}
		p.Nodes = []Node{n}
		return p
	}
	t.Run("nodeTaintsPolicy Ignore counts the tainted node", func(t *testing.T) {
		p := policyProblem(spread(LabelZone, 1), nil)
		pl := mustSolve(t, p)
		checkTopology(t, p, pl)
		if len(pl.Unschedulable) != 2 {
			t.Fatalf("unschedulable %d, want 2", len(pl.Unschedulable))
		}
	})
	t.Run("nodeTaintsPolicy Honor skips the tainted node", func(t *testing.T) {
		c := spread(LabelZone, 1)
		c.NodeTaintsPolicy = PolicyHonor
		pl := mustSolve(t, policyProblem(c, nil))
		if len(pl.Unschedulable) != 0 {
			t.Fatalf("unschedulable %v", pl.Unschedulable)
		}
	})
	t.Run("nodeAffinityPolicy Honor skips nodes the pod cannot use", func(t *testing.T) {
		pl := mustSolve(t, policyProblem(spread(LabelZone, 1), map[string]string{LabelZone: "z1"}))
		if len(pl.Unschedulable) != 0 {
			t.Fatalf("unschedulable %v", pl.Unschedulable)
		}
	})
	t.Run("nodeAffinityPolicy Ignore counts them", func(t *testing.T) {
		c := spread(LabelZone, 1)
		c.NodeAffinityPolicy = PolicyIgnore
		pl := mustSolve(t, policyProblem(c, map[string]string{LabelZone: "z1"}))
		if len(pl.Unschedulable) != 2 {
			t.Fatalf("unschedulable %d, want 2", len(pl.Unschedulable))
		}
	})
}
