package kubeyaml

import (
	"fmt"
	"sort"
	"strconv"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// convertPodSpec converts a pod spec to a typesv1.Pod without name,
// namespace, labels or owner (the caller sets those), checking it on the way.
// path is the spec's path in its document, such as spec.template.spec.
func convertPodSpec(spec *corev1.PodSpec, path string) (*typesv1.Pod, error) {
	p := &typesv1.Pod{}
	if len(spec.Containers) == 0 {
		return nil, ferr(path+".containers", "a pod needs at least one container")
	}
	var err error
	if p.Containers, err = convertContainers(spec.Containers, path+".containers", false); err != nil {
		return nil, err
	}
	init := make([]corev1.Container, len(spec.InitContainers))
	copy(init, spec.InitContainers)
	if p.InitContainers, err = convertContainers(init, path+".initContainers", true); err != nil {
		return nil, err
	}
	if p.Overhead, err = quantities(spec.Overhead, path+".overhead"); err != nil {
		return nil, err
	}
	if len(spec.NodeSelector) > 0 {
		p.NodeSelector = copyMap(spec.NodeSelector)
	}
	if err := convertAffinity(p, spec.Affinity, path+".affinity"); err != nil {
		return nil, err
	}
	if p.Tolerations, err = convertTolerations(spec.Tolerations, path); err != nil {
		return nil, err
	}
	for i, c := range spec.TopologySpreadConstraints {
		tsc, err := convertSpreadConstraint(c, fmt.Sprintf("%s.topologySpreadConstraints[%d]", path, i))
		if err != nil {
			return nil, err
		}
		p.TopologySpreadConstraints = append(p.TopologySpreadConstraints, tsc)
	}
	p.HostPorts = hostPorts(spec)
	if spec.Priority != nil {
		p.Priority = *spec.Priority
	}
	return p, nil
}

// convertAffinity sets p's node, pod and pod anti-affinity from a; path is
// a's path in its document.
func convertAffinity(p *typesv1.Pod, a *corev1.Affinity, path string) error {
	if a == nil {
		return nil
	}
	var err error
	if na := a.NodeAffinity; na != nil {
		if p.RequiredNodeAffinity, p.PreferredNodeAffinity, err = convertNodeAffinity(na, path+".nodeAffinity"); err != nil {
			return err
		}
	}
	if pa := a.PodAffinity; pa != nil {
		if p.PodAffinity, err = podAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, path+".podAffinity"); err != nil {
			return err
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		if p.PodAntiAffinity, err = podAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, path+".podAntiAffinity"); err != nil {
			return err
		}
	}
	return nil
}

// convertNodeAffinity converts the required and preferred terms of a node
// affinity; ap is its path in its document.
func convertNodeAffinity(na *corev1.NodeAffinity, ap string) (required []*typesv1.NodeSelectorTerm, preferred []*typesv1.PreferredSchedulingTerm, err error) {
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		rp := ap + ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
		if len(req.NodeSelectorTerms) == 0 {
			return nil, nil, ferr(rp, "must have at least one term")
		}
		if required, err = nodeSelectorTerms(req.NodeSelectorTerms, rp); err != nil {
			return nil, nil, err
		}
	}
	for i, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		pp := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", ap, i)
		if pt.Weight < 1 || pt.Weight > 100 {
			return nil, nil, ferr(pp+".weight", "must be between 1 and 100, not %d", pt.Weight)
		}
		term, err := nodeSelectorTerm(pt.Preference, pp+".preference")
		if err != nil {
			return nil, nil, err
		}
		preferred = append(preferred, &typesv1.PreferredSchedulingTerm{Weight: pt.Weight, Preference: term})
	}
	return required, preferred, nil
}

// convertTolerations checks and converts a pod's tolerations; path is the
// pod spec's path in its document.
func convertTolerations(ts []corev1.Toleration, path string) ([]*typesv1.Toleration, error) {
	var out []*typesv1.Toleration
	for i, t := range ts {
		tp := fmt.Sprintf("%s.tolerations[%d]", path, i)
		switch t.Operator {
		case "", corev1.TolerationOpEqual:
			if t.Key == "" {
				return nil, ferr(tp+".key", "an empty key requires operator Exists")
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				return nil, ferr(tp+".value", "must be empty when operator is Exists")
			}
		default:
			return nil, ferr(tp+".operator", "unsupported operator %q: use Equal or Exists", t.Operator)
		}
		if err := checkEffect(string(t.Effect), true, tp+".effect"); err != nil {
			return nil, err
		}
		out = append(out, &typesv1.Toleration{Key: t.Key, Operator: string(t.Operator), Value: t.Value, Effect: string(t.Effect)})
	}
	return out, nil
}

