package disruption

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	corev1 "k8s.io/api/core/v1"
)

// NodeClassHashVersion is the version of NodeClassHash's scheme, stamped as
// karpenter.k8s.aws/ec2nodeclass-hash-version next to the hash; like
// NodePoolHashVersion it differs from Karpenter's ("v4").
const NodeClassHashVersion = "flotilla-v1"

// nodeClassUnhashed are the EC2NodeClass spec fields NodeClassHash leaves
// out: the selector terms, whose effect is checked through the resolved
// status (for AMIs: the NodeClaim's image must still be among status.amis).
var nodeClassUnhashed = []string{"subnetSelectorTerms", "securityGroupSelectorTerms", "amiSelectorTerms", "capacityReservationSelectorTerms"}

// NodeClassHash hashes an EC2NodeClass spec for drift, as Karpenter does:
// everything but the selector terms. The result is a decimal string, as in
// the karpenter.k8s.aws/ec2nodeclass-hash annotation.
func NodeClassHash(nc *awsv1.EC2NodeClass) string {
	if nc == nil {
		return ""
	}
	b, err := json.Marshal(nc.Spec)
	if err != nil {
		return hashJSON(err.Error())
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return hashJSON(err.Error())
	}
	for _, k := range nodeClassUnhashed {
		delete(m, k)
	}
	return hashJSON(m)
}

// DriftReason says how the candidate drifted from its NodePool or
// EC2NodeClass, or "" if it did not: the NodePool template hash annotation
// differs, the EC2NodeClass hash annotation differs, its image is no longer
// among the EC2NodeClass's resolved AMIs, or its labels no longer satisfy the
// NodePool's requirements. Hash annotations stamped under another hash
// version are not compared.
func DriftReason(c *Candidate) string {
	nc := c.NodeClaim
	if np := c.NodePool; np != nil {
		if msg := hashDrift(nc.Annotations, karpv1.NodePoolHashAnnotationKey, karpv1.NodePoolHashVersionAnnotationKey,
			NodePoolHashVersion, NodePoolHash(np)); msg != "" {
			return "NodePool " + np.Name + " template changed (" + msg + ")"
		}
		if msg := requirementsDrift(nc.Labels, np.Spec.Template.Spec.Requirements); msg != "" {
			return "labels no longer satisfy NodePool " + np.Name + " requirements: " + msg
		}
	}
	if class := c.NodeClass; class != nil {
		if msg := hashDrift(nc.Annotations, karpv1.NodeClassHashAnnotationKey, karpv1.NodeClassHashVersionAnnotationKey,
			NodeClassHashVersion, NodeClassHash(class)); msg != "" {
			return "EC2NodeClass " + class.Name + " changed (" + msg + ")"
		}
		if msg := amiDrift(nc.Status.ImageID, class); msg != "" {
			return msg
		}
	}
	return ""
}

// hashDrift compares a stamped hash with the current one.
func hashDrift(annotations map[string]string, hashKey, versionKey, version, current string) string {
	stamped, ok := annotations[hashKey]
	if !ok {
		return ""
	}
	if v, ok := annotations[versionKey]; ok && v != version {
		return ""
	}
	if stamped == current {
		return ""
	}
	return fmt.Sprintf("%s %s, now %s", hashKey, stamped, current)
}

// amiDrift reports an image no longer among the class's resolved AMIs. With
// no image recorded or no AMIs resolved there is nothing to compare.
func amiDrift(imageID string, class *awsv1.EC2NodeClass) string {
	if imageID == "" || len(class.Status.AMIs) == 0 {
		return ""
	}
	ids := make([]string, 0, len(class.Status.AMIs))
	for _, a := range class.Status.AMIs {
		if a.ID == imageID {
			return ""
		}
		ids = append(ids, a.ID)
	}
	return fmt.Sprintf("image %s is no longer among EC2NodeClass %s AMIs (%s)", imageID, class.Name, strings.Join(ids, ", "))
}

// requirementsDrift checks the NodeClaim's labels against each requirement.
// A label the NodeClaim lacks fails In, Exists, Gt, Lt, Gte and Lte, except for
// well-known labels, which a NodeClaim may leave undefined.
func requirementsDrift(labels map[string]string, reqs []karpv1.NodeSelectorRequirementWithMinValues) string {
	for _, r := range reqs {
		v, ok := labels[r.Key]
		if !ok && wellKnown(r.Key) {
			continue
		}
		if !satisfies(r.NodeSelectorRequirement, v, ok) {
			if !ok {
				return fmt.Sprintf("%s is unset but must be %s %v", r.Key, r.Operator, r.Values)
			}
			return fmt.Sprintf("%s=%s is not %s %v", r.Key, v, r.Operator, r.Values)
		}
	}
	return ""
}

// satisfies evaluates one node selector requirement against a label value
// (present says whether the label exists).
func satisfies(r corev1.NodeSelectorRequirement, v string, present bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt, karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte:
		return present && len(r.Values) == 1 && compareInts(v, r.Values[0], r.Operator)
	default:
		return true
	}
}

func compareInts(v, bound string, op corev1.NodeSelectorOperator) bool {
	a, err1 := strconv.ParseInt(v, 10, 64)
	b, err2 := strconv.ParseInt(bound, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	switch op {
	case corev1.NodeSelectorOpGt:
		return a > b
	case corev1.NodeSelectorOpLt:
		return a < b
	case karpv1.NodeSelectorOpGte:
		return a >= b
	default: // Lte
		return a <= b
	}
}

// wellKnownLabels are node labels a NodeClaim may leave undefined without
// drifting: they come from the instance once it launches.
var wellKnownLabels = map[string]bool{
	corev1.LabelTopologyZone:       true,
	corev1.LabelTopologyRegion:     true,
	corev1.LabelInstanceTypeStable: true,
	corev1.LabelArchStable:         true,
	corev1.LabelOSStable:           true,
	corev1.LabelWindowsBuild:       true,
	karpv1.CapacityTypeLabelKey:    true,
	karpv1.NodePoolLabelKey:        true,
	"topology.k8s.aws/zone-id":     true,
	"karpenter.sh/nodepool-hash":   false,
}

func wellKnown(key string) bool {
	return wellKnownLabels[key] || strings.HasPrefix(key, "karpenter.k8s.aws/")
}
