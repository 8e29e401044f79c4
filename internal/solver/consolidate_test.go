package solver

import (
	"strings"
	"testing"
)

func cnode(name string, cpu int64, price float64, pods ...*Pod) Node {
	return Node{Name: name, NodePool: "default", Labels: map[string]string{LabelZone: "z1"},
		Allocatable: Resources{ResourceCPU: cpu, ResourcePods: 110}, Pods: pods, PricePerHour: price,
		InstanceType: "large", Zone: "z1", CapacityType: CapacityTypeOnDemand}
}

func dsPod(name string) *Pod {
	p := mkPod(name, 100)
	p.Namespace = "kube-system"
	p.DaemonSet = true
	return p
}

func TestConsolidate(t *testing.T) {
	t.Run("empty node deleted", func(t *testing.T) {
		p := basicProblem()
		p.Nodes = []Node{cnode("n1", 8000, 0.4, dsPod("ds-1")), cnode("n2", 8000, 0.4, dsPod("ds-2"), mkPod("a", 1000))}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) < 1 || cp.Actions[0].Kind != "Delete" || cp.Actions[0].Nodes[0] != "n1" {
			t.Fatalf("got %+v", cp)
		}
	})
	t.Run("fits elsewhere: delete with bindings", func(t *testing.T) {
		p := basicProblem()
		p.Nodes = []Node{cnode("n1", 8000, 0.4, mkPod("a", 1000)), cnode("n2", 8000, 0.4, mkPod("b", 6000))}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) != 1 || cp.Actions[0].Kind != "Delete" || cp.Actions[0].Bindings[PodRef{"default", "a"}] != "n2" {
			t.Fatalf("got %+v", cp)
		}
		if len(cp.Blocked) != 1 || cp.Blocked[0].Node != "n2" || !strings.HasPrefix(cp.Blocked[0].Reason, "pods do not fit elsewhere: default/b") {
			t.Fatalf("blocked %+v", cp.Blocked)
		}
	})
	t.Run("do-not-disrupt blocks", func(t *testing.T) {
		p := basicProblem()
		pod := mkPod("x", 100)
		pod.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
		n2 := cnode("n2", 8000, 0.4, mkPod("y", 100))
		n2.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
		p.Nodes = []Node{cnode("n1", 8000, 0.4, pod), n2, {Name: "unmanaged", Allocatable: Resources{ResourceCPU: 8000, ResourcePods: 10}}}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) != 0 || len(cp.Blocked) != 2 || cp.Blocked[0].Reason != "pod default/x has karpenter.sh/do-not-disrupt" {
			t.Fatalf("got %+v", cp)
		}
	})
	t.Run("replace with cheaper", func(t *testing.T) {
		p := basicProblem()
		p.Nodes = []Node{cnode("n1", 8000, 0.4, mkPod("a", 1000))}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) != 1 || cp.Actions[0].Kind != "Replace" || cp.Actions[0].Replacement.InstanceType != "small" ||
			cp.Actions[0].SavingsPerHour < 0.29 {
			t.Fatalf("got %+v", cp)
		}
	})
	t.Run("respects anti-affinity when moving", func(t *testing.T) {
		a, b := mkPod("a", 100), mkPod("b", 100)
		for _, pod := range []*Pod{a, b} {
			pod.Labels = map[string]string{"app": "web"}
			pod.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "web")}}
		}
		p := basicProblem()
		p.InstanceTypes = []InstanceType{itype("large", 8, 16, 0.4)}
		p.Nodes = []Node{cnode("n1", 8000, 0.4, a), cnode("n2", 8000, 0.4, b)}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) != 0 || len(cp.Blocked) != 2 {
			t.Fatalf("got %+v", cp)
		}
	})
	t.Run("two nodes onto one cheaper replacement", func(t *testing.T) {
		p := basicProblem()
		p.InstanceTypes = []InstanceType{itype("medium", 4, 8, 0.2), itype("large", 8, 16, 0.35)}
		p.Nodes = []Node{cnode("n1", 4000, 0.4, mkPod("a", 2500)), cnode("n2", 4000, 0.4, mkPod("b", 2500))}
		cp, err := Consolidate(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cp.Actions) != 1 || cp.Actions[0].Kind != "Replace" || len(cp.Actions[0].Nodes) != 2 ||
			cp.Actions[0].Replacement.InstanceType != "large" || len(cp.Actions[0].Replacement.Pods) != 2 {
			t.Fatalf("got %+v", cp)
		}
		if d := cp.SavingsPerHour - 0.45; d > 1e-9 || d < -1e-9 || cp.CurrentCostPerHour != 0.8 || cp.NewCostPerHour-0.35 > 1e-9 {
			t.Fatalf("savings %v, current %v, new %v", cp.SavingsPerHour, cp.CurrentCostPerHour, cp.NewCostPerHour)
		}
	})
}