// convertSpreadConstraint checks and converts one topology spread
// constraint; cp is its path in its document.
func convertSpreadConstraint(c corev1.TopologySpreadConstraint, cp string) (*typesv1.TopologySpreadConstraint, error) {
	if c.MaxSkew < 1 {
		return nil, ferr(cp+".maxSkew", "must be at least 1, not %d", c.MaxSkew)
	}
	if c.TopologyKey == "" {
		return nil, ferr(cp+".topologyKey", "required")
	}
	switch c.WhenUnsatisfiable {
	case corev1.DoNotSchedule, corev1.ScheduleAnyway:
	case "":
		return nil, ferr(cp+".whenUnsatisfiable", "required: DoNotSchedule or ScheduleAnyway")
	default:
		return nil, ferr(cp+".whenUnsatisfiable", "unsupported value %q: use DoNotSchedule or ScheduleAnyway", c.WhenUnsatisfiable)
	}
	tsc := &typesv1.TopologySpreadConstraint{
		MaxSkew:           c.MaxSkew,
		TopologyKey:       c.TopologyKey,
		WhenUnsatisfiable: string(c.WhenUnsatisfiable),
		MatchLabelKeys:    copyStrings(c.MatchLabelKeys),
	}
	if c.MinDomains != nil {
		if *c.MinDomains < 1 {
			return nil, ferr(cp+".minDomains", "must be at least 1, not %d", *c.MinDomains)
		}
		if c.WhenUnsatisfiable != corev1.DoNotSchedule {
			return nil, ferr(cp+".minDomains", "may only be set with whenUnsatisfiable DoNotSchedule")
		}
		tsc.MinDomains = *c.MinDomains
	}
	if c.NodeAffinityPolicy != nil {
		if err := checkPolicy(string(*c.NodeAffinityPolicy), cp+".nodeAffinityPolicy"); err != nil {
			return nil, err
		}
		tsc.NodeAffinityPolicy = string(*c.NodeAffinityPolicy)
	}
	if c.NodeTaintsPolicy != nil {
		if err := checkPolicy(string(*c.NodeTaintsPolicy), cp+".nodeTaintsPolicy"); err != nil {
			return nil, err
		}
		tsc.NodeTaintsPolicy = string(*c.NodeTaintsPolicy)
	}
	var err error
	if tsc.LabelSelector, err = labelSelector(c.LabelSelector, cp+".labelSelector"); err != nil {
		return nil, err
	}
	return tsc, nil
}

func convertContainers(cs []corev1.Container, path string, init bool) ([]*typesv1.Container, error) {
	var out []*typesv1.Container
	for i, c := range cs {
		cp := fmt.Sprintf("%s[%d]", path, i)
		reqs, err := containerRequests(c.Resources, cp+".resources")
		if err != nil {
			return nil, err
		}
		tc := &typesv1.Container{Name: c.Name, Requests: reqs}
		if c.RestartPolicy != nil {
			if !init {
				return nil, ferr(cp+".restartPolicy", "may only be set on init containers")
			}
			if *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				return nil, ferr(cp+".restartPolicy", "unsupported value %q: only Always is allowed", *c.RestartPolicy)
			}
			tc.RestartPolicyAlways = true
		}
		out = append(out, tc)
	}
	return out, nil
}

