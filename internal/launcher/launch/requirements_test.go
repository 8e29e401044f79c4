package launch

import (
	"errors"
	"testing"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// TestMatchOneInclusiveBounds states Karpenter's rule for Gte and Lte
// (v1.10+): Gte n holds for an integer label value >= n, Lte n for one
// <= n; a missing or non-integer label fails.
func TestMatchOneInclusiveBounds(t *testing.T) {
	req := func(op, v string) *typesv1.Requirement {
		return &typesv1.Requirement{Key: "k", Operator: op, Values: []string{v}}
	}
	cases := []struct {
		name   string
		r      *typesv1.Requirement
		labels map[string]string
		want   bool
	}{
		{"Gte equal", req("Gte", "4"), map[string]string{"k": "4"}, true},
		{"Gte above", req("Gte", "4"), map[string]string{"k": "8"}, true},
		{"Gte below", req("Gte", "4"), map[string]string{"k": "2"}, false},
		{"Lte equal", req("Lte", "4"), map[string]string{"k": "4"}, true},
		{"Lte above", req("Lte", "4"), map[string]string{"k": "5"}, false},
		{"Gt equal is strict", req("Gt", "4"), map[string]string{"k": "4"}, false},
		{"Lt equal is strict", req("Lt", "4"), map[string]string{"k": "4"}, false},
		{"Gte missing", req("Gte", "0"), map[string]string{}, false},
		{"Lte not an integer", req("Lte", "4"), map[string]string{"k": "x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchOne(tc.r, tc.labels); got != tc.want {
				t.Errorf("matchOne = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckRequirementsInclusiveBounds(t *testing.T) {
	ok := []*typesv1.Requirement{
		{Key: "k", Operator: "Gte", Values: []string{"2"}},
		{Key: "k", Operator: "Lte", Values: []string{"8"}},
	}
	if err := checkRequirements(ok); err != nil {
		t.Fatalf("checkRequirements(%v) = %v", ok, err)
	}
	for _, bad := range []*typesv1.Requirement{
		{Key: "k", Operator: "Gte", Values: []string{"x"}},
		{Key: "k", Operator: "Lte"},
	} {
		if err := checkRequirements([]*typesv1.Requirement{bad}); !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Errorf("checkRequirements(%v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
