package solver

import (
	"strings"
	"testing"
)

func TestExplanationsPerNodePool(t *testing.T) {
	its := []InstanceType{
		itype("m5.large", 2, 8, 0.1),
		itype("m5.24xlarge", 96, 384, 4.6),
		itype("c5.24xlarge", 96, 192, 4.1),
		itype("r5.24xlarge", 96, 768, 6.0),
		itype("g4dn.xlarge", 4, 16, 0.5),
	}
	its[4].Capacity["nvidia.com/gpu"] = 1
	its[4].Allocatable["nvidia.com/gpu"] = 1
	pools := []NodePool{
		{Name: "gpu", Weight: 10, Taints: []Taint{{Key: "nvidia.com/gpu", Effect: EffectNoSchedule}},
			Requirements: []Requirement{{Key: LabelInstanceType, Operator: OpIn, Values: []string{"g4dn.xlarge"}}}},
		{Name: "default", Requirements: []Requirement{{Key: LabelInstanceType, Operator: OpNotIn, Values: []string{"g4dn.xlarge"}}}},
		{Name: "arm", Requirements: []Requirement{{Key: LabelArch, Operator: OpIn, Values: []string{"arm64"}}}},
		{Name: "small", Limits: Resources{ResourceCPU: 1000}},
	}
	huge := &Pod{Namespace: "default", Name: "huge", Requests: Resources{ResourceCPU: 100000, ResourceMemory: 400 * gi}}
	wide := &Pod{Namespace: "default", Name: "wide", Requests: Resources{ResourceCPU: 50000, ResourceMemory: 800 * gi}}
	p := &Problem{Pods: []*Pod{huge, wide}, NodePools: pools, InstanceTypes: its}
	pl := mustSolve(t, p)
	if len(pl.Unschedulable) != 2 {
		t.Fatalf("want 2 unschedulable pods, got %+v", pl.Unschedulable)
	}
	got := map[string]map[string]string{}
	for _, u := range pl.Unschedulable {
		got[u.Pod.Name] = map[string]string{}
		for _, r := range u.NodePools {
			got[u.Pod.Name][r.NodePool] = r.Reason
		}
		if len(u.NodePools) != len(pools) {
			t.Fatalf("%s: want a reason per NodePool, got %+v", u.Pod.Name, u.NodePools)
		}
	}
	want := map[string]map[string]string{
		"huge": {
			"gpu":     "taint nvidia.com/gpu:NoSchedule not tolerated",
			"default": "no instance type fits the pod: 100 cpu needed, at most 96 in families c5, m5, r5",
			"arm":     "no instance type offering is available under the NodePool's requirements",
			"small":   "no instance type fits the pod: 100 cpu needed, at most 96 in families c5, g4dn, m5, r5",
		},
		"wide": {
			"default": "no instance type fits the pod: 800.00Gi memory needed, at most 768.00Gi in families c5, m5, r5",
		},
	}
	for pod, pools := range want {
		for pool, reason := range pools {
			if got[pod][pool] != reason {
				t.Errorf("%s, nodepool %s: got %q, want %q", pod, pool, got[pod][pool], reason)
			}
		}
	}
	// A pod that fits a type but not the pool's limits.
	p = &Problem{Pods: []*Pod{mkPod("p", 2000)}, NodePools: []NodePool{{Name: "small", Limits: Resources{ResourceCPU: 1000}}}, InstanceTypes: its[:1]}
	pl = mustSolve(t, p)
	if len(pl.Unschedulable) != 1 || !strings.HasPrefix(pl.Unschedulable[0].NodePools[0].Reason, "NodePool limits reached (cpu 0 of 1)") {
		t.Fatalf("limits: %+v", pl.Unschedulable)
	}
}
