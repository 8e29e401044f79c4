package audit

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// MinSpotInstanceTypes is how many instance types a Spot NodePool should
// allow at least, as Karpenter's Spot guidance asks.
const MinSpotInstanceTypes = 15

// LabelInstanceType is the well-known instance type label.
const LabelInstanceType = corev1.LabelInstanceTypeStable

func nodePoolObject(np *karpv1.NodePool) Object {
	return Object{Kind: karpv1.KindNodePool, Name: np.Name}
}

func nodeClassObject(nc *awsv1.EC2NodeClass) Object {
	return Object{Kind: awsv1.KindEC2NodeClass, Name: nc.Name}
}

const (
	amiWhy = "An unpinned AMI changes under the cluster: every new AMI release drifts all nodes onto an image nobody has tested with these workloads, and a faulty release reaches production on its own."
	amiFix = "Pin the AMI in spec.amiSelectorTerms: an alias with a version (alias: al2023@v20240807), or AMI IDs. Roll newer versions through a test cluster first, then bump the pin."
)

// checkAMIPinned flags EC2NodeClasses whose AMI follows the latest release:
// an alias ending in @latest (or without a version), an SSM parameter that
// tracks the recommended image, a name pattern with wildcards (the newest
// match wins), or an amiFamily without amiSelectorTerms.
func checkAMIPinned(in *Inputs, r *Report) {
	for i := range in.EC2NodeClasses {
		nc := &in.EC2NodeClasses[i]
		for _, msg := range unpinnedAMIs(nc) {
			r.add(Finding{Check: CheckAMIPinned, Severity: SeverityRequired, Object: nodeClassObject(nc), Message: msg, Why: amiWhy, Fix: amiFix})
		}
	}
}

func unpinnedAMIs(nc *awsv1.EC2NodeClass) []string {
	terms := nc.Spec.AMISelectorTerms
	if len(terms) == 0 {
		if nc.Spec.AMIFamily != nil && *nc.Spec.AMIFamily != "" {
			return []string{fmt.Sprintf("amiFamily %s without amiSelectorTerms selects the latest AMI of the family", *nc.Spec.AMIFamily)}
		}
		return []string{"no amiSelectorTerms: the AMI is not pinned"}
	}
	var out []string
	for i, t := range terms {
		switch {
		case t.Alias != "":
			family, ver, ok := strings.Cut(t.Alias, "@")
			if !ok || ver == "" || strings.EqualFold(ver, "latest") {
				out = append(out, fmt.Sprintf("amiSelectorTerms[%d].alias %q follows the latest %s AMI", i, t.Alias, family))
			}
		case t.SSMParameter != "":
			p := strings.ToLower(t.SSMParameter)
			if strings.Contains(p, "recommended") || strings.Contains(p, "latest") {
				out = append(out, fmt.Sprintf("amiSelectorTerms[%d].ssmParameter %q tracks the latest AMI", i, t.SSMParameter))
			}
		case t.ID == "" && strings.ContainsAny(t.Name, "*?"):
			out = append(out, fmt.Sprintf("amiSelectorTerms[%d].name %q is a pattern: the newest matching AMI is used", i, t.Name))
		}
	}
	return out
}

const (
	overlapsWhy = "When two NodePools of the same weight can both take a pod, which one launches its node is arbitrary: capacity type, instance families, limits and disruption settings change from one launch to the next."
	overlapFix  = "Make the NodePools mutually exclusive (distinct requirements, template labels the pods select, or taints), or give the preferred one a higher spec.weight."
)

// checkNodePoolOverlap flags pairs of NodePools with the same weight whose
// requirements (and template labels) have a common node and whose
// NoSchedule/NoExecute taints are the same, so one pod can match both.
func checkNodePoolOverlap(in *Inputs, r *Report) {
	pools := sortedPools(in.NodePools)
	reqs := make([]requirementSet, len(pools))
	for i, np := range pools {
		reqs[i] = poolRequirements(np)
	}
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			a, b := pools[i], pools[j]
			if weight(a) != weight(b) || taintKey(a) != taintKey(b) || !reqs[i].compatible(reqs[j]) {
				continue
			}
			r.add(Finding{
				Check: CheckNodePoolOverlap, Severity: SeverityHigh, Object: nodePoolObject(a),
				Message: fmt.Sprintf("can match the same pods as NodePool %s with the same weight %d", b.Name, weight(a)),
				Why:     overlapsWhy, Fix: overlapFix,
			})
		}
	}
}