func TestConsolidateDisruptionLimits(t *testing.T) {
	web := func(name string) *Pod {
		p := mkPod(name, 1000)
		p.Labels = map[string]string{"app": "web"}
		return p
	}
	pdb := func(name string, allowed int, s *LabelSelector) PodDisruptionBudget {
		return PodDisruptionBudget{Namespace: "default", Name: name, Selector: s, DisruptionsAllowed: allowed}
	}
	tests := []struct {
		name        string
		pdbs        []PodDisruptionBudget
		allowance   map[string]int
		empty       bool // add an empty node n0
		wantRemoved int  // nodes removed by all actions
		wantKind    string
		wantReason  string // in some blocked reason
		wantErr     bool
	}{
		{name: "no limits", wantRemoved: 3},
		{name: "PDB allows one eviction", pdbs: []PodDisruptionBudget{pdb("web", 1, sel("app", "web"))},
			wantRemoved: 1, wantKind: BlockedPDB, wantReason: "PodDisruptionBudget default/web allows 0 more disruption(s) (1 in all)"},
		{name: "PDB allows none", pdbs: []PodDisruptionBudget{pdb("web", 0, sel("app", "web"))},
			wantRemoved: 0, wantKind: BlockedPDB, wantReason: "PodDisruptionBudget default/web allows 0"},
		{name: "PDB of another app", pdbs: []PodDisruptionBudget{pdb("db", 0, sel("app", "db"))}, wantRemoved: 3},
		{name: "PDB of another namespace", pdbs: []PodDisruptionBudget{{Namespace: "other", Name: "all", Selector: &LabelSelector{}}}, wantRemoved: 3},
		{name: "pod under two PDBs", pdbs: []PodDisruptionBudget{pdb("web", 9, sel("app", "web")), pdb("all", 9, &LabelSelector{})},
			wantRemoved: 0, wantKind: BlockedPDB, wantReason: "covered by 2 PodDisruptionBudgets (default/web, default/all)"},
		{name: "NodePool allowance of one", allowance: map[string]int{"default": 1},
			wantRemoved: 1, wantKind: BlockedBudget, wantReason: "NodePool default disruption budget allows no more node removals now (1 allowed"},
		{name: "allowance of zero blocks empty nodes too", allowance: map[string]int{"default": 0}, empty: true,
			wantRemoved: 0, wantKind: BlockedBudget, wantReason: "(0 allowed"},
		{name: "empty node takes the allowance first", allowance: map[string]int{"default": 1}, empty: true,
			wantRemoved: 1, wantKind: BlockedBudget},
		{name: "another NodePool's allowance", allowance: map[string]int{"gpu": 0}, wantRemoved: 3},
		{name: "negative PDB", pdbs: []PodDisruptionBudget{pdb("web", -1, sel("app", "web"))}, wantErr: true},
		{name: "negative allowance", allowance: map[string]int{"default": -1}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := basicProblem()
			p.Nodes = []Node{cnode("n1", 8000, 0.4, web("a")), cnode("n2", 8000, 0.4, web("b")), cnode("n3", 8000, 0.4, web("c"))}
			if tc.empty {
				p.Nodes = append([]Node{cnode("n0", 8000, 0.4, dsPod("ds-0"))}, p.Nodes...)
			}
			p.PodDisruptionBudgets, p.DisruptionAllowance = tc.pdbs, tc.allowance
			cp, err := Consolidate(t.Context(), p)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			removed := 0
			for _, a := range cp.Actions {
				removed += len(a.Nodes)
			}
			if removed != tc.wantRemoved || removed+len(cp.Blocked) != len(p.Nodes) {
				t.Fatalf("removed %d nodes, blocked %d; want %d removed\n%+v", removed, len(cp.Blocked), tc.wantRemoved, cp)
			}
			if tc.wantKind == "" {
				return
			}
			found := false
			for _, b := range cp.Blocked {
				found = found || (b.Kind == tc.wantKind && strings.Contains(b.Reason, tc.wantReason))
			}
			if !found {
				t.Fatalf("no blocked node of kind %s with %q: %+v", tc.wantKind, tc.wantReason, cp.Blocked)
			}
		})
	}
}
