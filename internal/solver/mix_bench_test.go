package solver

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// mixProblem is an inline version of the "karpenter-mix" workload.
func mixProblem(n int) *Problem {
	var its []InstanceType
	for i := 0; i < 400; i++ {
		cpu := int64(i + 1)
		mem := 2 * cpu * gi
		price := 0.1*float64(cpu) + 0.1*float64(mem)/1e9
		it := InstanceType{Name: fmt.Sprintf("fake-it-%d", i),
			Capacity:    Resources{ResourceCPU: cpu * 1000, ResourceMemory: mem, ResourcePods: 10 * cpu},
			Allocatable: Resources{ResourceCPU: cpu * 1000, ResourceMemory: mem, ResourcePods: 10 * cpu},
			Labels:      map[string]string{LabelArch: "amd64", LabelOS: "linux"}}
		for _, z := range []string{"test-zone-1", "test-zone-2"} {
			it.Offerings = append(it.Offerings, Offering{Zone: z, CapacityType: CapacityTypeSpot, PricePerHour: price, Available: true})
		}
		for _, z := range []string{"test-zone-1", "test-zone-2", "test-zone-3"} {
			it.Offerings = append(it.Offerings, Offering{Zone: z, CapacityType: CapacityTypeOnDemand, PricePerHour: price, Available: true})
		}
		its = append(its, it)
	}
	cpus := []int64{100, 250, 500, 1000, 1500}
	mems := []int64{100 << 20, 256 << 20, 512 << 20, 1 << 30, 2 << 30, 4 << 30}
	var pods []*Pod
	for i := 0; i < n; i++ {
		share := i % 5
		p := &Pod{Namespace: "default", Name: fmt.Sprintf("p-%d", i), Owner: fmt.Sprintf("rs-%d", share),
			Requests: Resources{ResourceCPU: cpus[(i/5)%len(cpus)], ResourceMemory: mems[(i/7)%len(mems)]}}
		switch share {
		case 0:
			p.Labels = map[string]string{"app": "plain"}
		case 1:
			p.Labels = map[string]string{"app": "zonal"}
			p.TopologySpread = []TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: LabelZone, WhenUnsatisfiable: DoNotSchedule,
				LabelSelector: &LabelSelector{MatchLabels: map[string]string{"app": "zonal"}}}}
		case 2:
			p.Labels = map[string]string{"app": "host"}
			p.TopologySpread = []TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: LabelHostname, WhenUnsatisfiable: DoNotSchedule,
				LabelSelector: &LabelSelector{MatchLabels: map[string]string{"app": "host"}}}}
		case 3:
			v := fmt.Sprintf("aff-%d", (i/5)%4)
			p.Labels = map[string]string{"my-affinity": v}
			p.PodAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelZone,
				LabelSelector: &LabelSelector{MatchLabels: map[string]string{"my-affinity": v}}}}
		case 4:
			p.Labels = map[string]string{"app": "nginx"}
			p.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname,
				LabelSelector: &LabelSelector{MatchLabels: map[string]string{"app": "nginx"}}}}
		}
		pods = append(pods, p)
	}
	return &Problem{Pods: pods, InstanceTypes: its, NodePools: []NodePool{{Name: "default"}}}
}

func TestMixTiming(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	for _, n := range []int{5000, 20000} {
		p := mixProblem(n)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		pl, err := Solve(p)
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		checkPlan(t, p, pl)
		t.Logf("mix %d pods: %v, %d claims, $%.2f/h, %d unschedulable, alloc %d MiB",
			n, el, len(pl.NodeClaims), pl.CostPerHour, len(pl.Unschedulable), (after.TotalAlloc-before.TotalAlloc)>>20)
		if len(pl.Unschedulable) > 0 {
			t.Errorf("unschedulable: %v", pl.Unschedulable[0])
		}
	}
}

func BenchmarkMix5000(b *testing.B) {
	p := mixProblem(5000)
	for b.Loop() {
		if _, err := Solve(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMixTopology(t *testing.T) {
	p := mixProblem(600)
	pl := mustSolve(t, p)
	checkTopology(t, p, pl)
}