func sortedPools(in []karpv1.NodePool) []*karpv1.NodePool {
	out := make([]*karpv1.NodePool, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func weight(np *karpv1.NodePool) int32 {
	if np.Spec.Weight == nil {
		return 0
	}
	return *np.Spec.Weight
}

// taintKey renders a NodePool's scheduling taints in a canonical order.
func taintKey(np *karpv1.NodePool) string {
	var parts []string
	for _, t := range np.Spec.Template.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			parts = append(parts, t.Key+"="+t.Value+":"+string(t.Effect))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

const (
	spotWhy = "Spot capacity of one instance type in one zone can run out or be reclaimed all at once. With few types to choose from, launches fail over to on-demand or not at all, and interruptions hit many nodes together."
)

// checkSpotDiversity flags Spot NodePools that allow too few instance
// types. Without an instance catalog, the rule is conservative: it counts
// what the requirements name explicitly. A NodePool is flagged when
// node.kubernetes.io/instance-type In lists fewer than MinSpotInstanceTypes
// types, when instance-family In times instance-size In gives fewer, or when
// it allows a single instance family and also restricts the size
// (instance-size, instance-cpu or instance-memory).
func checkSpotDiversity(in *Inputs, r *Report) {
	for _, np := range sortedPools(in.NodePools) {
		if !allowsSpot(np) {
			continue
		}
		if msg := narrowSpot(poolRequirements(np)); msg != "" {
			r.add(Finding{
				Check: CheckSpotDiversity, Severity: SeverityHigh, Object: nodePoolObject(np), Message: msg, Why: spotWhy,
				Fix: fmt.Sprintf("Allow at least %d instance types: constrain by instance category, generation, CPU or memory ranges instead of listing types, add families and sizes, or set minValues on the instance-type requirement.", MinSpotInstanceTypes),
			})
		}
	}
}

func narrowSpot(rs requirementSet) string {
	if s := rs[LabelInstanceType]; s != nil {
		if types := s.allowedIn(); types != nil && len(types) < MinSpotInstanceTypes {
			return fmt.Sprintf("allows Spot but only %d instance types (%s); at least %d are advised", len(types), strings.Join(types, ", "), MinSpotInstanceTypes)
		}
	}
	fam := rs[awsv1.LabelInstanceFamily]
	if fam == nil || fam.allowedIn() == nil {
		return ""
	}
	families := fam.allowedIn()
	if size := rs[awsv1.LabelInstanceSize]; size != nil && size.allowedIn() != nil {
		if n := len(families) * len(size.allowedIn()); n < MinSpotInstanceTypes {
			return fmt.Sprintf("allows Spot but at most %d instance types (%d families times %d sizes); at least %d are advised", n, len(families), len(size.allowedIn()), MinSpotInstanceTypes)
		}
	}
	if len(families) == 1 {
		for _, k := range []string{awsv1.LabelInstanceSize, awsv1.LabelInstanceCPU, awsv1.LabelInstanceMemory} {
			if rs[k] != nil {
				return fmt.Sprintf("allows Spot from the single instance family %s, further narrowed by %s", families[0], k)
			}
		}
	}
	return ""
}

const (
	limitsWhy = "Without limits a NodePool launches whatever the pending pods ask for: a runaway Deployment, a bad HPA target or a retry loop turns into an unbounded EC2 bill."
	limitsFix = "Set spec.limits (at least cpu and memory) to the most the NodePool should ever run; Karpenter stops launching from it at the limit."
)

// checkNodePoolLimits flags NodePools without spec.limits.
func checkNodePoolLimits(in *Inputs, r *Report) {
	for _, np := range sortedPools(in.NodePools) {
		if len(np.Spec.Limits) == 0 {
			r.add(Finding{Check: CheckNodePoolLimits, Severity: SeverityHigh, Object: nodePoolObject(np), Message: "no spec.limits", Why: limitsWhy, Fix: limitsFix})
		}
	}
}
