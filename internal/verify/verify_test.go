package verify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

const gi = int64(1) << 30

func res(cpu, memGi, pods int64) solver.Resources {
	return solver.Resources{solver.ResourceCPU: cpu, solver.ResourceMemory: memGi * gi, solver.ResourcePods: pods}
}

func pod(name string, cpu int64, labels map[string]string) *solver.Pod {
	return &solver.Pod{
		Namespace: "default",
		Name:      name,
		Labels:    labels,
		Requests:  solver.Resources{solver.ResourceCPU: cpu, solver.ResourceMemory: gi / 4},
	}
}

func ref(name string) solver.PodRef { return solver.PodRef{Namespace: "default", Name: name} }

func refs(names ...string) []solver.PodRef {
	var out []solver.PodRef
	for _, n := range names {
		out = append(out, ref(n))
	}
	return out
}

func od(zone string, price float64) solver.Offering {
	return solver.Offering{Zone: zone, CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price, Available: true}
}

func instanceTypes() []solver.InstanceType {
	it := func(name, arch string, cpu, mem, pods int64, size string, offs ...solver.Offering) solver.InstanceType {
		return solver.InstanceType{
			Name:        name,
			Capacity:    res(cpu, mem, pods),
			Allocatable: res(cpu, mem, pods),
			Labels: map[string]string{
				solver.LabelArch: arch, solver.LabelOS: "linux", solver.LabelInstanceType: name,
				"example.com/cpus": size,
			},
			Offerings: offs,
		}
	}
	return []solver.InstanceType{
		it("small", "amd64", 2000, 4, 10, "2", od("zone-a", 0.10), od("zone-b", 0.10),
			solver.Offering{Zone: "zone-a", CapacityType: solver.CapacityTypeSpot, PricePerHour: 0.05, Available: true},
			solver.Offering{Zone: "zone-b", CapacityType: solver.CapacityTypeSpot, PricePerHour: 0.05, Available: false}),
		it("large", "amd64", 8000, 16, 30, "8", od("zone-a", 0.40), od("zone-b", 0.40)),
		it("arm", "arm64", 4000, 8, 20, "4", od("zone-a", 0.15)),
	}
}

// fixture is a small valid problem and plan: existing node n1 in zone-a
// (4 CPUs, one 1-CPU pod "db-0" labelled app=db), pending pods p1 (bound to
// n1) and p2 (on a new claim in zone-a that may launch as small or large).
type fixture struct {
	p    *solver.Problem
	plan *solver.Plan
}

func newFixture() *fixture {
	p := &solver.Problem{
		InstanceTypes: instanceTypes(),
		NodePools:     []solver.NodePool{{Name: "default"}},
		Nodes: []solver.Node{{
			Name:     "n1",
			NodePool: "default",
			Labels: map[string]string{
				solver.LabelHostname: "n1", solver.LabelZone: "zone-a", solver.LabelArch: "amd64",
				solver.LabelCapacityType: solver.CapacityTypeOnDemand, solver.LabelInstanceType: "arm-like",
			},
			Allocatable: res(4000, 8, 10),
			Pods:        []*solver.Pod{pod("db-0", 1000, map[string]string{"app": "db"})},
			Zone:        "zone-a", CapacityType: solver.CapacityTypeOnDemand, PricePerHour: 0.2,
		}},
		Pods: []*solver.Pod{
			pod("p1", 500, map[string]string{"app": "web"}),
			pod("p2", 1500, map[string]string{"app": "web"}),
		},
	}
	plan := &solver.Plan{
		ExistingBindings: map[string][]solver.PodRef{"n1": refs("p1")},
		NodeClaims:       []solver.PlannedNodeClaim{claim("zone-a", "small", 0.10, []string{"small", "large"}, "p2")},
		CostPerHour:      0.10,
	}
	return &fixture{p: p, plan: plan}
}

