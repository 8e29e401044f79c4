package solver

import (
	"errors"
	"testing"
)

// TestInclusiveBoundOperators states Karpenter's rule for Gte and Lte
// (v1.10+): one integer value, Gte n holds for a label value >= n and Lte n
// for one <= n; like Gt and Lt they fail for a missing or non-integer
// label; several requirements on one key all hold (they intersect).
func TestInclusiveBoundOperators(t *testing.T) {
	r := func(op Operator, v string) Requirement {
		return Requirement{Key: "cpu", Operator: op, Values: []string{v}}
	}
	tests := []struct {
		name   string
		reqs   []Requirement
		labels map[string]string
		want   bool
	}{
		{"Gte at the bound", []Requirement{r(OpGte, "4")}, map[string]string{"cpu": "4"}, true},
		{"Gte above", []Requirement{r(OpGte, "4")}, map[string]string{"cpu": "5"}, true},
		{"Gte below", []Requirement{r(OpGte, "4")}, map[string]string{"cpu": "3"}, false},
		{"Gt at the bound is strict", []Requirement{r(OpGt, "4")}, map[string]string{"cpu": "4"}, false},
		{"Lte at the bound", []Requirement{r(OpLte, "4")}, map[string]string{"cpu": "4"}, true},
		{"Lte below", []Requirement{r(OpLte, "4")}, map[string]string{"cpu": "0"}, true},
		{"Lte above", []Requirement{r(OpLte, "4")}, map[string]string{"cpu": "5"}, false},
		{"Lt at the bound is strict", []Requirement{r(OpLt, "4")}, map[string]string{"cpu": "4"}, false},
		{"Gte 0 on zero", []Requirement{r(OpGte, "0")}, map[string]string{"cpu": "0"}, true},
		{"Gte missing label", []Requirement{r(OpGte, "0")}, map[string]string{}, false},
		{"Lte missing label", []Requirement{r(OpLte, "9")}, map[string]string{}, false},
		{"Gte non-integer label", []Requirement{r(OpGte, "1")}, map[string]string{"cpu": "4.5"}, false},
		{"Gte non-integer bound", []Requirement{r(OpGte, "1.5")}, map[string]string{"cpu": "4"}, false},
		{"Gte two values", []Requirement{{Key: "cpu", Operator: OpGte, Values: []string{"1", "2"}}}, map[string]string{"cpu": "4"}, false},
		{"Gte and Lte on one key: inside", []Requirement{r(OpGte, "2"), r(OpLte, "8")}, map[string]string{"cpu": "8"}, true},
		{"Gte and Lte on one key: outside", []Requirement{r(OpGte, "2"), r(OpLte, "8")}, map[string]string{"cpu": "16"}, false},
		{"Gte n and Lte n: exactly n", []Requirement{r(OpGte, "4"), r(OpLte, "4")}, map[string]string{"cpu": "4"}, true},
		{"Gte above Lte: empty", []Requirement{r(OpGte, "5"), r(OpLte, "4")}, map[string]string{"cpu": "4"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequirementsMatch(tt.reqs, tt.labels); got != tt.want {
				t.Errorf("RequirementsMatch(%v, %v) = %v, want %v", tt.reqs, tt.labels, got, tt.want)
			}
		})
	}
}

// TestNodePoolInclusiveBounds solves with Gte and Lte in a NodePool: the
// catalog has cpu 2 (small), 4 (medium) and 8 (large), cheapest first.
func TestNodePoolInclusiveBounds(t *testing.T) {
	r := func(op Operator, v string) Requirement {
		return Requirement{Key: "cpu", Operator: op, Values: []string{v}}
	}
	tests := []struct {
		name string
		reqs []Requirement
		want string // launched type, "" for unschedulable
	}{
		{"Gte 4 admits 4", []Requirement{r(OpGte, "4")}, "medium"},
		{"Gt 4 does not", []Requirement{r(OpGt, "4")}, "large"},
		{"Lte 2 admits 2", []Requirement{r(OpLte, "2")}, "small"},
		{"Gte 3 and Lte 8", []Requirement{r(OpGte, "3"), r(OpLte, "8")}, "medium"},
		{"Gte 8 and Lte 8", []Requirement{r(OpGte, "8"), r(OpLte, "8")}, "large"},
		{"Gte 9", []Requirement{r(OpGte, "9")}, ""},
		{"Gte 5 and Lte 7", []Requirement{r(OpGte, "5"), r(OpLte, "7")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basicProblem(mkPod("p", 500))
			p.InstanceTypes = labelledCatalog()
			p.NodePools[0].Requirements = tt.reqs
			pl := mustSolve(t, p)
			if tt.want == "" {
				if len(pl.Unschedulable) != 1 || len(pl.NodeClaims) != 0 {
					t.Fatalf("want unschedulable, got %+v", pl.NodeClaims)
				}
				return
			}
			if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].InstanceType != tt.want {
				t.Fatalf("want one claim on %s, got %+v / %v", tt.want, pl.NodeClaims, pl.Unschedulable)
			}
		})
	}
}

func TestNodePoolInclusiveBoundsInvalid(t *testing.T) {
	for _, r := range []Requirement{
		{Key: "cpu", Operator: OpGte, Values: []string{"x"}},
		{Key: "cpu", Operator: OpLte, Values: []string{"1", "2"}},
		{Key: "cpu", Operator: OpLte},
	} {
		p := basicProblem(mkPod("p", 500))
		p.NodePools[0].Requirements = []Requirement{r}
		if _, err := Solve(t.Context(), p); !errors.Is(err, ErrInvalidProblem) {
			t.Errorf("%v: err %v, want ErrInvalidProblem", r, err)
		}
	}
}
