package audit

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// TestValueSetInclusiveBounds states Karpenter's rule for Gte and Lte: on
// integer label values Gte n allows v >= n and Lte n allows v <= n; both
// on one key intersect, and an empty intersection is empty.
func TestValueSetInclusiveBounds(t *testing.T) {
	type req struct {
		op corev1.NodeSelectorOperator
		v  string
	}
	cases := []struct {
		name      string
		reqs      []req
		allowed   []string
		refused   []string
		wantEmpty bool
	}{
		{"Gte", []req{{karpv1.NodeSelectorOpGte, "4"}}, []string{"4", "5"}, []string{"3", "x"}, false},
		{"Lte", []req{{karpv1.NodeSelectorOpLte, "4"}}, []string{"0", "4"}, []string{"5"}, false},
		{"Gte n and Lte n", []req{{karpv1.NodeSelectorOpGte, "4"}, {karpv1.NodeSelectorOpLte, "4"}}, []string{"4"}, []string{"3", "5"}, false},
		{"Gte above Lte", []req{{karpv1.NodeSelectorOpGte, "5"}, {karpv1.NodeSelectorOpLte, "4"}}, nil, []string{"4", "5"}, true},
		{"Gte n and Lt n", []req{{karpv1.NodeSelectorOpGte, "4"}, {corev1.NodeSelectorOpLt, "4"}}, nil, []string{"4"}, true},
		{"Gt n and Lte n+1", []req{{corev1.NodeSelectorOpGt, "4"}, {karpv1.NodeSelectorOpLte, "5"}}, []string{"5"}, []string{"4", "6"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &valueSet{}
			for _, r := range tc.reqs {
				s.add(r.op, []string{r.v})
			}
			for _, v := range tc.allowed {
				if !s.allows(v) {
					t.Errorf("%q refused", v)
				}
			}
			for _, v := range tc.refused {
				if s.allows(v) {
					t.Errorf("%q allowed", v)
				}
			}
			if got := s.empty(); got != tc.wantEmpty {
				t.Errorf("empty() = %v, want %v", got, tc.wantEmpty)
			}
		})
	}
}
