package kubeyaml

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
)

// LoadNodePools reads karpenter.sh/v1 NodePool documents. Cloud-provider
// NodeClass documents in the same file (EC2NodeClass and the like, from
// any group but karpenter.sh) are skipped; any other kind is an error.
func LoadNodePools(name string, r io.Reader) ([]*typesv1.NodePool, error) {
	pools, _, err := LoadNodePoolsWithSources(name, r)
	return pools, err
}

// LoadNodePoolsWithSources is LoadNodePools that also returns the document
// each NodePool came from.
func LoadNodePoolsWithSources(name string, r io.Reader) ([]*typesv1.NodePool, []Source, error) {
	docs, err := readDocuments(name, r)
	if err != nil {
		return nil, nil, err
	}
	var pools []*typesv1.NodePool
	var srcs []Source
	seen := map[string]Source{}
	for _, d := range docs {
		objs, err := objects(name, d)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range objs {
			group := o.hdr.APIVersion
			if i := strings.Index(group, "/"); i >= 0 {
				group = group[:i]
			}
			if strings.HasSuffix(o.hdr.Kind, "NodeClass") && group != karpv1.Group {
				continue
			}
			if o.hdr.Kind != karpv1.KindNodePool {
				return nil, nil, withSource(o.src, fmt.Errorf("unsupported kind %q (apiVersion %q): NodePool files hold karpenter.sh/v1 NodePools (and NodeClasses, which are ignored)", o.hdr.Kind, o.hdr.APIVersion))
			}
			if o.hdr.APIVersion != karpv1.APIVersion {
				return nil, nil, withSource(o.src, ferr("apiVersion", "unsupported %q: only %s NodePools are read", o.hdr.APIVersion, karpv1.APIVersion))
			}
			o.src.Namespace = ""
			np, err := convertNodePool(o)
			if err != nil {
				return nil, nil, err
			}
			if prev, ok := seen[np.Name]; ok {
				return nil, nil, withSource(o.src, fmt.Errorf("duplicate NodePool %s: already defined at %s", np.Name, prev))
			}
			seen[np.Name] = o.src
			pools = append(pools, np)
			srcs = append(srcs, o.src)
		}
	}
	return pools, srcs, nil
}

var budgetNodesRE = regexp.MustCompile(`^((100|[0-9]{1,2})%|[0-9]+)$`)

func convertNodePool(o object) (np *typesv1.NodePool, err error) {
	defer func() {
		if r := recover(); r != nil {
			np, err = nil, withSource(o.src, fmt.Errorf("internal error reading the document: %v", r))
		}
	}()
	var in karpv1.NodePool
	if err := decodeStrict(o, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, withSource(o.src, ferr("metadata.name", "required"))
	}
	out := &typesv1.NodePool{
		Name:        in.Name,
		Labels:      copyMap(in.Spec.Template.ObjectMeta.Labels),
		Annotations: copyMap(in.Spec.Template.ObjectMeta.Annotations),
	}
	if w := in.Spec.Weight; w != nil {
		if *w < 1 || *w > 100 {
			return nil, withSource(o.src, ferr("spec.weight", "must be between 1 and 100, not %d", *w))
		}
		out.Weight = *w
	}
	spec := &in.Spec.Template.Spec
	if out.Taints, err = convertTaints(spec.Taints, "spec.template.spec.taints"); err != nil {
		return nil, withSource(o.src, err)
	}
	if out.StartupTaints, err = convertTaints(spec.StartupTaints, "spec.template.spec.startupTaints"); err != nil {
		return nil, withSource(o.src, err)
	}
	if len(spec.Requirements) > 100 {
		return nil, withSource(o.src, ferr("spec.template.spec.requirements", "at most 100 requirements, not %d", len(spec.Requirements)))
	}
	for i, r := range spec.Requirements {
		p := fmt.Sprintf("spec.template.spec.requirements[%d]", i)
		req, err := requirement(r.NodeSelectorRequirement, p, requirementOps)
		if err != nil {
			return nil, withSource(o.src, err)
		}
		if isIntegerOp(string(r.Operator)) && strings.HasPrefix(r.Values[0], "-") {
			return nil, withSource(o.src, ferr(p+".values[0]", "operator %s needs a non-negative integer, not %q", r.Operator, r.Values[0]))
		}
		if r.MinValues != nil {
			mv := *r.MinValues
			if mv < 1 || mv > 50 {
				return nil, withSource(o.src, ferr(p+".minValues", "must be between 1 and 50, not %d", mv))
			}
			if r.Operator == "In" && len(r.Values) < mv {
				return nil, withSource(o.src, ferr(p+".minValues", "%d is more than the %d values listed", mv, len(r.Values)))
			}
			req.MinValues = int32(mv)
		}
		out.Requirements = append(out.Requirements, req)
	}
	if out.Limits, err = quantities(corev1.ResourceList(in.Spec.Limits), "spec.limits"); err != nil {
		return nil, withSource(o.src, err)
	}
	if out.Usage, err = quantities(in.Status.Resources, "status.resources"); err != nil {
		return nil, withSource(o.src, err)
	}
	switch in.Spec.Disruption.ConsolidationPolicy {
	case "", karpv1.ConsolidationPolicyWhenEmpty, karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, karpv1.ConsolidationPolicyBalanced:
	default:
		return nil, withSource(o.src, ferr("spec.disruption.consolidationPolicy", "unsupported value %q: use WhenEmpty, WhenEmptyOrUnderutilized or Balanced", in.Spec.Disruption.ConsolidationPolicy))
	}
	if in.Spec.Replicas != nil {
		return nil, withSource(o.src, ferr("spec.replicas", "static NodePools (replicas %d) are not provisioned by Flotilla yet; the NodePool launches nothing", *in.Spec.Replicas))
	}
	for i, b := range in.Spec.Disruption.Budgets {
		p := fmt.Sprintf("spec.disruption.budgets[%d]", i)
		if !budgetNodesRE.MatchString(b.Nodes) {
			return nil, withSource(o.src, ferr(p+".nodes", "%q is neither a count nor a percentage such as \"10%%\"", b.Nodes))
		}
		if (b.Schedule == nil) != (b.Duration == nil) {
			return nil, withSource(o.src, ferr(p, "schedule and duration must be set together"))
		}
		for j, r := range b.Reasons {
			switch r {
			case karpv1.DisruptionReasonUnderutilized, karpv1.DisruptionReasonEmpty, karpv1.DisruptionReasonDrifted:
			default:
				return nil, withSource(o.src, ferr(fmt.Sprintf("%s.reasons[%d]", p, j), "unsupported reason %q: use Underutilized, Empty or Drifted", r))
			}
		}
	}
	return out, nil
}

// UnhonoredFields lists what a NodePool sets that Flotilla accepts, as
// Karpenter's CRD does, but does not act on as Karpenter would, each with
// what Flotilla does instead. The watcher reports them in the NodePool's
// FieldsHonored condition; docs/migrating-from-karpenter.md lists them.
// (spec.replicas is not here: a static NodePool fails validation, so it is
// not Ready and launches nothing.)
func UnhonoredFields(np *karpv1.NodePool) []string {
	var out []string
	if np.Spec.Disruption.ConsolidationPolicy == karpv1.ConsolidationPolicyBalanced {
		out = append(out, "spec.disruption.consolidationPolicy: Balanced consolidates only empty nodes in Flotilla (the savings-per-disruption threshold is not implemented)")
	}
	return out
}
