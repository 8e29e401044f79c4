package verify

import (
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// consolidationFixture has three on-demand nodes in zone-a: n1 (4 CPUs,
// $0.20/h) with pod a (1 CPU) and a DaemonSet pod, n2 (4 CPUs, $0.20/h)
// with pod b (1 CPU), and n3 (2 CPUs, $0.10/h), empty but for a DaemonSet
// pod.
func consolidationFixture() *solver.Problem {
	node := func(name string, cpu int64, price float64, pods ...*solver.Pod) solver.Node {
		ds := pod("ds-"+name, 100, nil)
		ds.Namespace, ds.DaemonSet = "kube-system", true
		return solver.Node{
			Name: name, NodePool: "default",
			Labels: map[string]string{
				solver.LabelHostname: name, solver.LabelZone: "zone-a", solver.LabelArch: "amd64",
			},
			Allocatable: res(cpu, 8, 10),
			Pods:        append(pods, ds),
			Zone:        "zone-a", CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price,
		}
	}
	return &solver.Problem{
		InstanceTypes: instanceTypes(),
		NodePools:     []solver.NodePool{{Name: "default"}},
		DaemonSets:    []solver.DaemonSet{{Namespace: "kube-system", Name: "ds", Template: *pod("ds", 100, nil)}},
		Nodes: []solver.Node{
			node("n1", 4000, 0.20, pod("a", 1000, map[string]string{"app": "a"})),
			node("n2", 4000, 0.20, pod("b", 1000, map[string]string{"app": "b"})),
			node("n3", 2000, 0.10),
		},
	}
}

func TestConsolidation(t *testing.T) {
	deleteN1 := func() solver.ConsolidationAction {
		return solver.ConsolidationAction{Kind: "Delete", Nodes: []string{"n1"},
			Bindings: map[solver.PodRef]string{ref("a"): "n2"}, SavingsPerHour: 0.20, Reason: "empty enough"}
	}
	replace := func() solver.ConsolidationAction {
		c := claim("zone-a", "small", 0.10, []string{"small"}, "a", "b")
		return solver.ConsolidationAction{Kind: "Replace", Nodes: []string{"n1", "n2"}, Replacement: &c,
			Bindings: map[solver.PodRef]string{}, SavingsPerHour: 0.30, Reason: "cheaper"}
	}
	tests := []struct {
		name   string
		mutate func(p *solver.Problem, cp *solver.ConsolidationPlan)
		want   string
	}{
		{"valid delete", func(p *solver.Problem, cp *solver.ConsolidationPlan) {}, ""},
		{"valid replace", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 500
			cp.Actions = []solver.ConsolidationAction{replace()}
		}, ""},
		{"later action moves a pod to an earlier replacement", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 500
			p.Nodes[2].Pods = append(p.Nodes[2].Pods, pod("c", 200, nil))
			cp.Actions = []solver.ConsolidationAction{replace(), {Kind: "Delete", Nodes: []string{"n3"},
				Bindings: map[solver.PodRef]string{ref("c"): "replacement-for-n1"}, SavingsPerHour: 0.10}}
		}, ""},
		{"later move overflows the replacement", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 500
			p.Nodes[2].Pods = append(p.Nodes[2].Pods, pod("c", 500, nil))
			cp.Actions = []solver.ConsolidationAction{replace(), {Kind: "Delete", Nodes: []string{"n3"},
				Bindings: map[solver.PodRef]string{ref("c"): "replacement-for-n1"}, SavingsPerHour: 0.10}}
		}, CheckResources},
		{"pod both bound and in Replacement.Pods", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 500
			a := replace()
			a.Bindings[ref("a")] = "n3"
			cp.Actions = []solver.ConsolidationAction{a}
		}, CheckAction},
		{"pod missing from Replacement.Pods", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 500
			a := replace()
			a.Replacement.Pods = refs("a")
			cp.Actions = []solver.ConsolidationAction{a}
		}, CheckAction},
		{"delete empty node", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions = []solver.ConsolidationAction{{Kind: "Delete", Nodes: []string{"n3"}, SavingsPerHour: 0.10}}
		}, ""},
		{"two actions in sequence", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions = append(cp.Actions, solver.ConsolidationAction{Kind: "Delete", Nodes: []string{"n3"}, SavingsPerHour: 0.10})
		}, ""},
		{"node annotated do-not-disrupt", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Annotations = map[string]string{solver.AnnotationDoNotDisrupt: "true"}
		}, CheckDisruption},
		{"pod annotated do-not-disrupt", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Annotations = map[string]string{solver.AnnotationDoNotDisrupt: "true"}
		}, CheckDisruption},
		{"pod left behind", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions[0].Bindings = nil
		}, CheckAction},
		{"pod moved to a removed node", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions[0].Bindings[ref("a")] = "n1"
		}, CheckAction},
		{"pod moved to a cordoned node", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[1].Unschedulable = true
		}, CheckAction},
		{"node removed twice", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions = append(cp.Actions, deleteN1())
		}, CheckAction},
		{"unknown node", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions[0].Nodes = []string{"n1", "n9"}
		}, CheckAction},
		{"wrong savings", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Actions[0].SavingsPerHour = 0.5
		}, CheckAction},
		{"moved pod overflows", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 3000
		}, CheckResources},
		{"moved pod overflows the replacement with its DaemonSet", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].Requests[solver.ResourceCPU] = 950
			cp.Actions = []solver.ConsolidationAction{replace()}
		}, CheckResources},
		{"moved pod's node selector", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].NodeSelector = map[string]string{solver.LabelHostname: "n1"}
		}, CheckNodeSelector},
		{"moved pod's taints", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[1].Taints = []solver.Taint{{Key: "k", Effect: solver.EffectNoSchedule}}
		}, CheckTaints},
		{"moved pod's anti-affinity", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[0].Pods[0].PodAntiAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelHostname,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}}
		}, CheckAntiAffinity},
		{"replacement not cheapest", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			a := replace()
			a.Replacement.InstanceTypeOptions = []string{"small", "large"}
			a.Replacement.InstanceType, a.Replacement.PricePerHour, a.SavingsPerHour = "large", 0.40, 0
			cp.Actions = []solver.ConsolidationAction{a}
		}, CheckPrice},
		{"PDB allows the eviction", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{{Namespace: "default", Name: "a", DisruptionsAllowed: 1,
				Selector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}
		}, ""},
		{"PDB allows no eviction", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{{Namespace: "default", Name: "a",
				Selector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}
		}, CheckDisruption},
		{"PDB in another namespace", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{{Namespace: "other", Name: "a", Selector: &solver.LabelSelector{}}}
		}, ""},
		{"PDB exceeded across actions", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.Nodes[2].Pods = append(p.Nodes[2].Pods, pod("c", 200, map[string]string{"app": "a"}))
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{{Namespace: "default", Name: "a", DisruptionsAllowed: 1,
				Selector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}
			cp.Actions = append(cp.Actions, solver.ConsolidationAction{Kind: "Delete", Nodes: []string{"n3"},
				Bindings: map[solver.PodRef]string{ref("c"): "n2"}, SavingsPerHour: 0.10})
		}, CheckDisruption},
		{"pod selected by two PDBs", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{
				{Namespace: "default", Name: "x", DisruptionsAllowed: 5, Selector: &solver.LabelSelector{}},
				{Namespace: "default", Name: "y", DisruptionsAllowed: 5, Selector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "a"}}}}
		}, CheckDisruption},
		{"DaemonSet pods are not evictions", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.PodDisruptionBudgets = []solver.PodDisruptionBudget{{Namespace: "kube-system", Name: "ds", Selector: &solver.LabelSelector{}}}
		}, ""},
		{"NodePool allowance kept", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.DisruptionAllowance = map[string]int{"default": 2}
			cp.Actions = append(cp.Actions, solver.ConsolidationAction{Kind: "Delete", Nodes: []string{"n3"}, SavingsPerHour: 0.10})
		}, ""},
		{"NodePool allowance exceeded", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.DisruptionAllowance = map[string]int{"default": 1}
			cp.Actions = append(cp.Actions, solver.ConsolidationAction{Kind: "Delete", Nodes: []string{"n3"}, SavingsPerHour: 0.10})
		}, CheckDisruption},
		{"other NodePool's allowance", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			p.DisruptionAllowance = map[string]int{"other": 0}
		}, ""},
		{"blocked without reason", func(p *solver.Problem, cp *solver.ConsolidationPlan) {
			cp.Blocked = []solver.BlockedCandidate{{Node: "n3"}}
		}, CheckAction},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := consolidationFixture()
			cp := &solver.ConsolidationPlan{Actions: []solver.ConsolidationAction{deleteN1()}}
			tc.mutate(p, cp)
			err := Consolidation(p, cp)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid plan rejected:\n%v", err)
				}
				return
			}
			if !HasCheck(err, tc.want) {
				t.Fatalf("want a %q violation, got: %v", tc.want, err)
			}
			t.Logf("%v", err)
		})
	}
}
