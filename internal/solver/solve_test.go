package solver

import (
	"errors"
	"strings"
	"testing"
)

// labelledCatalog gives every type a family and a cpu label.
func labelledCatalog() []InstanceType {
	its := smallCatalog()
	fam := []string{"a", "b", "c"}
	cpus := []string{"2", "4", "8"}
	for i := range its {
		its[i].Labels["family"] = fam[i]
		its[i].Labels["cpu"] = cpus[i]
	}
	return its
}

func TestNodeSelectorAndOperators(t *testing.T) {
	req := func(op Operator, values ...string) []NodeSelectorTerm {
		return []NodeSelectorTerm{{Requirements: []Requirement{{Key: "cpu", Operator: op, Values: values}}}}
	}
	tests := []struct {
		name     string
		selector map[string]string
		affinity []NodeSelectorTerm
		want     string // launched type, "" for unschedulable
	}{
		{"no constraint picks cheapest", nil, nil, "small"},
		{"nodeSelector family", map[string]string{"family": "b"}, nil, "medium"},
		{"nodeSelector unknown label", map[string]string{"nope": "x"}, nil, ""},
		{"In", nil, req(OpIn, "8"), "large"},
		{"NotIn", nil, req(OpNotIn, "2"), "medium"},
		{"Exists", nil, req(OpExists), "small"},
		{"DoesNotExist", nil, req(OpDoesNotExist), ""},
		{"Gt", nil, req(OpGt, "4"), "large"},
		{"Lt", nil, req(OpLt, "4"), "small"},
		{"terms are ORed", nil, append(req(OpIn, "8"), req(OpIn, "4")...), "medium"},
		{"requirements are ANDed", nil, []NodeSelectorTerm{{Requirements: []Requirement{
			{Key: "cpu", Operator: OpGt, Values: []string{"2"}}, {Key: "family", Operator: OpIn, Values: []string{"c"}}}}}, "large"},
		{"zone requirement pins the zone", nil, []NodeSelectorTerm{{Requirements: []Requirement{
			{Key: LabelZone, Operator: OpIn, Values: []string{"z2"}}}}}, "small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := mkPod("p", 500)
			pod.NodeSelector = tt.selector
			pod.RequiredNodeAffinity = tt.affinity
			p := basicProblem(pod)
			p.InstanceTypes = labelledCatalog()
			pl := mustSolve(t, p)
			if tt.want == "" {
				if len(pl.Unschedulable) != 1 {
					t.Fatalf("want unschedulable, got %+v", pl.NodeClaims)
				}
				return
			}
			if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].InstanceType != tt.want {
				t.Fatalf("want one claim on %s, got %+v / %v", tt.want, pl.NodeClaims, pl.Unschedulable)
			}
			if tt.name == "zone requirement pins the zone" && pl.NodeClaims[0].Zone != "z2" {
				t.Errorf("zone %s, want z2", pl.NodeClaims[0].Zone)
			}
		})
	}
}

func TestPreferredNodeAffinity(t *testing.T) {
	pref := func(w int32, zone string) PreferredSchedulingTerm {
		return PreferredSchedulingTerm{Weight: w, Term: NodeSelectorTerm{Requirements: []Requirement{{Key: LabelZone, Operator: OpIn, Values: []string{zone}}}}}
	}
	tests := []struct {
		name   string
		prefs  []PreferredSchedulingTerm
		ignore bool
		want   string
	}{
		{"honoured", []PreferredSchedulingTerm{pref(10, "z2")}, false, "z2"},
		{"unsatisfiable is relaxed", []PreferredSchedulingTerm{pref(10, "z9")}, false, "z1"},
		{"heaviest kept longest", []PreferredSchedulingTerm{pref(10, "z9"), pref(50, "z2")}, false, "z2"},
		{"conflicting: lightest dropped", []PreferredSchedulingTerm{pref(90, "z2"), pref(10, "z1")}, false, "z2"},
		{"IgnorePreferences", []PreferredSchedulingTerm{pref(10, "z2")}, true, "z1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := mkPod("p", 500)
			pod.PreferredNodeAffinity = tt.prefs
			p := basicProblem(pod)
			p.Options.IgnorePreferences = tt.ignore
			pl := mustSolve(t, p)
			if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Zone != tt.want {
				t.Fatalf("want zone %s, got %+v", tt.want, pl.NodeClaims)
			}
		})
	}
}

