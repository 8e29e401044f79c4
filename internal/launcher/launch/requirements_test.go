package launch

import (
	"errors"
	"testing"

	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
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

// TestInstanceLabelRequirementsFilter states Karpenter's rule that a
// requirement on a well-known instance label filters instance types: a
// type without the label (no local NVMe) or with another value fails it.
func TestInstanceLabelRequirementsFilter(t *testing.T) {
	m5 := instancetype.Info{Name: "m5.large", VCPU: 2, MemoryMiB: 8192, Arch: "amd64", CPUManufacturer: "intel", NetworkBandwidthMbps: 750}
	c5ad := instancetype.Info{Name: "c5ad.large", VCPU: 2, MemoryMiB: 4096, Arch: "amd64", CPUManufacturer: "amd", LocalNVMeGB: 75, EncryptionInTransit: true}
	req := func(k, op string, v ...string) []*typesv1.Requirement {
		return []*typesv1.Requirement{{Key: k, Operator: op, Values: v}}
	}
	cases := []struct {
		name     string
		reqs     []*typesv1.Requirement
		m5, c5ad bool
	}{
		{"cpu manufacturer", req(instancetype.LabelCPUManufacturer, "In", "amd"), false, true},
		{"local nvme", req(instancetype.LabelLocalNVMe, "Gt", "50"), false, true},
		{"network bandwidth", req(instancetype.LabelNetworkBandwidth, "Gte", "750"), true, false},
		{"encryption in transit", req(instancetype.LabelEncryptionInTransit, "In", "true"), false, true},
		{"capability flex", req(instancetype.LabelCapabilityFlex, "In", "false"), true, true},
	}
	for _, tc := range cases {
		if got := matches(tc.reqs, m5.Labels()); got != tc.m5 {
			t.Errorf("%s: m5.large matches %v, want %v", tc.name, got, tc.m5)
		}
		if got := matches(tc.reqs, c5ad.Labels()); got != tc.c5ad {
			t.Errorf("%s: c5ad.large matches %v, want %v", tc.name, got, tc.c5ad)
		}
	}
}