// containerRequests returns a container's requests as kube-apiserver
// defaults them: a resource with a limit and no request requests its limit.
func containerRequests(r corev1.ResourceRequirements, path string) (map[string]string, error) {
	out := map[string]string{}
	for name, q := range r.Limits {
		if name == "" {
			return nil, ferr(path+".limits", "empty resource name")
		}
		if q.Sign() < 0 {
			return nil, ferr(path+".limits."+string(name), "must not be negative")
		}
		out[string(name)] = q.String()
	}
	for name, q := range r.Requests {
		if name == "" {
			return nil, ferr(path+".requests", "empty resource name")
		}
		if q.Sign() < 0 {
			return nil, ferr(path+".requests."+string(name), "must not be negative")
		}
		if lim, ok := r.Limits[name]; ok && q.Cmp(lim) > 0 {
			return nil, ferr(path+".requests."+string(name), "request %s exceeds limit %s", q.String(), lim.String())
		}
		out[string(name)] = q.String()
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func quantities(rl corev1.ResourceList, path string) (map[string]string, error) {
	if len(rl) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(rl))
	for name, q := range rl {
		if name == "" {
			return nil, ferr(path, "empty resource name")
		}
		if q.Sign() < 0 {
			return nil, ferr(path+"."+string(name), "must not be negative")
		}
		out[string(name)] = q.String()
	}
	return out, nil
}

func nodeSelectorTerms(terms []corev1.NodeSelectorTerm, path string) ([]*typesv1.NodeSelectorTerm, error) {
	out := make([]*typesv1.NodeSelectorTerm, 0, len(terms))
	for i, t := range terms {
		term, err := nodeSelectorTerm(t, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, term)
	}
	return out, nil
}

func nodeSelectorTerm(t corev1.NodeSelectorTerm, path string) (*typesv1.NodeSelectorTerm, error) {
	if len(t.MatchFields) > 0 {
		// matchFields can only name metadata.name: a node that does not
		// exist yet has no name to match, so keep the term, unsatisfiable for
		// new nodes, as an impossible requirement on the hostname.
		for i, r := range t.MatchFields {
			if r.Key != "metadata.name" {
				return nil, ferr(fmt.Sprintf("%s.matchFields[%d].key", path, i), "unsupported field %q: only metadata.name", r.Key)
			}
		}
	}
	term := &typesv1.NodeSelectorTerm{}
	for i, r := range t.MatchExpressions {
		req, err := requirement(r, fmt.Sprintf("%s.matchExpressions[%d]", path, i), nodeSelectorOps)
		if err != nil {
			return nil, err
		}
		term.MatchExpressions = append(term.MatchExpressions, req)
	}
	for i, r := range t.MatchFields {
		req, err := requirement(r, fmt.Sprintf("%s.matchFields[%d]", path, i), nodeSelectorOps)
		if err != nil {
			return nil, err
		}
		// metadata.name of a node is its kubernetes.io/hostname label in
		// every cluster Karpenter manages.
		req.Key = "kubernetes.io/hostname"
		term.MatchExpressions = append(term.MatchExpressions, req)
	}
	return term, nil
}

// operators is a set of selector operators, each a superset of the one
// before.
type operators int

const (
	// labelOps are a label selector's: In, NotIn, Exists, DoesNotExist.
	labelOps operators = iota
	// nodeSelectorOps add Gt and Lt, as Kubernetes node selectors do.
	nodeSelectorOps
	// requirementOps add Gte and Lte (inclusive bounds), which Karpenter
	// (v1.10+) allows in NodePool and NodeClaim requirements only.
	requirementOps
)

// requirement converts and checks a node selector requirement whose
// operator is one of ops.
func requirement(r corev1.NodeSelectorRequirement, path string, ops operators) (*typesv1.Requirement, error) {
	if r.Key == "" {
		return nil, ferr(path+".key", "required")
	}
	if err := checkOperator(string(r.Operator), len(r.Values), path, ops); err != nil {
		return nil, err
	}
	if isIntegerOp(string(r.Operator)) {
		if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			return nil, ferr(path+".values[0]", "operator %s needs an integer value, not %q", r.Operator, r.Values[0])
		}
	}
	return &typesv1.Requirement{Key: r.Key, Operator: string(r.Operator), Values: copyStrings(r.Values)}, nil
}

// isIntegerOp reports whether op takes one integer value.
func isIntegerOp(op string) bool {
	switch op {
	case "Gt", "Lt", karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte:
		return true
	}
	return false
}

// checkOperator checks that op is one of ops and takes n values.
func checkOperator(op string, n int, path string, ops operators) error {
	allowed := ops >= requirementOps || (ops >= nodeSelectorOps && (op == "Gt" || op == "Lt"))
	switch {
	case op == "":
		return ferr(path+".operator", "required")
	case op == "In" || op == "NotIn":
		if n == 0 {
			return ferr(path+".values", "operator %s needs at least one value", op)
		}
	case op == "Exists" || op == "DoesNotExist":
		if n != 0 {
			return ferr(path+".values", "operator %s takes no values, got %d", op, n)
		}
	case isIntegerOp(op) && allowed:
		if n != 1 {
			return ferr(path+".values", "operator %s takes exactly one value, got %d", op, n)
		}
	default:
		return ferr(path+".operator", "unsupported operator %q: use %s", op, opNames[ops])
	}
	return nil
}

var opNames = map[operators]string{
	labelOps:        "In, NotIn, Exists or DoesNotExist",
	nodeSelectorOps: "In, NotIn, Exists, DoesNotExist, Gt or Lt",
	requirementOps:  "In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte or Lte",
}