func claim(zone, launch string, price float64, options []string, pods ...string) solver.PlannedNodeClaim {
	return solver.PlannedNodeClaim{
		NodePool: "default",
		Requirements: []solver.Requirement{
			{Key: solver.LabelZone, Operator: solver.OpIn, Values: []string{zone}},
			{Key: solver.LabelCapacityType, Operator: solver.OpIn, Values: []string{solver.CapacityTypeOnDemand}},
			{Key: solver.LabelInstanceType, Operator: solver.OpIn, Values: options},
		},
		InstanceTypeOptions: options,
		InstanceType:        launch,
		Zone:                zone,
		CapacityType:        solver.CapacityTypeOnDemand,
		PricePerHour:        price,
		Pods:                refs(pods...),
	}
}

func (f *fixture) pod(name string) *solver.Pod {
	for _, p := range f.p.Pods {
		if p.Name == name {
			return p
		}
	}
	panic(name)
}

// addClaim adds a planned claim and keeps CostPerHour right.
func (f *fixture) addClaim(c solver.PlannedNodeClaim) {
	f.plan.NodeClaims = append(f.plan.NodeClaims, c)
	f.plan.CostPerHour += c.PricePerHour
}

func (f *fixture) addPod(p *solver.Pod) *solver.Pod {
	f.p.Pods = append(f.p.Pods, p)
	return p
}

func TestValidFixture(t *testing.T) {
	f := newFixture()
	if err := Plan(f.p, f.plan); err != nil {
		t.Fatalf("valid plan rejected: %v", err)
	}
}