func TestTaints(t *testing.T) {
	gpuTaint := Taint{Key: "nvidia.com/gpu", Value: "true", Effect: EffectNoSchedule}
	tests := []struct {
		name   string
		pools  []NodePool
		tols   []Toleration
		want   string // pool, "" for unschedulable
		reason string
	}{
		{"NoSchedule blocks", []NodePool{{Name: "gpu", Taints: []Taint{gpuTaint}}}, nil, "",
			"no NodePool tolerated: taint nvidia.com/gpu=true:NoSchedule"},
		{"NoExecute blocks", []NodePool{{Name: "x", Taints: []Taint{{Key: "k", Value: "v", Effect: EffectNoExecute}}}}, nil, "",
			"no NodePool tolerated: taint k=v:NoExecute"},
		{"toleration Equal", []NodePool{{Name: "gpu", Taints: []Taint{gpuTaint}}},
			[]Toleration{{Key: "nvidia.com/gpu", Value: "true", Effect: EffectNoSchedule}}, "gpu", ""},
		{"toleration Exists", []NodePool{{Name: "gpu", Taints: []Taint{gpuTaint}}},
			[]Toleration{{Key: "nvidia.com/gpu", Operator: "Exists"}}, "gpu", ""},
		{"PreferNoSchedule avoided when possible", []NodePool{
			{Name: "soft", Weight: 10, Taints: []Taint{{Key: "k", Effect: EffectPreferNoSchedule}}}, {Name: "plain"}}, nil, "plain", ""},
		{"PreferNoSchedule accepted when needed", []NodePool{
			{Name: "soft", Taints: []Taint{{Key: "k", Effect: EffectPreferNoSchedule}}}}, nil, "soft", ""},
		{"startup taints do not block", []NodePool{{Name: "st", StartupTaints: []Taint{{Key: "init", Effect: EffectNoSchedule}}}}, nil, "st", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := mkPod("p", 500)
			pod.Tolerations = tt.tols
			p := basicProblem(pod)
			p.NodePools = tt.pools
			pl := mustSolve(t, p)
			if tt.want == "" {
				if got := unschedulable(pl)["p"]; got != tt.reason {
					t.Fatalf("reason %q, want %q", got, tt.reason)
				}
				return
			}
			if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].NodePool != tt.want {
				t.Fatalf("want pool %s, got %+v %v", tt.want, pl.NodeClaims, pl.Unschedulable)
			}
			if tt.name == "startup taints do not block" && len(pl.NodeClaims[0].StartupTaints) != 1 {
				t.Errorf("startup taints not carried: %+v", pl.NodeClaims[0])
			}
		})
	}
	t.Run("existing node taint", func(t *testing.T) {
		pod := mkPod("p", 500)
		p := basicProblem(pod)
		p.Nodes = []Node{{Name: "n1", Allocatable: Resources{ResourceCPU: 4000, ResourcePods: 10},
			Taints: []Taint{{Key: "k", Effect: EffectNoSchedule}}}}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings) != 0 || len(pl.NodeClaims) != 1 {
			t.Fatalf("pod went to tainted node: %+v", pl)
		}
	})
}

