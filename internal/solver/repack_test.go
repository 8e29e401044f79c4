package solver

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// repackProblem is a random small problem with plain, zonal spread and
// hostname anti-affinity pods over three sizes in three zones.
func repackProblem(seed uint64) *Problem {
	rng := rand.New(rand.NewPCG(seed, 7)) //nolint:gosec // G404: reproducible test data
	zones := []string{"z1", "z2", "z3"}
	p := &Problem{NodePools: []NodePool{{Name: "default"}}, InstanceTypes: []InstanceType{
		itype("c1", 1, 2, 0.05, zones...), itype("c2", 2, 4, 0.1, zones...),
		itype("c3", 3, 6, 0.15, zones...), itype("c4", 4, 8, 0.2, zones...),
	}}
	cpus := []int64{100, 250, 500, 750, 1000}
	for i := 0; i < 40; i++ {
		pod := mkPod(fmt.Sprintf("p-%d", i), cpus[rng.IntN(len(cpus))])
		pod.Requests[ResourceMemory] = int64(rng.IntN(3)+1) * gi / 2
		switch rng.IntN(3) {
		case 1:
			pod.Labels = map[string]string{"app": "spread"}
			pod.TopologySpread = []TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: LabelZone,
				WhenUnsatisfiable: DoNotSchedule, LabelSelector: sel("app", "spread")}}
		case 2:
			pod.Labels = map[string]string{"app": "anti"}
			pod.PodAntiAffinity.Required = []PodAffinityTerm{{TopologyKey: LabelHostname, LabelSelector: sel("app", "anti")}}
		}
		p.Pods = append(p.Pods, pod)
	}
	return p
}

// Repacking never makes a placement dearer and keeps it valid, whatever
// it moves or rolls back.
func TestRepackKeepsPlansValidAndNoDearer(t *testing.T) {
	improved := 0
	for seed := uint64(1); seed <= 60; seed++ {
		p := repackProblem(seed)
		for _, st := range strategies {
			s := prepared(t, p)
			s.growSlack = st.growSlack
			if st.byCost {
				s.orderByCost()
			}
			s.placeAll()
			before := s.placementCost()
			s.repack(time.Time{})
			after := s.placementCost()
			if after > before+1e-9 {
				t.Fatalf("seed %d: repacking raised the cost from %.4f to %.4f", seed, before, after)
			}
			if after < before-1e-9 {
				improved++
			}
			pl := s.plan()
			checkPlan(t, p, pl)
			checkTopology(t, p, pl)
			if d := pl.CostPerHour - after; d > 1e-9 || d < -1e-9 {
				t.Fatalf("seed %d: plan costs %.4f, placement %.4f", seed, pl.CostPerHour, after)
			}
		}
	}
	if improved == 0 {
		t.Fatal("repacking never found a cheaper placement")
	}
	t.Logf("repacking improved %d of %d placements", improved, 60*len(strategies))
}