func TestChecks(t *testing.T) {
	antiWeb := solver.PodAffinityTerm{LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}
	tests := []struct {
		name   string
		mutate func(f *fixture)
		want   string // check that must be reported; "" for a valid plan
	}{
		// Accounting.
		{"pod missing", func(f *fixture) { f.plan.ExistingBindings = nil }, CheckAccounting},
		{"pod twice", func(f *fixture) { f.plan.NodeClaims[0].Pods = refs("p2", "p1") }, CheckAccounting},
		{"pod placed and unschedulable", func(f *fixture) {
			f.plan.Unschedulable = []solver.UnschedulablePod{{Pod: ref("p2"), Reason: "x"}}
		}, CheckAccounting},
		{"unknown pod", func(f *fixture) { f.plan.NodeClaims[0].Pods = refs("p2", "ghost") }, CheckAccounting},
		{"existing pod re-placed", func(f *fixture) { f.plan.NodeClaims[0].Pods = refs("p2", "db-0") }, CheckAccounting},
		{"binding to unknown node", func(f *fixture) {
			f.plan.ExistingBindings = map[string][]solver.PodRef{"nope": refs("p1")}
		}, CheckAccounting},
		{"binding to cordoned node", func(f *fixture) { f.p.Nodes[0].Unschedulable = true }, CheckAccounting},
		{"unschedulable is accounted", func(f *fixture) {
			f.plan.ExistingBindings = nil
			f.plan.Unschedulable = []solver.UnschedulablePod{{Pod: ref("p1"), Reason: "x"}}
		}, ""},
		{"binding to in-flight claim", func(f *fixture) {
			f.p.NodeClaims = []solver.NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "small", Zone: "zone-a",
				CapacityType: solver.CapacityTypeOnDemand, Allocatable: res(2000, 4, 10)}}
			f.plan.ExistingBindings = map[string][]solver.PodRef{"c1": refs("p1")}
		}, ""},

		// Resources.
		{"claim overflows its cheapest option", func(f *fixture) {
			f.pod("p2").Requests[solver.ResourceCPU] = 2500
		}, CheckResources},
		{"claim fits every option", func(f *fixture) {
			f.pod("p2").Requests[solver.ResourceCPU] = 2000
		}, ""},
		{"DaemonSet overhead overflows", func(f *fixture) {
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "kube-system", Name: "ds", Template: *pod("ds", 600, nil)}}
		}, CheckResources},
		{"DaemonSet that does not run on the node is not counted", func(f *fixture) {
			ds := pod("ds", 600, nil)
			ds.NodeSelector = map[string]string{solver.LabelArch: "arm64"}
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "kube-system", Name: "ds", Template: *ds}}
		}, ""},
		{"pods count", func(f *fixture) {
			f.p.InstanceTypes[0].Allocatable[solver.ResourcePods] = 0
		}, CheckResources},
		{"extended resource missing", func(f *fixture) {
			f.pod("p2").Requests["nvidia.com/gpu"] = 1
		}, CheckResources},
		{"existing node overflow", func(f *fixture) {
			f.pod("p1").Requests[solver.ResourceCPU] = 3500
		}, CheckResources},
		{"in-flight claim overflow with DaemonSet", func(f *fixture) {
			f.p.NodeClaims = []solver.NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "small", Zone: "zone-a",
				CapacityType: solver.CapacityTypeOnDemand, Allocatable: res(2000, 4, 10),
				Pods: []*solver.Pod{pod("nominated", 1000, nil)}}}
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "kube-system", Name: "ds", Template: *pod("ds", 600, nil)}}
			f.plan.ExistingBindings = map[string][]solver.PodRef{"c1": refs("p1")}
		}, CheckResources},

		// Instance types, offerings, prices, cost.
		{"option violates claim requirement", func(f *fixture) {
			f.plan.NodeClaims[0].Requirements = append(f.plan.NodeClaims[0].Requirements,
				solver.Requirement{Key: "example.com/cpus", Operator: solver.OpLt, Values: []string{"4"}})
		}, CheckInstanceType},
		{"option not in instance-type requirement", func(f *fixture) {
			f.plan.NodeClaims[0].Requirements[2].Values = []string{"small"}
		}, CheckInstanceType},
		{"option violates NodePool requirement", func(f *fixture) {
			f.p.NodePools[0].Requirements = []solver.Requirement{{Key: "example.com/cpus", Operator: solver.OpLt, Values: []string{"4"}}}
		}, CheckInstanceType},
		{"NodePool requirement on a key no type defines is not checked", func(f *fixture) {
			f.p.NodePools[0].Requirements = []solver.Requirement{{Key: "example.com/team", Operator: solver.OpIn, Values: []string{"a", "b"}}}
		}, ""},
		{"minValues", func(f *fixture) {
			f.p.NodePools[0].Requirements = []solver.Requirement{{Key: solver.LabelInstanceType, Operator: solver.OpExists, MinValues: 3}}
		}, CheckInstanceType},
		{"unknown option", func(f *fixture) {
			f.plan.NodeClaims[0].InstanceTypeOptions = []string{"small", "huge"}
		}, CheckInstanceType},
		{"option without offering in zone", func(f *fixture) {
			f.plan.NodeClaims[0].InstanceTypeOptions = []string{"small", "arm"}
			f.plan.NodeClaims[0].Zone = "zone-b"
			f.plan.NodeClaims[0].Requirements[0].Values = []string{"zone-b"}
		}, CheckOffering},
		{"unavailable offering", func(f *fixture) {
			c := &f.plan.NodeClaims[0]
			c.CapacityType, c.InstanceTypeOptions, c.Zone = solver.CapacityTypeSpot, []string{"small"}, "zone-b"
			c.Requirements = nil
			c.PricePerHour, f.plan.CostPerHour = 0.05, 0.05
		}, CheckOffering},
		{"launched not the cheapest", func(f *fixture) {
			f.plan.NodeClaims[0].InstanceType = "large"
			f.plan.NodeClaims[0].PricePerHour, f.plan.CostPerHour = 0.40, 0.40
		}, CheckPrice},
		{"launched not an option", func(f *fixture) { f.plan.NodeClaims[0].InstanceType = "arm" }, CheckPrice},
		{"price differs from offering", func(f *fixture) {
			f.plan.NodeClaims[0].PricePerHour, f.plan.CostPerHour = 0.09, 0.09
		}, CheckPrice},
		{"cost", func(f *fixture) { f.plan.CostPerHour = 0.2 }, CheckCost},
		{"label conflict", func(f *fixture) {
			f.plan.NodeClaims[0].Labels = map[string]string{solver.LabelArch: "arm64"}
		}, CheckLabels},
		{"unknown NodePool", func(f *fixture) { f.plan.NodeClaims[0].NodePool = "other" }, CheckNodePool},
		{"NodePool taint missing from claim", func(f *fixture) {
			taint := solver.Taint{Key: "dedicated", Value: "x", Effect: solver.EffectNoSchedule}
			f.p.NodePools[0].Taints = []solver.Taint{taint}
			f.pod("p2").Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
		}, CheckNodePool},

		// NodePool limits.
		{"limit exceeded by the largest option", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceCPU: 4000}
		}, CheckLimits},
		{"limit exceeded by usage", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceCPU: 9000}
			f.p.NodePools[0].Usage = solver.Resources{solver.ResourceCPU: 8000}
		}, CheckLimits},
		{"usage over limit without new claims", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceCPU: 1000}
			f.p.NodePools[0].Usage = solver.Resources{solver.ResourceCPU: 8000}
			f.plan.NodeClaims, f.plan.CostPerHour = nil, 0
			f.plan.Unschedulable = []solver.UnschedulablePod{{Pod: ref("p2"), Reason: "limits"}}
		}, ""},
		{"nodes limit exceeded by a new claim", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceNodes: 2}
			f.p.NodePools[0].Usage = solver.Resources{solver.ResourceNodes: 2}
		}, CheckLimits},
		{"nodes limit met", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceNodes: 2}
			f.p.NodePools[0].Usage = solver.Resources{solver.ResourceNodes: 1}
		}, ""},
		{"limit met", func(f *fixture) {
			f.p.NodePools[0].Limits = solver.Resources{solver.ResourceCPU: 9000, "nvidia.com/gpu": 0}
			f.p.NodePools[0].Usage = solver.Resources{solver.ResourceCPU: 1000}
		}, ""},

		// Node selectors, affinity, taints, volumes, host ports.
		{"node selector", func(f *fixture) {
			f.pod("p2").NodeSelector = map[string]string{solver.LabelArch: "arm64"}
		}, CheckNodeSelector},
		{"node selector on existing node", func(f *fixture) {
			f.pod("p1").NodeSelector = map[string]string{solver.LabelZone: "zone-b"}
		}, CheckNodeSelector},
		{"required node affinity fails on one option", func(f *fixture) {
			f.pod("p2").RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
				{Key: "example.com/cpus", Operator: solver.OpGt, Values: []string{"4"}}}}}
		}, CheckNodeSelector},
		{"required node affinity holds", func(f *fixture) {
			f.pod("p2").RequiredNodeAffinity = []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
				{Key: "example.com/cpus", Operator: solver.OpGt, Values: []string{"1"}},
				{Key: solver.LabelZone, Operator: solver.OpNotIn, Values: []string{"zone-b"}}}}}
		}, ""},
		{"claim taint not tolerated", func(f *fixture) {
			f.plan.NodeClaims[0].Taints = []solver.Taint{{Key: "dedicated", Value: "x", Effect: solver.EffectNoSchedule}}
		}, CheckTaints},
		{"claim taint tolerated, startup taint ignored", func(f *fixture) {
			f.plan.NodeClaims[0].Taints = []solver.Taint{{Key: "dedicated", Value: "x", Effect: solver.EffectNoExecute},
				{Key: "soft", Effect: solver.EffectPreferNoSchedule}}
			f.plan.NodeClaims[0].StartupTaints = []solver.Taint{{Key: "startup", Effect: solver.EffectNoSchedule}}
			f.pod("p2").Tolerations = []solver.Toleration{{Key: "dedicated", Value: "x"}}
		}, ""},
		{"existing node taint", func(f *fixture) {
			f.p.Nodes[0].Taints = []solver.Taint{{Key: "dedicated", Value: "x", Effect: solver.EffectNoExecute}}
		}, CheckTaints},
		{"volume topology", func(f *fixture) {
			f.pod("p2").Volumes = []solver.VolumeTopology{{Name: "data", Terms: []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
				{Key: solver.LabelZone, Operator: solver.OpIn, Values: []string{"zone-b"}}}}}}}
		}, CheckVolumes},
		{"host port conflict on claim", func(f *fixture) {
			f.addPod(pod("p3", 100, nil)).HostPorts = []solver.HostPort{{Port: 80, HostIP: "10.0.0.1"}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 80, Protocol: "TCP"}}
			f.plan.NodeClaims[0].Pods = refs("p2", "p3")
		}, CheckHostPorts},
		{"host ports differ by protocol or IP", func(f *fixture) {
			f.addPod(pod("p3", 100, nil)).HostPorts = []solver.HostPort{{Port: 80, Protocol: "UDP"}, {Port: 81, HostIP: "10.0.0.1"}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 80}, {Port: 81, HostIP: "10.0.0.2"}}
			f.plan.NodeClaims[0].Pods = refs("p2", "p3")
		}, ""},
		{"host port conflict with existing pod", func(f *fixture) {
			f.p.Nodes[0].Pods[0].HostPorts = []solver.HostPort{{Port: 443}}
			f.pod("p1").HostPorts = []solver.HostPort{{Port: 443, HostIP: "10.1.1.1"}}
		}, CheckHostPorts},
		{"host port held by a DaemonSet on the claim", func(f *fixture) {
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "monitoring", Name: "node-exporter", Template: *portPod("node-exporter", solver.HostPort{Port: 9100})}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 9100, Protocol: "TCP", HostIP: "10.0.0.1"}}
		}, CheckHostPorts},
		{"DaemonSet host port on one option only", func(f *fixture) {
			ds := portPod("node-exporter", solver.HostPort{Port: 9100})
			ds.NodeSelector = map[string]string{solver.LabelInstanceType: "large"}
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "monitoring", Name: "node-exporter", Template: *ds}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 9100}}
		}, CheckHostPorts},
		{"DaemonSet host port of another protocol or IP", func(f *fixture) {
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "monitoring", Name: "node-exporter",
				Template: *portPod("node-exporter", solver.HostPort{Port: 9100, Protocol: "UDP"}, solver.HostPort{Port: 9101, HostIP: "10.0.0.1"})}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 9100}, {Port: 9101, HostIP: "10.0.0.2"}}
		}, ""},
		{"DaemonSet that does not run on the claim holds no port", func(f *fixture) {
			ds := portPod("node-exporter", solver.HostPort{Port: 9100})
			ds.NodeSelector = map[string]string{solver.LabelZone: "zone-b"}
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "monitoring", Name: "node-exporter", Template: *ds}}
			f.pod("p2").HostPorts = []solver.HostPort{{Port: 9100}}
		}, ""},
		{"host port held by a DaemonSet on an in-flight claim", func(f *fixture) {
			f.p.NodeClaims = []solver.NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "small", Zone: "zone-a",
				CapacityType: solver.CapacityTypeOnDemand, Allocatable: res(2000, 4, 10)}}
			f.p.DaemonSets = []solver.DaemonSet{{Namespace: "monitoring", Name: "node-exporter", Template: *portPod("node-exporter", solver.HostPort{Port: 9100})}}
			f.pod("p1").HostPorts = []solver.HostPort{{Port: 9100}}
			f.plan.ExistingBindings = map[string][]solver.PodRef{"c1": refs("p1")}
		}, CheckHostPorts},

		// Pod anti-affinity.
		{"hostname anti-affinity on one claim", func(f *fixture) {
			f.addPod(pod("p3", 100, map[string]string{"app": "web"}))
			f.pod("p2").PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelHostname}}
			f.plan.NodeClaims[0].Pods = refs("p2", "p3")
		}, CheckAntiAffinity},
		{"hostname anti-affinity on two claims", func(f *fixture) {
			f.addPod(pod("p3", 100, map[string]string{"app": "web"}))
			f.pod("p2").PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelHostname}}
			f.addClaim(claim("zone-a", "small", 0.10, []string{"small"}, "p3"))
		}, ""},
		{"zonal anti-affinity between claim and existing node", func(f *fixture) {
			f.pod("p2").PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelZone}}
		}, CheckAntiAffinity},
		{"existing pod's anti-affinity repels new pod", func(f *fixture) {
			f.p.Nodes[0].Pods[0].PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelHostname}}
		}, CheckAntiAffinity},
		{"anti-affinity in another namespace does not apply", func(f *fixture) {
			f.p.Nodes[0].Pods[0].Namespace = "db"
			f.p.Nodes[0].Pods[0].PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelHostname}}
		}, ""},
		{"anti-affinity through a namespace selector", func(f *fixture) {
			f.p.Namespaces = map[string]map[string]string{"default": {"team": "web"}}
			f.p.Nodes[0].Pods[0].Namespace = "db"
			f.p.Nodes[0].Pods[0].PodAntiAffinity.Required = []solver.PodAffinityTerm{{LabelSelector: antiWeb.LabelSelector, TopologyKey: solver.LabelHostname,
				NamespaceSelector: &solver.LabelSelector{MatchLabels: map[string]string{"team": "web"}}}}
		}, CheckAntiAffinity},

		// Pod affinity.
		{"affinity to a pod in the same zone", func(f *fixture) {
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
		}, ""},
		{"affinity to a pod in another zone", func(f *fixture) {
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
			f.plan.NodeClaims[0] = claim("zone-b", "small", 0.10, []string{"small", "large"}, "p2")
		}, CheckAffinity},
		{"affinity to a pod on another host", func(f *fixture) {
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelHostname,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
		}, CheckAffinity},
		{"affinity to nothing", func(f *fixture) {
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}}}
		}, CheckAffinity},
		{"affinity to a missing topology key", func(f *fixture) {
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: "example.com/rack",
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}, CheckAffinity},
		{"first pod of a self-affine group", func(f *fixture) {
			f.pod("p2").Labels = map[string]string{"app": "solo"}
			f.pod("p2").PodAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "solo"}}}}
		}, ""},
		{"self-affine group split across zones", func(f *fixture) {
			term := []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "solo"}}}}
			f.pod("p2").Labels = map[string]string{"app": "solo"}
			f.pod("p2").PodAffinity.Required = term
			p3 := f.addPod(pod("p3", 100, map[string]string{"app": "solo"}))
			p3.PodAffinity.Required = term
			f.addClaim(claim("zone-b", "small", 0.10, []string{"small"}, "p3"))
		}, CheckAffinity},
		{"self-affine group together", func(f *fixture) {
			term := []solver.PodAffinityTerm{{TopologyKey: solver.LabelZone,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": "solo"}}}}
			f.pod("p2").Labels = map[string]string{"app": "solo"}
			f.pod("p2").PodAffinity.Required = term
			p3 := f.addPod(pod("p3", 100, map[string]string{"app": "solo"}))
			p3.PodAffinity.Required = term
			f.addClaim(claim("zone-a", "small", 0.10, []string{"small"}, "p3"))
		}, ""},

		// Topology spread.
		{"zonal spread skew 2", func(f *fixture) { spreadFixture(f, 2, 0, solver.LabelZone, 0) }, CheckTopologySpread},
		{"zonal spread skew 1", func(f *fixture) { spreadFixture(f, 2, 1, solver.LabelZone, 0) }, ""},
		{"zonal spread counts existing pods", func(f *fixture) {
			spreadFixture(f, 1, 0, solver.LabelZone, 0)
			f.p.Nodes[0].Pods = append(f.p.Nodes[0].Pods, pod("s-old", 100, map[string]string{"spread": "s"}))
		}, CheckTopologySpread},
		{"zonal spread one pod", func(f *fixture) { spreadFixture(f, 1, 0, solver.LabelZone, 0) }, ""},
		{"ScheduleAnyway is not checked", func(f *fixture) {
			spreadFixture(f, 3, 0, solver.LabelZone, 0)
			for _, p := range f.p.Pods {
				for i := range p.TopologySpread {
					p.TopologySpread[i].WhenUnsatisfiable = solver.ScheduleAnyway
				}
			}
		}, ""},
		{"single domain meets skew", func(f *fixture) {
			spreadFixture(f, 3, 0, solver.LabelZone, 0)
			f.plan.NodeClaims = f.plan.NodeClaims[:len(f.plan.NodeClaims)-1]
			f.plan.CostPerHour -= 0.10
			f.plan.ExistingBindings["n1"] = refs("p1", "other")
		}, ""},
		{"minDomains", func(f *fixture) {
			spreadFixture(f, 3, 0, solver.LabelZone, 2)
			f.plan.NodeClaims = f.plan.NodeClaims[:len(f.plan.NodeClaims)-1]
			f.plan.CostPerHour -= 0.10
			f.plan.ExistingBindings["n1"] = refs("p1", "other")
		}, CheckTopologySpread},
		{"hostname spread", func(f *fixture) { spreadFixture(f, 2, 0, solver.LabelHostname, 0) }, CheckTopologySpread},
		{"hostname spread counts the empty existing node", func(f *fixture) {
			spreadFixture(f, 2, 2, solver.LabelHostname, 0)
		}, CheckTopologySpread},
		{"spread ignores nodes the pod's affinity excludes", func(f *fixture) {
			spreadFixture(f, 2, 0, solver.LabelZone, 0)
			for _, p := range f.p.Pods {
				if p.Labels["spread"] == "s" {
					p.NodeSelector = map[string]string{solver.LabelZone: "zone-a"}
				}
			}
		}, ""},
		{"nodeAffinityPolicy Ignore counts them", func(f *fixture) {
			spreadFixture(f, 2, 0, solver.LabelZone, 0)
			for _, p := range f.p.Pods {
				if p.Labels["spread"] == "s" {
					p.NodeSelector = map[string]string{solver.LabelZone: "zone-a"}
					p.TopologySpread[0].NodeAffinityPolicy = solver.PolicyIgnore
				}
			}
		}, CheckTopologySpread},
		{"nodeTaintsPolicy Honor skips tainted nodes", func(f *fixture) {
			spreadFixture(f, 2, 0, solver.LabelZone, 0)
			f.plan.NodeClaims[1].Taints = []solver.Taint{{Key: "dedicated", Effect: solver.EffectNoSchedule}}
			f.pod("other").Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
			for _, p := range f.p.Pods {
				if p.Labels["spread"] == "s" {
					p.TopologySpread[0].NodeTaintsPolicy = solver.PolicyHonor
				}
			}
		}, ""},
		{"nodeTaintsPolicy Ignore counts tainted nodes", func(f *fixture) {
			spreadFixture(f, 2, 0, solver.LabelZone, 0)
			f.plan.NodeClaims[1].Taints = []solver.Taint{{Key: "dedicated", Effect: solver.EffectNoSchedule}}
			f.pod("other").Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
		}, CheckTopologySpread},
		{"spread on a node lacking the key", func(f *fixture) {
			spreadFixture(f, 1, 1, "example.com/rack", 0)
		}, CheckTopologySpread},
		{"matchLabelKeys narrows the count", func(f *fixture) {
			spreadFixture(f, 2, 0, solver.LabelZone, 0)
			for i, p := range f.p.Pods {
				if p.Labels["spread"] == "s" {
					p.Labels = map[string]string{"spread": "s", "rev": string(rune('a' + i))}
					p.TopologySpread[0].MatchLabelKeys = []string{"rev"}
				}
			}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			tc.mutate(f)
			err := Plan(f.p, f.plan)
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

// spreadFixture adds pods labelled spread=s with a DoNotSchedule spread
// constraint over key: inA of them on the zone-a claim (with p2), inB on a
// new zone-b claim, which also holds an unrelated pod "other".
func spreadFixture(f *fixture, inA, inB int, key string, minDomains int32) {
	c := solver.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: solver.DoNotSchedule, MinDomains: minDomains,
		LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"spread": "s"}},
	}
	var a, b []string
	for i := 0; i < inA+inB; i++ {
		name := "s" + string(rune('0'+i))
		p := f.addPod(pod(name, 100, map[string]string{"spread": "s"}))
		p.TopologySpread = []solver.TopologySpreadConstraint{c}
		if i < inA {
			a = append(a, name)
		} else {
			b = append(b, name)
		}
	}
	f.addPod(pod("other", 100, nil))
	f.plan.NodeClaims[0].Pods = append(f.plan.NodeClaims[0].Pods, refs(a...)...)
	f.addClaim(claim("zone-b", "small", 0.10, []string{"small"}, append(b, "other")...))
}

func TestViolationsListsAll(t *testing.T) {
	f := newFixture()
	f.plan.CostPerHour = 5
	f.pod("p2").NodeSelector = map[string]string{"x": "y"}
	err := Plan(f.p, f.plan)
	vs := Violations(err)
	if len(vs) < 3 { // cost + node selector on each of two options
		t.Fatalf("want at least 3 violations, got %d: %v", len(vs), err)
	}
	if !strings.Contains(err.Error(), "claim 0") {
		t.Fatalf("message does not name the claim: %v", err)
	}
}

// An instance type, existing node or in-flight claim whose allocatable has
// no "pods" entry holds solver.DefaultPods pods, as the solver assumes.
func TestDefaultPodCapacity(t *testing.T) {
	f := newFixture()
	for i := range f.p.InstanceTypes {
		delete(f.p.InstanceTypes[i].Allocatable, solver.ResourcePods)
	}
	delete(f.p.Nodes[0].Allocatable, solver.ResourcePods)
	if err := Plan(f.p, f.plan); err != nil {
		t.Fatalf("plan on nodes without a pods entry rejected: %v", err)
	}

	// Past the default the pod count is still checked.
	f = newFixture()
	delete(f.p.Nodes[0].Allocatable, solver.ResourcePods)
	for i := 0; i < solver.DefaultPods; i++ {
		f.p.Nodes[0].Pods = append(f.p.Nodes[0].Pods, &solver.Pod{Namespace: "default", Name: fmt.Sprintf("tiny-%d", i)})
	}
	err := Plan(f.p, f.plan)
	if !HasCheck(err, CheckResources) || !strings.Contains(err.Error(), "pods requested 112") {
		t.Fatalf("want a pods resource violation on n1, got %v", err)
	}

	// And the solver's plans for such a problem pass.
	p := &solver.Problem{NodePools: []solver.NodePool{{Name: "default"}}, InstanceTypes: instanceTypes()}
	for i := range p.InstanceTypes {
		delete(p.InstanceTypes[i].Allocatable, solver.ResourcePods)
	}
	p.Pods = replicas("web", 5, 300, gi/4, nil)
	solveAndVerify(t, p)
}

// portPod is a DaemonSet template that requests nothing and binds ports.
func portPod(name string, ports ...solver.HostPort) *solver.Pod {
	p := pod(name, 0, nil)
	p.HostPorts = ports
	return p
}
