package solver

// Matches reports whether labels satisfy the requirement, with Kubernetes'
// node selector semantics: NotIn and DoesNotExist hold for a missing label,
// Gt, Lt, Gte and Lte compare integers and fail for a missing or non-integer
// label.
func (r Requirement) Matches(labels map[string]string) bool {
	value, ok := labels[r.Key]
	return matchValue(&r, value, ok)
}

// Matches reports whether labels satisfy every requirement of the term. An
// empty term matches nothing, as in Kubernetes.
func (t NodeSelectorTerm) Matches(labels map[string]string) bool {
	if len(t.Requirements) == 0 {
		return false
	}
	return RequirementsMatch(t.Requirements, labels)
}

// RequirementsMatch reports whether labels satisfy all requirements (an
// empty list is satisfied).
func RequirementsMatch(reqs []Requirement, labels map[string]string) bool {
	for _, r := range reqs {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// TermsMatch reports whether labels satisfy at least one term. An empty
// list of terms places no constraint and matches.
func TermsMatch(terms []NodeSelectorTerm, labels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		if t.Matches(labels) {
			return true
		}
	}
	return false
}

// NodeSelectorMatches reports whether the node labels satisfy the pod's
// nodeSelector and required node affinity.
func (p *Pod) NodeSelectorMatches(labels map[string]string) bool {
	for k, v := range p.NodeSelector {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	return TermsMatch(p.RequiredNodeAffinity, labels)
}

// VolumesMatch reports whether every volume of the pod allows a node with
// these labels.
func (p *Pod) VolumesMatch(labels map[string]string) bool {
	for _, v := range p.Volumes {
		if !TermsMatch(v.Terms, labels) {
			return false
		}
	}
	return true
}

// Matches reports whether the selector selects labels. A nil selector
// selects nothing; an empty one selects everything.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		value, ok := labels[e.Key]
		switch e.Operator {
		case OpIn:
			if !ok || !contains(e.Values, value) {
				return false
			}
		case OpNotIn:
			if ok && contains(e.Values, value) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpDoesNotExist:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// ToleratesTaint reports whether the toleration tolerates the taint.
func (t Toleration) ToleratesTaint(taint Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key == "" {
		return t.Operator == "Exists"
	}
	if t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "Exists":
		return true
	case "", "Equal":
		return t.Value == taint.Value
	}
	return false
}

// Tolerates reports whether the pod tolerates the taint.
func (p *Pod) Tolerates(taint Taint) bool {
	for _, t := range p.Tolerations {
		if t.ToleratesTaint(taint) {
			return true
		}
	}
	return false
}

// ToleratesHardTaints reports whether the pod tolerates every NoSchedule and
// NoExecute taint in taints; PreferNoSchedule taints never block.
func (p *Pod) ToleratesHardTaints(taints []Taint) bool {
	for _, taint := range taints {
		if taint.Effect == EffectPreferNoSchedule {
			continue
		}
		if !p.Tolerates(taint) {
			return false
		}
	}
	return true
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// Selects reports whether the term, written on pod owner, selects pod other:
// other's namespace is one the term names (or owner's own when it names
// none), and other's labels match the selector extended by MatchLabelKeys
// (values taken from owner's labels, as In) and MismatchLabelKeys (NotIn).
func (t *PodAffinityTerm) Selects(owner, other *Pod, namespaces map[string]map[string]string) bool {
	if !t.selectsNamespace(owner, other.Namespace, namespaces) {
		return false
	}
	if !t.LabelSelector.Matches(other.Labels) {
		return false
	}
	for _, key := range t.MatchLabelKeys {
		if want, ok := owner.Labels[key]; ok {
			if have, ok := other.Labels[key]; !ok || have != want {
				return false
			}
		}
	}
	for _, key := range t.MismatchLabelKeys {
		if avoid, ok := owner.Labels[key]; ok {
			if have, ok := other.Labels[key]; ok && have == avoid {
				return false
			}
		}
	}
	return true
}

func (t *PodAffinityTerm) selectsNamespace(owner *Pod, ns string, namespaces map[string]map[string]string) bool {
	if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
		return ns == owner.Namespace
	}
	if contains(t.Namespaces, ns) {
		return true
	}
	return t.NamespaceSelector != nil && t.NamespaceSelector.Matches(namespaces[ns])
}

// Selects reports whether the spread constraint, written on pod owner,
// counts pod other: same namespace, and labels matching the selector
// extended by MatchLabelKeys with owner's values.
func (c *TopologySpreadConstraint) Selects(owner, other *Pod) bool {
	if other.Namespace != owner.Namespace || !c.LabelSelector.Matches(other.Labels) {
		return false
	}
	for _, key := range c.MatchLabelKeys {
		if want, ok := owner.Labels[key]; ok {
			if have, ok := other.Labels[key]; !ok || have != want {
				return false
			}
		}
	}
	return true
}
