package solver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// view is the labels a node has or will have, assembled from parts so that
// the solver never builds a map per (instance type, offering): fixed labels,
// the instance type's labels, the offering's zone and capacity type, and
// free keys whose value a NodePool leaves open among a few values.
type view struct {
	base map[string]string
	it   map[string]string
	zone string
	ct   string
	free map[string][]string
}

func (v *view) get(key string) (string, bool) {
	if x, ok := v.base[key]; ok {
		return x, true
	}
	switch key {
	case LabelZone:
		if v.zone != "" {
			return v.zone, true
		}
	case LabelCapacityType:
		if v.ct != "" {
			return v.ct, true
		}
	}
	x, ok := v.it[key]
	return x, ok
}

// matchValue is Requirement.Matches for one label value (ok: present).
func matchValue(r *Requirement, value string, ok bool) bool {
	switch r.Operator {
	case OpIn:
		return ok && contains(r.Values, value)
	case OpNotIn:
		return !ok || !contains(r.Values, value)
	case OpExists:
		return ok
	case OpDoesNotExist:
		return !ok
	case OpGt, OpLt, OpGte, OpLte:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(value, 10, 64)
		bound, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		return compareBound(r.Operator, have, bound)
	}
	return false
}

// compareBound applies an integer operator: Gt and Lt are strict, Gte and
// Lte inclusive.
func compareBound(op Operator, have, bound int64) bool {
	switch op {
	case OpGt:
		return have > bound
	case OpLt:
		return have < bound
	case OpGte:
		return have >= bound
	case OpLte:
		return have <= bound
	}
	return false
}

// holds reports whether r can hold on the node: for a free key, whether
// some value still open satisfies it.
func (v *view) holds(r *Requirement) bool {
	if x, ok := v.get(r.Key); ok {
		return matchValue(r, x, true)
	}
	if dom, ok := v.free[r.Key]; ok {
		for _, x := range dom {
			if matchValue(r, x, true) {
				return true
			}
		}
		return false
	}
	return matchValue(r, "", false)
}

func (v *view) holdsAll(reqs []Requirement) bool {
	for i := range reqs {
		if !v.holds(&reqs[i]) {
			return false
		}
	}
	return true
}

// firstTerm is the index of the first term that holds, -1 if none; terms
// are ORed and an empty list is no constraint (-2).
func (v *view) firstTerm(terms []NodeSelectorTerm) int {
	if len(terms) == 0 {
		return -2
	}
	for i := range terms {
		if len(terms[i].Requirements) > 0 && v.holdsAll(terms[i].Requirements) {
			return i
		}
	}
	return -1
}

// nodeReqs is everything a pod asks of a node's labels: nodeSelector,
// required node affinity terms (ORed) and volume topologies (each ORed).
type nodeReqs struct {
	selector []Requirement
	terms    []NodeSelectorTerm
	volumes  [][]NodeSelectorTerm
	key      string
}

func newNodeReqs(selector map[string]string, terms []NodeSelectorTerm, volumes []VolumeTopology) *nodeReqs {
	n := &nodeReqs{terms: terms}
	keys := make([]string, 0, len(selector))
	for k := range selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n.selector = append(n.selector, Requirement{Key: k, Operator: OpIn, Values: []string{selector[k]}})
	}
	for _, vol := range volumes {
		if len(vol.Terms) > 0 {
			n.volumes = append(n.volumes, vol.Terms)
		}
	}
	var b strings.Builder
	writeReqs(&b, n.selector)
	b.WriteString("|")
	writeTerms(&b, n.terms)
	for _, vt := range n.volumes {
		b.WriteString("|v")
		writeTerms(&b, vt)
	}
	n.key = b.String()
	return n
}

func writeReqs(b *strings.Builder, reqs []Requirement) {
	for _, r := range reqs {
		fmt.Fprintf(b, "%q%s%q;", r.Key, r.Operator, r.Values)
	}
}

func writeTerms(b *strings.Builder, terms []NodeSelectorTerm) {
	for _, t := range terms {
		b.WriteString("(")
		writeReqs(b, t.Requirements)
		b.WriteString(")")
	}
}

func (n *nodeReqs) holds(v *view) bool {
	if !v.holdsAll(n.selector) {
		return false
	}
	if v.firstTerm(n.terms) == -1 {
		return false
	}
	for _, vt := range n.volumes {
		if v.firstTerm(vt) == -1 {
			return false
		}
	}
	return true
}

// matches is holds for a node whose labels are all known.
func (n *nodeReqs) matches(labels map[string]string) bool {
	return n.holds(&view{base: labels})
}

// narrowFree returns v.free narrowed by the requirements the pod puts on
// free keys (using the first term that holds when terms are ORed); it
// returns v.free itself when nothing changes.
func (n *nodeReqs) narrowFree(v *view) map[string][]string {
	if len(v.free) == 0 {
		return v.free
	}
	out := v.free
	copied := false
	apply := func(reqs []Requirement) {
		for i := range reqs {
			r := &reqs[i]
			dom, ok := out[r.Key]
			if !ok {
				continue
			}
			var kept []string
			for _, x := range dom {
				if matchValue(r, x, true) {
					kept = append(kept, x)
				}
			}
			if len(kept) == len(dom) {
				continue
			}
			if !copied {
				out = copyFree(out)
				copied = true
			}
			out[r.Key] = kept
		}
	}
	apply(n.selector)
	w := *v
	w.free = out
	if i := w.firstTerm(n.terms); i >= 0 {
		apply(n.terms[i].Requirements)
	}
	for _, vt := range n.volumes {
		w.free = out
		if i := w.firstTerm(vt); i >= 0 {
			apply(vt[i].Requirements)
		}
	}
	return out
}