func TestExistingAndInFlightFirst(t *testing.T) {
	node := func(name string, cpu int64) Node {
		return Node{Name: name, NodePool: "default", Labels: map[string]string{LabelZone: "z1"},
			Allocatable: Resources{ResourceCPU: cpu, ResourcePods: 10}}
	}
	t.Run("existing node used", func(t *testing.T) {
		p := basicProblem(mkPods("p", 3, 1000, nil)...)
		p.Nodes = []Node{node("n1", 2000)}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings["n1"]) != 2 || len(pl.NodeClaims) != 1 {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("used resources counted", func(t *testing.T) {
		p := basicProblem(mkPod("p", 1500))
		n := node("n1", 2000)
		n.Pods = []*Pod{mkPod("old", 1000)}
		p.Nodes = []Node{n}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings) != 0 {
			t.Fatalf("overcommitted node: %+v", pl.ExistingBindings)
		}
	})
	t.Run("no pods allocatable means none fit", func(t *testing.T) {
		p := basicProblem(mkPod("p", 100))
		p.Nodes = []Node{{Name: "n1", Allocatable: Resources{ResourceCPU: 2000}}}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings) != 0 {
			t.Fatalf("pod on node with no pod capacity")
		}
	})
	t.Run("cordoned skipped", func(t *testing.T) {
		p := basicProblem(mkPod("p", 100))
		n := node("n1", 2000)
		n.Unschedulable = true
		p.Nodes = []Node{n}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings) != 0 {
			t.Fatalf("pod on cordoned node")
		}
	})
	t.Run("in-flight claim used", func(t *testing.T) {
		p := basicProblem(mkPods("p", 2, 1000, nil)...)
		p.NodeClaims = []NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "medium", Zone: "z1",
			CapacityType: CapacityTypeOnDemand, Allocatable: Resources{ResourceCPU: 4000, ResourcePods: 110}}}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings["c1"]) != 2 || len(pl.NodeClaims) != 0 {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("in-flight claim keeps room for daemonsets", func(t *testing.T) {
		p := basicProblem(mkPods("p", 2, 1000, nil)...)
		p.DaemonSets = []DaemonSet{{Namespace: "kube-system", Name: "ds", Template: Pod{Requests: res(1000, 0)}}}
		p.NodeClaims = []NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "small", Zone: "z1",
			Allocatable: Resources{ResourceCPU: 2000, ResourcePods: 110}}}
		pl := mustSolve(t, p)
		if len(pl.ExistingBindings["c1"]) != 1 {
			t.Fatalf("got %+v", pl.ExistingBindings)
		}
	})
}

func TestHostPorts(t *testing.T) {
	tests := []struct {
		name   string
		a, b   HostPort
		claims int
	}{
		{"same port conflicts", HostPort{Port: 80}, HostPort{Port: 80}, 2},
		{"different port shares", HostPort{Port: 80}, HostPort{Port: 81}, 1},
		{"different protocol shares", HostPort{Port: 53, Protocol: "TCP"}, HostPort{Port: 53, Protocol: "UDP"}, 1},
		{"different specific IPs share", HostPort{Port: 80, HostIP: "10.0.0.1"}, HostPort{Port: 80, HostIP: "10.0.0.2"}, 1},
		{"wildcard overlaps specific", HostPort{Port: 80, HostIP: "0.0.0.0"}, HostPort{Port: 80, HostIP: "10.0.0.2"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mkPod("a", 100), mkPod("b", 100)
			a.HostPorts, b.HostPorts = []HostPort{tt.a}, []HostPort{tt.b}
			pl := mustSolve(t, basicProblem(a, b))
			if len(pl.NodeClaims) != tt.claims {
				t.Fatalf("claims %d, want %d", len(pl.NodeClaims), tt.claims)
			}
		})
	}
}

func TestVolumeTopology(t *testing.T) {
	pod := mkPod("p", 100)
	pod.Volumes = []VolumeTopology{{Name: "data", Terms: []NodeSelectorTerm{{Requirements: []Requirement{
		{Key: LabelZone, Operator: OpIn, Values: []string{"z2"}}}}}}}
	pl := mustSolve(t, basicProblem(pod))
	if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Zone != "z2" {
		t.Fatalf("got %+v", pl.NodeClaims)
	}
	// An existing node in the wrong zone is not used.
	p := basicProblem(pod)
	p.Nodes = []Node{{Name: "n1", Labels: map[string]string{LabelZone: "z1"}, Allocatable: Resources{ResourceCPU: 4000, ResourcePods: 10}}}
	pl = mustSolve(t, p)
	if len(pl.ExistingBindings) != 0 {
		t.Fatalf("pod placed away from its volume")
	}
}

