package audit

import (
	"math"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// valueSet is what one label key may hold on a node, after every
// requirement on that key (they are ANDed).
type valueSet struct {
	exists    bool            // a value is required (In, Exists, Gt, Lt, Gte, Lte)
	notExists bool            // the label must be absent (DoesNotExist)
	in        map[string]bool // nil: any value
	notIn     map[string]bool
	gt, lt    *int64
}

// add narrows the set by one requirement. A requirement with an unknown
// operator or a non-integer Gt/Lt bound leaves the set as it is, so that the
// checks err on the side of "could match".
func (s *valueSet) add(op corev1.NodeSelectorOperator, values []string) {
	switch op {
	case corev1.NodeSelectorOpIn:
		s.exists = true
		next := map[string]bool{}
		for _, v := range values {
			if s.in == nil || s.in[v] {
				next[v] = true
			}
		}
		s.in = next
	case corev1.NodeSelectorOpNotIn:
		if s.notIn == nil {
			s.notIn = map[string]bool{}
		}
		for _, v := range values {
			s.notIn[v] = true
		}
	case corev1.NodeSelectorOpExists:
		s.exists = true
	case corev1.NodeSelectorOpDoesNotExist:
		s.notExists = true
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt, karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte:
		if len(values) != 1 {
			return
		}
		n, err := strconv.ParseInt(values[0], 10, 64)
		if err != nil {
			return
		}
		s.exists = true
		// On integers Gte n is Gt n-1 and Lte n is Lt n+1.
		switch op {
		case karpv1.NodeSelectorOpGte:
			if n == math.MinInt64 {
				return
			}
			op, n = corev1.NodeSelectorOpGt, n-1
		case karpv1.NodeSelectorOpLte:
			if n == math.MaxInt64 {
				return
			}
			op, n = corev1.NodeSelectorOpLt, n+1
		}
		if op == corev1.NodeSelectorOpGt && (s.gt == nil || n > *s.gt) {
			s.gt = &n
		}
		if op == corev1.NodeSelectorOpLt && (s.lt == nil || n < *s.lt) {
			s.lt = &n
		}
	}
}

// intersect returns the set of values both s and o allow.
func (s *valueSet) intersect(o *valueSet) *valueSet {
	out := &valueSet{exists: s.exists || o.exists, notExists: s.notExists || o.notExists}
	for _, src := range []*valueSet{s, o} {
		if src.in != nil {
			out.add(corev1.NodeSelectorOpIn, keys(src.in))
		}
		if len(src.notIn) > 0 {
			out.add(corev1.NodeSelectorOpNotIn, keys(src.notIn))
		}
		if src.gt != nil {
			out.add(corev1.NodeSelectorOpGt, []string{strconv.FormatInt(*src.gt, 10)})
		}
		if src.lt != nil {
			out.add(corev1.NodeSelectorOpLt, []string{strconv.FormatInt(*src.lt, 10)})
		}
	}
	return out
}

// allows reports whether a node label of value v satisfies the set.
func (s *valueSet) allows(v string) bool {
	if s.notExists || s.notIn[v] || (s.in != nil && !s.in[v]) {
		return false
	}
	if s.gt == nil && s.lt == nil {
		return true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return false
	}
	return (s.gt == nil || n > *s.gt) && (s.lt == nil || n < *s.lt)
}

// empty reports whether no node can satisfy the set.
func (s *valueSet) empty() bool {
	if s.exists && s.notExists {
		return true
	}
	if s.in != nil {
		return len(s.allowedIn()) == 0
	}
	if s.gt != nil && s.lt != nil {
		return *s.lt-*s.gt < 2
	}
	return false
}

// allowedIn lists the In values the rest of the set allows, sorted; nil
// when the set has no In list.
func (s *valueSet) allowedIn() []string {
	if s.in == nil {
		return nil
	}
	out := []string{}
	for _, v := range keys(s.in) {
		if s.allows(v) {
			out = append(out, v)
		}
	}
	return out
}

// requirementSet maps label keys to what a NodePool's nodes may carry.
type requirementSet map[string]*valueSet

// poolRequirements is what a NodePool's nodes may carry: its requirements,
// its template labels (exact values), and Karpenter's default capacity type
// (on-demand) when the NodePool does not name one.
func poolRequirements(np *karpv1.NodePool) requirementSet {
	rs := requirementSet{}
	for _, r := range np.Spec.Template.Spec.Requirements {
		rs.get(r.Key).add(r.Operator, r.Values)
	}
	for k, v := range np.Spec.Template.ObjectMeta.Labels {
		rs.get(k).add(corev1.NodeSelectorOpIn, []string{v})
	}
	if rs[karpv1.CapacityTypeLabelKey] == nil {
		rs.get(karpv1.CapacityTypeLabelKey).add(corev1.NodeSelectorOpIn, []string{karpv1.CapacityTypeOnDemand})
	}
	return rs
}

// compatible reports whether some node could satisfy both sets: every key
// both constrain has a common value.
func (rs requirementSet) compatible(o requirementSet) bool {
	for k, a := range rs {
		if b, ok := o[k]; ok && a.intersect(b).empty() {
			return false
		}
	}
	return true
}

// allowsSpot reports whether a NodePool may launch Spot capacity.
func allowsSpot(np *karpv1.NodePool) bool {
	return poolRequirements(np)[karpv1.CapacityTypeLabelKey].allows(karpv1.CapacityTypeSpot)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
