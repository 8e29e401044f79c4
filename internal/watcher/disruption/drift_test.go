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