func TestNodePoolWeightAndLimits(t *testing.T) {
	t.Run("higher weight first", func(t *testing.T) {
		p := basicProblem(mkPod("p", 100))
		p.NodePools = []NodePool{{Name: "a", Weight: 1}, {Name: "b", Weight: 50}, {Name: "c", Weight: 50}}
		pl := mustSolve(t, p)
		if pl.NodeClaims[0].NodePool != "b" {
			t.Fatalf("pool %s, want b", pl.NodeClaims[0].NodePool)
		}
	})
	t.Run("limit stops the pool and next pool takes over", func(t *testing.T) {
		p := basicProblem(mkPods("p", 4, 1500, nil)...)
		p.NodePools = []NodePool{{Name: "capped", Weight: 10, Limits: Resources{ResourceCPU: 4000}}, {Name: "spare"}}
		pl := mustSolve(t, p)
		capped := int64(0)
		for _, nc := range pl.NodeClaims {
			if nc.NodePool == "capped" {
				for _, name := range nc.InstanceTypeOptions {
					for _, it := range p.InstanceTypes {
						if it.Name == name && it.Capacity[ResourceCPU] > 4000 {
							t.Errorf("capped claim lists %s", name)
						}
					}
				}
				capped++
			}
		}
		if capped == 0 || len(pl.Unschedulable) != 0 {
			t.Fatalf("got %+v", pl)
		}
	})
	t.Run("limit reason", func(t *testing.T) {
		p := basicProblem(mkPods("p", 2, 1500, nil)...)
		p.NodePools = []NodePool{{Name: "gpu", Limits: Resources{ResourceCPU: 1000}}}
		pl := mustSolve(t, p)
		if got := unschedulable(pl)["p-0"]; got != "NodePool gpu limit cpu=1 reached" {
			t.Fatalf("reason %q", got)
		}
	})
	t.Run("usage counts", func(t *testing.T) {
		p := basicProblem(mkPod("p", 100))
		p.NodePools = []NodePool{{Name: "full", Limits: Resources{ResourceCPU: 8000}, Usage: Resources{ResourceCPU: 7000}}}
		pl := mustSolve(t, p)
		if len(pl.Unschedulable) != 1 {
			t.Fatalf("limit ignored: %+v", pl.NodeClaims)
		}
	})
}

func TestMinValues(t *testing.T) {
	p := basicProblem(mkPod("p", 100))
	p.InstanceTypes = labelledCatalog()
	p.NodePools = []NodePool{{Name: "mv", Requirements: []Requirement{{Key: "family", Operator: OpIn, Values: []string{"a", "b", "c"}, MinValues: 2}}}}
	pl := mustSolve(t, p)
	if len(pl.NodeClaims) != 1 || len(pl.NodeClaims[0].InstanceTypeOptions) < 2 || pl.NodeClaims[0].InstanceType != "small" {
		t.Fatalf("got %+v", pl.NodeClaims)
	}
	// A pod needing family c would leave one family: it cannot go there.
	q := mkPod("q", 100)
	q.NodeSelector = map[string]string{"family": "c"}
	p.Pods = []*Pod{q}
	pl = mustSolve(t, p)
	if len(pl.Unschedulable) != 1 {
		t.Fatalf("minValues ignored: %+v", pl.NodeClaims)
	}
}

