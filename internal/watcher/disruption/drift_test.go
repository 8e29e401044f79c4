package disruption

import (
	"strings"
	"testing"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestDriftReason(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *Candidate)
		want string // substring; "" means not drifted
	}{
		{name: "current", mod: func(*Candidate) {}},
		{name: "template label changed", want: "template changed", mod: func(c *Candidate) {
			c.NodePool = newPool("default", func(np *karpv1.NodePool) { np.Spec.Template.ObjectMeta.Labels["team"] = "b" })
		}},
		{name: "budget change is not drift", mod: func(c *Candidate) {
			c.NodePool = newPool("default", func(np *karpv1.NodePool) { np.Spec.Disruption.Budgets = nil })
		}},
		{name: "other hash version not compared", mod: func(c *Candidate) {
			c.NodeClaim.Annotations[karpv1.NodePoolHashVersionAnnotationKey] = "v1"
			c.NodeClaim.Annotations[karpv1.NodePoolHashAnnotationKey] = "123"
		}},
		{name: "no hash annotation", mod: func(c *Candidate) {
			delete(c.NodeClaim.Annotations, karpv1.NodePoolHashAnnotationKey)
			delete(c.NodeClaim.Annotations, karpv1.NodeClassHashAnnotationKey)
		}},
		{name: "node class changed", want: "EC2NodeClass default changed", mod: func(c *Candidate) {
			c.NodeClass = newClass()
			c.NodeClass.Spec.Role = "Other"
		}},
		{name: "ami gone", want: "image ami-old is no longer among", mod: func(c *Candidate) {
			c.NodeClaim.Status.ImageID = "ami-old"
		}},
		{name: "no amis resolved", mod: func(c *Candidate) {
			c.NodeClaim.Status.ImageID = "ami-old"
			c.NodeClass.Status.AMIs = nil
		}},
		{name: "capacity type no longer allowed", want: "karpenter.sh/capacity-type=on-demand is not In [spot]", mod: func(c *Candidate) {
			c.NodePool.Spec.Template.Spec.Requirements[0].Values = []string{"spot"}
		}},
		{name: "custom label required", want: "example.com/tier is unset", mod: func(c *Candidate) {
			c.NodePool.Spec.Template.Spec.Requirements = append(c.NodePool.Spec.Template.Spec.Requirements,
				karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
					Key: "example.com/tier", Operator: corev1.NodeSelectorOpExists}})
		}},
		{name: "undefined well-known label allowed", mod: func(c *Candidate) {
			c.NodePool.Spec.Template.Spec.Requirements = append(c.NodePool.Spec.Template.Spec.Requirements,
				karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
					Key: "karpenter.k8s.aws/instance-generation", Operator: corev1.NodeSelectorOpGt, Values: []string{"4"}}})
		}},
		{name: "Gt violated", want: "is not Gt", mod: func(c *Candidate) {
			c.NodeClaim.Labels["karpenter.k8s.aws/instance-generation"] = "4"
			c.NodePool.Spec.Template.Spec.Requirements = append(c.NodePool.Spec.Template.Spec.Requirements,
				karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
					Key: "karpenter.k8s.aws/instance-generation", Operator: corev1.NodeSelectorOpGt, Values: []string{"4"}}})
		}},
		{name: "NotIn violated", want: "is not NotIn", mod: func(c *Candidate) {
			c.NodePool.Spec.Template.Spec.Requirements = append(c.NodePool.Spec.Template.Spec.Requirements,
				karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
					Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"m5.large"}}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool("default")
			c := newCandidate("n1", pool, newClass())
			tc.mod(&c)
			got := DriftReason(&c)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("DriftReason = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSatisfiesInclusiveBounds states Karpenter's rule for Gte and Lte:
// Gte n holds for an integer label value >= n, Lte n for one <= n; a
// missing or non-integer label fails; both on one key intersect.
func TestSatisfiesInclusiveBounds(t *testing.T) {
	req := func(op corev1.NodeSelectorOperator, v string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: "g", Operator: op, Values: []string{v}}
	}
	cases := []struct {
		name    string
		reqs    []corev1.NodeSelectorRequirement
		v       string
		present bool
		want    bool
	}{
		{"Gte equal", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpGte, "5")}, "5", true, true},
		{"Gte below", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpGte, "5")}, "4", true, false},
		{"Lte equal", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpLte, "5")}, "5", true, true},
		{"Lte above", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpLte, "5")}, "6", true, false},
		{"Gt equal is strict", []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpGt, "5")}, "5", true, false},
		{"Lt equal is strict", []corev1.NodeSelectorRequirement{req(corev1.NodeSelectorOpLt, "5")}, "5", true, false},
		{"Gte missing", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpGte, "0")}, "", false, false},
		{"Lte not an integer", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpLte, "9")}, "big", true, false},
		{"Gte and Lte inside", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpGte, "3"), req(karpv1.NodeSelectorOpLte, "5")}, "3", true, true},
		{"Gte and Lte outside", []corev1.NodeSelectorRequirement{req(karpv1.NodeSelectorOpGte, "3"), req(karpv1.NodeSelectorOpLte, "5")}, "6", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := true
			for _, r := range tc.reqs {
				got = got && satisfies(r, tc.v, tc.present)
			}
			if got != tc.want {
				t.Errorf("satisfies(%v, %q, %v) = %v, want %v", tc.reqs, tc.v, tc.present, got, tc.want)
			}
		})
	}
}

func TestDriftOnInclusiveBound(t *testing.T) {
	pool := newPool("default")
	c := newCandidate("n1", pool, newClass())
	c.NodeClaim.Labels["karpenter.k8s.aws/instance-generation"] = "4"
	c.NodePool.Spec.Template.Spec.Requirements = append(c.NodePool.Spec.Template.Spec.Requirements,
		karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
			Key: "karpenter.k8s.aws/instance-generation", Operator: karpv1.NodeSelectorOpGte, Values: []string{"5"}}})
	if got := DriftReason(&c); !strings.Contains(got, "is not Gte [5]") {
		t.Fatalf("DriftReason = %q, want the Gte requirement named", got)
	}
}