func labelSelector(s *metav1.LabelSelector, path string) (*typesv1.LabelSelector, error) {
	if s == nil {
		return nil, nil
	}
	out := &typesv1.LabelSelector{}
	if len(s.MatchLabels) > 0 {
		out.MatchLabels = copyMap(s.MatchLabels)
	}
	for i, e := range s.MatchExpressions {
		ep := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		if e.Key == "" {
			return nil, ferr(ep+".key", "required")
		}
		if err := checkOperator(string(e.Operator), len(e.Values), ep, labelOps); err != nil {
			return nil, err
		}
		out.MatchExpressions = append(out.MatchExpressions, &typesv1.LabelSelectorRequirement{Key: e.Key, Operator: string(e.Operator), Values: copyStrings(e.Values)})
	}
	return out, nil
}

func podAffinity(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm, path string) (*typesv1.PodAffinity, error) {
	if len(req) == 0 && len(pref) == 0 {
		return nil, nil
	}
	out := &typesv1.PodAffinity{}
	for i, t := range req {
		term, err := podAffinityTerm(t, fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out.Required = append(out.Required, term)
	}
	for i, w := range pref {
		wp := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", path, i)
		if w.Weight < 1 || w.Weight > 100 {
			return nil, ferr(wp+".weight", "must be between 1 and 100, not %d", w.Weight)
		}
		term, err := podAffinityTerm(w.PodAffinityTerm, wp+".podAffinityTerm")
		if err != nil {
			return nil, err
		}
		out.Preferred = append(out.Preferred, &typesv1.WeightedPodAffinityTerm{Weight: w.Weight, PodAffinityTerm: term})
	}
	return out, nil
}

func podAffinityTerm(t corev1.PodAffinityTerm, path string) (*typesv1.PodAffinityTerm, error) {
	if t.TopologyKey == "" {
		return nil, ferr(path+".topologyKey", "required")
	}
	out := &typesv1.PodAffinityTerm{
		TopologyKey:       t.TopologyKey,
		Namespaces:        copyStrings(t.Namespaces),
		MatchLabelKeys:    copyStrings(t.MatchLabelKeys),
		MismatchLabelKeys: copyStrings(t.MismatchLabelKeys),
	}
	var err error
	if out.LabelSelector, err = labelSelector(t.LabelSelector, path+".labelSelector"); err != nil {
		return nil, err
	}
	if out.NamespaceSelector, err = labelSelector(t.NamespaceSelector, path+".namespaceSelector"); err != nil {
		return nil, err
	}
	return out, nil
}

// hostPorts lists the host ports of the pod's containers and sidecars. With
// hostNetwork every container port is a host port, as the API server
// defaults it.
func hostPorts(spec *corev1.PodSpec) []*typesv1.HostPort {
	var out []*typesv1.HostPort
	add := func(cs []corev1.Container, sidecarsOnly bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, port := range c.Ports {
				hp := port.HostPort
				if hp == 0 && spec.HostNetwork {
					hp = port.ContainerPort
				}
				if hp <= 0 {
					continue
				}
				proto := string(port.Protocol)
				if proto == "" {
					proto = string(corev1.ProtocolTCP)
				}
				out = append(out, &typesv1.HostPort{Port: hp, Protocol: proto, HostIp: port.HostIP})
			}
		}
	}
	add(spec.InitContainers, true)
	add(spec.Containers, false)
	return out
}

func convertTaints(ts []corev1.Taint, path string) ([]*typesv1.Taint, error) {
	var out []*typesv1.Taint
	for i, t := range ts {
		tp := fmt.Sprintf("%s[%d]", path, i)
		if t.Key == "" {
			return nil, ferr(tp+".key", "required")
		}
		if err := checkEffect(string(t.Effect), false, tp+".effect"); err != nil {
			return nil, err
		}
		out = append(out, &typesv1.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	return out, nil
}

func checkEffect(e string, emptyOK bool, path string) error {
	switch e {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
		return nil
	case "":
		if emptyOK {
			return nil
		}
		return ferr(path, "required: NoSchedule, PreferNoSchedule or NoExecute")
	}
	return ferr(path, "unsupported effect %q: use NoSchedule, PreferNoSchedule or NoExecute", e)
}

func checkPolicy(p, path string) error {
	if p == "Honor" || p == "Ignore" {
		return nil
	}
	return ferr(path, "unsupported policy %q: use Honor or Ignore", p)
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
