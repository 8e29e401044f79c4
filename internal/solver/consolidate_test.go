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
		cp, err := Consolidate(p)
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
		cp, err := Consolidate(p)
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
		cp, err := Consolidate(p)
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
		cp, err := Consolidate(p)
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
		cp, err := Consolidate(p)
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
		cp, err := Consolidate(p)
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