func copyFree(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Input validation: Solve refuses problems whose meaning is undefined.

func validateRequirement(r Requirement, where string) error {
	switch r.Operator {
	case OpIn, OpNotIn:
		if len(r.Values) == 0 {
			return fmt.Errorf("%s: requirement %q %s needs values: %w", where, r.Key, r.Operator, ErrInvalidProblem)
		}
	case OpExists, OpDoesNotExist:
	case OpGt, OpLt, OpGte, OpLte:
		if len(r.Values) != 1 {
			return fmt.Errorf("%s: requirement %q %s needs exactly one value: %w", where, r.Key, r.Operator, ErrInvalidProblem)
		}
		if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			return fmt.Errorf("%s: requirement %q %s value %q is not an integer: %w", where, r.Key, r.Operator, r.Values[0], ErrInvalidProblem)
		}
	default:
		return fmt.Errorf("%s: requirement %q has unknown operator %q: %w", where, r.Key, r.Operator, ErrInvalidProblem)
	}
	if r.MinValues < 0 {
		return fmt.Errorf("%s: requirement %q has negative minValues: %w", where, r.Key, ErrInvalidProblem)
	}
	return nil
}

func validateTerms(terms []NodeSelectorTerm, where string) error {
	for _, t := range terms {
		for _, r := range t.Requirements {
			if err := validateRequirement(r, where); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateSelector(s *LabelSelector, where string) error {
	if s == nil {
		return nil
	}
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case OpIn, OpNotIn, OpExists, OpDoesNotExist:
		default:
			return fmt.Errorf("%s: label selector %q has unknown operator %q: %w", where, e.Key, e.Operator, ErrInvalidProblem)
		}
	}
	return nil
}

func validatePod(p *Pod) error {
	where := "pod " + p.Ref().String()
	if err := validateTerms(p.RequiredNodeAffinity, where); err != nil {
		return err
	}
	for _, pt := range p.PreferredNodeAffinity {
		if err := validateTerms([]NodeSelectorTerm{pt.Term}, where); err != nil {
			return err
		}
	}
	for _, v := range p.Volumes {
		if err := validateTerms(v.Terms, where+" volume "+v.Name); err != nil {
			return err
		}
	}
	for _, aff := range []*PodAffinity{&p.PodAffinity, &p.PodAntiAffinity} {
		for i := range aff.Required {
			if err := validateAffinityTerm(&aff.Required[i], where); err != nil {
				return err
			}
		}
		for i := range aff.Preferred {
			if err := validateAffinityTerm(&aff.Preferred[i].Term, where); err != nil {
				return err
			}
		}
	}
	for _, c := range p.TopologySpread {
		if c.TopologyKey == "" {
			return fmt.Errorf("%s: topology spread without topologyKey: %w", where, ErrInvalidProblem)
		}
		if c.MaxSkew <= 0 {
			return fmt.Errorf("%s: topology spread maxSkew %d must be positive: %w", where, c.MaxSkew, ErrInvalidProblem)
		}
		if err := validateSelector(c.LabelSelector, where); err != nil {
			return err
		}
	}
	for k, q := range p.Requests {
		if q < 0 {
			return fmt.Errorf("%s: negative request %s=%d: %w", where, k, q, ErrInvalidProblem)
		}
	}
	return nil
}

func validateAffinityTerm(t *PodAffinityTerm, where string) error {
	if t.TopologyKey == "" {
		return fmt.Errorf("%s: pod affinity term without topologyKey: %w", where, ErrInvalidProblem)
	}
	if err := validateSelector(t.LabelSelector, where); err != nil {
		return err
	}
	return validateSelector(t.NamespaceSelector, where)
}

// validateProblem checks that p defines a problem; it stops, returning
// h's error, when h stops.
func validateProblem(h *halt, p *Problem) error {
	if p == nil {
		return fmt.Errorf("nil problem: %w", ErrInvalidProblem)
	}
	if len(p.InstanceTypes) == 0 && len(p.Pods) > 0 && len(p.NodePools) > 0 {
		return fmt.Errorf("empty instance type catalog: %w", ErrInvalidProblem)
	}
	seen := map[string]bool{}
	for i := range p.NodePools {
		np := &p.NodePools[i]
		if np.Name == "" || seen[np.Name] {
			return fmt.Errorf("nodepool %d: empty or duplicate name %q: %w", i, np.Name, ErrInvalidProblem)
		}
		seen[np.Name] = true
		for _, r := range np.Requirements {
			if err := validateRequirement(r, "nodepool "+np.Name); err != nil {
				return err
			}
		}
	}
	for _, pod := range p.Pods {
		if h.stopped() {
			return h.err()
		}
		if pod == nil {
			return fmt.Errorf("nil pending pod: %w", ErrInvalidProblem)
		}
		if err := validatePod(pod); err != nil {
			return err
		}
	}
	for i := range p.DaemonSets {
		if err := validatePod(&p.DaemonSets[i].Template); err != nil {
			return err
		}
	}
	for i := range p.Nodes {
		if h.stopped() {
			return h.err()
		}
		for _, pod := range p.Nodes[i].Pods {
			if pod == nil {
				return fmt.Errorf("node %s: nil pod: %w", p.Nodes[i].Name, ErrInvalidProblem)
			}
			if err := validatePod(pod); err != nil {
				return err
			}
		}
	}
	for i := range p.NodeClaims {
		if h.stopped() {
			return h.err()
		}
		for _, pod := range p.NodeClaims[i].Pods {
			if pod == nil {
				return fmt.Errorf("nodeclaim %s: nil pod: %w", p.NodeClaims[i].Name, ErrInvalidProblem)
			}
			if err := validatePod(pod); err != nil {
				return err
			}
		}
	}
	return nil
}
