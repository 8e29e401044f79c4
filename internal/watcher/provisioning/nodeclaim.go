package provisioning

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// NodeClaim builds the NodeClaim of a planned claim from its NodePool and
// EC2NodeClass: requirements narrowed by the plan (instance types cheapest
// first), the template's labels, annotations, taints and timing, the
// resources the plan needs, and the NodePool and class hashes that drift
// detection compares. Like Karpenter's, it has no owner reference. Its name
// is set by Create.
func NodeClaim(planned *typesv1.PlannedNodeClaim, np *karpv1.NodePool, nc *awsv1.EC2NodeClass) (*karpv1.NodeClaim, error) {
	tmpl := np.Spec.Template
	labels := map[string]string{}
	for k, v := range tmpl.ObjectMeta.Labels {
		labels[k] = v
	}
	labels[karpv1.NodePoolLabelKey] = np.Name
	annotations := map[string]string{}
	for k, v := range tmpl.ObjectMeta.Annotations {
		annotations[k] = v
	}
	annotations[karpv1.NodePoolHashAnnotationKey] = disruption.NodePoolHash(np)
	annotations[karpv1.NodePoolHashVersionAnnotationKey] = disruption.NodePoolHashVersion
	if nc != nil {
		annotations[karpv1.NodeClassHashAnnotationKey] = disruption.NodeClassHash(nc)
		annotations[karpv1.NodeClassHashVersionAnnotationKey] = disruption.NodeClassHashVersion
	}
	requests := corev1.ResourceList{}
	for k, v := range planned.GetRequests() {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("planned request %s=%q: %w", k, v, err)
		}
		requests[corev1.ResourceName(k)] = q
	}
	claim := &karpv1.NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
		Spec: karpv1.NodeClaimSpec{
			Taints:                 tmpl.Spec.Taints,
			StartupTaints:          tmpl.Spec.StartupTaints,
			Requirements:           requirements(planned, np.Name),
			Resources:              karpv1.ResourceRequirements{Requests: requests},
			NodeClassRef:           tmpl.Spec.NodeClassRef,
			TerminationGracePeriod: tmpl.Spec.TerminationGracePeriod,
			ExpireAfter:            tmpl.Spec.ExpireAfter,
		},
	}
	return claim, nil
}

// requirements are the plan's requirements, with the instance type
// requirement replaced by the plan's options (cheapest first) and the
// NodePool's label required.
func requirements(planned *typesv1.PlannedNodeClaim, pool string) []karpv1.NodeSelectorRequirementWithMinValues {
	var out []karpv1.NodeSelectorRequirementWithMinValues
	options := planned.GetInstanceTypeOptions()
	if len(options) == 0 && planned.GetInstanceType() != "" {
		options = []string{planned.GetInstanceType()}
	}
	for _, r := range planned.GetRequirements() {
		if r.GetKey() == karpv1.NodePoolLabelKey || (r.GetKey() == corev1.LabelInstanceTypeStable && len(options) > 0) {
			continue
		}
		req := karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
			Key: r.GetKey(), Operator: corev1.NodeSelectorOperator(r.GetOperator()), Values: r.GetValues(),
		}}
		if mv := int(r.GetMinValues()); mv > 0 {
			req.MinValues = &mv
		}
		out = append(out, req)
	}
	out = append(out, karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
		Key: karpv1.NodePoolLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{pool},
	}})
	if len(options) > 0 {
		out = append(out, karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
			Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: options,
		}})
	}
	return out
}

// Create names the claim <nodepool>-<5 random characters> and creates it,
// drawing another name on a collision.
func Create(ctx context.Context, c client.Client, claim *karpv1.NodeClaim) error {
	pool := claim.Labels[karpv1.NodePoolLabelKey]
	for range 5 {
		claim.Name = pool + "-" + randomSuffix()
		err := c.Create(ctx, claim)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create nodeclaim %s: %w", claim.Name, err)
		}
		claim.ResourceVersion = ""
	}
	return fmt.Errorf("create nodeclaim for nodepool %s: no free name after 5 tries", pool)
}

// randomSuffix is 5 random characters of [a-z2-7] (crypto/rand.Text is
// base32 and never fails).
func randomSuffix() string {
	return strings.ToLower(rand.Text()[:5])
}

// Planned turns a NodeClaim of a consolidation replacement (one instance
// type, zone and capacity type) into a planned claim for NodeClaim.
func Planned(tc *typesv1.NodeClaim) *typesv1.PlannedNodeClaim {
	p := &typesv1.PlannedNodeClaim{
		NodePool: tc.GetNodePool(), InstanceType: tc.GetInstanceType(), Zone: tc.GetZone(), CapacityType: tc.GetCapacityType(),
		PricePerHour: tc.GetPricePerHour(), Labels: tc.GetLabels(), Taints: tc.GetTaints(),
	}
	if tc.GetInstanceType() != "" {
		p.InstanceTypeOptions = []string{tc.GetInstanceType()}
	}
	if tc.GetZone() != "" {
		p.Requirements = append(p.Requirements, &typesv1.Requirement{Key: corev1.LabelTopologyZone, Operator: "In", Values: []string{tc.GetZone()}})
	}
	if tc.GetCapacityType() != "" {
		p.Requirements = append(p.Requirements, &typesv1.Requirement{Key: karpv1.CapacityTypeLabelKey, Operator: "In", Values: []string{tc.GetCapacityType()}})
	}
	return p
}