func TestDaemonSetOverhead(t *testing.T) {
	p := basicProblem(mkPod("p", 1500))
	p.DaemonSets = []DaemonSet{
		{Namespace: "kube-system", Name: "agent", Template: Pod{Requests: res(1000, 0)}},
		{Namespace: "kube-system", Name: "arm-only", Template: Pod{Requests: res(4000, 0), NodeSelector: map[string]string{LabelArch: "arm64"}}},
		{Namespace: "kube-system", Name: "tainted-only", Template: Pod{Requests: res(4000, 0), NodeSelector: map[string]string{"x": "y"}}},
	}
	pl := mustSolve(t, p)
	nc := pl.NodeClaims[0]
	if nc.InstanceType != "medium" || nc.Requests[ResourceCPU] != 2500 || nc.Requests[ResourcePods] != 2 {
		t.Fatalf("got %s %v", nc.InstanceType, nc.Requests)
	}
	// A DaemonSet that does not tolerate the pool's taint does not run there.
	p.NodePools[0].Taints = []Taint{{Key: "t", Effect: EffectNoSchedule}}
	p.Pods[0].Tolerations = []Toleration{{Key: "t", Operator: "Exists"}}
	pl = mustSolve(t, p)
	if pl.NodeClaims[0].InstanceType != "small" {
		t.Fatalf("got %s", pl.NodeClaims[0].InstanceType)
	}
}

func TestUnschedulableReasons(t *testing.T) {
	p := basicProblem(mkPod("huge", 64000))
	pl := mustSolve(t, p)
	if got := unschedulable(pl)["huge"]; got != "no instance type has 64 cpu for 1 pod: largest allowed allocatable is 8 cpu" {
		t.Fatalf("reason %q", got)
	}
	gpu := mkPod("gpu", 100)
	gpu.Requests["nvidia.com/gpu"] = 1
	pl = mustSolve(t, basicProblem(gpu))
	if got := unschedulable(pl)["gpu"]; !strings.Contains(got, "nvidia.com/gpu") {
		t.Fatalf("reason %q", got)
	}
}

