package solver

import (
	"fmt"
	"testing"
)

// spotCatalog has n instance types offered on demand at 1.0 and as spot at
// 0.3 in zone z1.
func spotCatalog(n int) []InstanceType {
	var its []InstanceType
	for i := 0; i < n; i++ {
		it := itype(fmt.Sprintf("t%02d", i), 2+int64(i), 8, 1.0+0.01*float64(i), "z1")
		it.Offerings = append(it.Offerings, Offering{Zone: "z1", CapacityType: CapacityTypeSpot, PricePerHour: 0.3 + 0.01*float64(i), Available: true})
		its = append(its, it)
	}
	return its
}

func TestSpotDiversityRule(t *testing.T) {
	tests := []struct {
		name   string
		types  int
		min    int
		spotOn bool // spot is the only capacity type allowed
		want   string
	}{
		{"15 types: spot", 15, 0, false, CapacityTypeSpot},
		{"14 types: on-demand by default", 14, 0, false, CapacityTypeOnDemand},
		{"14 types, rule at 10: spot", 14, 10, false, CapacityTypeSpot},
		{"rule off: spot", 3, -1, false, CapacityTypeSpot},
		{"spot only: spot despite the rule", 3, 0, true, CapacityTypeSpot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := basicProblem(mkPod("p", 1000))
			p.InstanceTypes = spotCatalog(tc.types)
			p.Options.MinSpotInstanceTypes = tc.min
			if tc.spotOn {
				p.NodePools[0].Requirements = []Requirement{{Key: LabelCapacityType, Operator: OpIn, Values: []string{CapacityTypeSpot}}}
			}
			pl := mustSolve(t, p)
			checkPlan(t, p, pl)
			if len(pl.NodeClaims) != 1 {
				t.Fatalf("want one claim, got %d", len(pl.NodeClaims))
			}
			nc := pl.NodeClaims[0]
			if nc.CapacityType != tc.want {
				t.Fatalf("capacity type %s, want %s", nc.CapacityType, tc.want)
			}
			if nc.CapacityType == CapacityTypeSpot && tc.min >= 0 && !tc.spotOn {
				need := tc.min
				if need == 0 {
					need = DefaultMinSpotInstanceTypes
				}
				if len(nc.InstanceTypeOptions) < need {
					t.Fatalf("spot claim lists %d types, want at least %d", len(nc.InstanceTypeOptions), need)
				}
			}
		})
	}
}