func TestInvalidProblems(t *testing.T) {
	bad := func(r Requirement) *Problem {
		pod := mkPod("p", 100)
		pod.RequiredNodeAffinity = []NodeSelectorTerm{{Requirements: []Requirement{r}}}
		return basicProblem(pod)
	}
	tests := []struct {
		name string
		p    *Problem
	}{
		{"unknown operator", bad(Requirement{Key: "k", Operator: "Near", Values: []string{"x"}})},
		{"Gt with non-integer", bad(Requirement{Key: "k", Operator: OpGt, Values: []string{"x"}})},
		{"In without values", bad(Requirement{Key: "k", Operator: OpIn})},
		{"empty catalog", &Problem{Pods: []*Pod{mkPod("p", 1)}, NodePools: []NodePool{{Name: "d"}}}},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Solve(t.Context(), tt.p); !errors.Is(err, ErrInvalidProblem) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestBestPracticeNodePools(t *testing.T) {
	var its []InstanceType
	for _, fam := range []string{"m5", "c5", "r5", "p3"} {
		for i, size := range []string{"large", "xlarge", "2xlarge", "8xlarge", "16xlarge"} {
			cpu := int64(2) << i
			it := itype(fam+"."+size, cpu, cpu*4, float64(cpu)*0.05, "z1", "z2")
			it.Labels["karpenter.k8s.aws/instance-family"] = fam
			it.Labels["karpenter.k8s.aws/instance-size"] = size
			if fam == "p3" {
				it.Allocatable["nvidia.com/gpu"] = cpu / 8
				it.Capacity["nvidia.com/gpu"] = cpu / 8
				it.Offerings[0].PricePerHour *= 10
				it.Offerings[1].PricePerHour *= 10
				it.Offerings = append(it.Offerings, Offering{Zone: "z1", CapacityType: CapacityTypeSpot, PricePerHour: float64(cpu) * 0.1, Available: true})
			}
			its = append(its, it)
		}
	}
	pools := []NodePool{
		{Name: "gpu", Taints: []Taint{{Key: "nvidia.com/gpu", Value: "true", Effect: EffectNoSchedule}},
			Requirements: []Requirement{
				{Key: LabelInstanceType, Operator: OpIn, Values: []string{"p3.8xlarge", "p3.16xlarge"}},
				{Key: LabelCapacityType, Operator: OpIn, Values: []string{CapacityTypeOnDemand}}}},
		{Name: "team", Labels: map[string]string{"billing-team": "my-team"},
			Requirements: []Requirement{
				{Key: "karpenter.k8s.aws/instance-family", Operator: OpIn, Values: []string{"m5", "c5", "r5"}},
				{Key: "karpenter.k8s.aws/instance-size", Operator: OpIn, Values: []string{"large", "xlarge", "2xlarge"}}}},
	}
	gpuPod := mkPod("train", 4000)
	gpuPod.Requests["nvidia.com/gpu"] = 1
	gpuPod.Tolerations = []Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: EffectNoSchedule}}
	teamPod := mkPod("web", 1000)
	teamPod.RequiredNodeAffinity = []NodeSelectorTerm{{Requirements: []Requirement{{Key: "billing-team", Operator: OpIn, Values: []string{"my-team"}}}}}
	p := &Problem{Pods: []*Pod{gpuPod, teamPod}, NodePools: pools, InstanceTypes: its}
	pl := mustSolve(t, p)
	if len(pl.NodeClaims) != 2 || len(pl.Unschedulable) != 0 {
		t.Fatalf("got %+v %v", pl.NodeClaims, pl.Unschedulable)
	}
	for _, nc := range pl.NodeClaims {
		switch nc.Pods[0].Name {
		case "train":
			if nc.NodePool != "gpu" || nc.InstanceType != "p3.8xlarge" || nc.CapacityType != CapacityTypeOnDemand {
				t.Errorf("gpu pod on %s %s %s", nc.NodePool, nc.InstanceType, nc.CapacityType)
			}
		case "web":
			if nc.NodePool != "team" || nc.Labels["billing-team"] != "my-team" || !strings.HasPrefix(nc.InstanceType, "c5") && !strings.HasPrefix(nc.InstanceType, "m5") && !strings.HasPrefix(nc.InstanceType, "r5") {
				t.Errorf("team pod on %+v", nc)
			}
			for _, o := range nc.InstanceTypeOptions {
				if strings.HasSuffix(o, "8xlarge") || strings.HasPrefix(o, "p3") {
					t.Errorf("team claim lists %s", o)
				}
			}
		}
	}
	// A team pod without the affinity and no toleration lands on team too
	// (gpu is tainted); a GPU pod without toleration is unschedulable.
	bad := mkPod("bad", 100)
	bad.Requests["nvidia.com/gpu"] = 1
	p.Pods = []*Pod{bad}
	pl = mustSolve(t, p)
	if len(pl.Unschedulable) != 1 {
		t.Fatalf("untolerating gpu pod placed: %+v", pl.NodeClaims)
	}
}

func TestNodePoolRequirementLabels(t *testing.T) {
	p := basicProblem()
	p.NodePools = []NodePool{{Name: "np", Requirements: []Requirement{
		{Key: "billing-team", Operator: OpIn, Values: []string{"my-team"}},
		{Key: "tier", Operator: OpIn, Values: []string{"gold", "silver"}}}}}
	a := mkPod("a", 100)
	a.NodeSelector = map[string]string{"billing-team": "my-team"}
	b := mkPod("b", 100)
	b.NodeSelector = map[string]string{"tier": "silver"}
	c := mkPod("c", 100)
	c.NodeSelector = map[string]string{"tier": "bronze"}
	p.Pods = []*Pod{a, b, c}
	pl := mustSolve(t, p)
	if len(pl.Unschedulable) != 1 || pl.Unschedulable[0].Pod.Name != "c" {
		t.Fatalf("unschedulable %v", pl.Unschedulable)
	}
	for _, nc := range pl.NodeClaims {
		if nc.Labels["billing-team"] != "my-team" {
			t.Errorf("missing single-value label: %v", nc.Labels)
		}
		for _, r := range nc.Pods {
			if r.Name == "b" && nc.Labels["tier"] != "silver" {
				t.Errorf("tier not pinned: %v", nc.Labels)
			}
		}
	}
}
