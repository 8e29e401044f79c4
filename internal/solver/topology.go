package solver

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

type groupKind uint8

const (
	groupSpread groupKind = iota
	groupAffinity
	groupAnti
)

// group counts, per topology domain, the pods one term or spread
// constraint selects. Terms written on identical pods share a group.
type group struct {
	kind  groupKind
	key   string // topology key
	owner *Pod
	term  *PodAffinityTerm
	tsc   *TopologySpreadConstraint
	desc  string
	// spreadByDesc is the reason a pod the group selects is refused for
	// the owners' sake (ownersCheck), built once.
	spreadByDesc string

	counts map[string]int32 // selected pods per domain
	total  int32
	// owners counts the placed pods carrying the group's required term or
	// DoNotSchedule constraint per domain (and ownerTotal in all): pods
	// the group selects must keep those owners satisfied (anti-affinity:
	// stay out of their domains; spread: keep their skew; affinity: keep
	// a lone first pod company).
	owners     map[string]int32
	ownerTotal int32
	// ownersPlanned is the number of pending pods carrying the group's
	// constraint (spread groups only): while some are not placed yet, the
	// pods the group selects keep its counts balanced (see ownersCheck).
	ownersPlanned int32
	// selfSelect: the term or constraint selects its owner (the same for
	// every owner, as they share labels).
	selfSelect bool

	// Spread only: which nodes count (node inclusion policies).
	eligReqs    *nodeReqs
	honorTaints bool
	elig        []int8          // per bin: 1 counts, -1 does not
	domains     map[string]bool // domains the skew minimum is taken over
	binDomains  map[string]bool // domains holding an eligible node
	minCache    int32
	minDirty    bool
}

func (g *group) selects(p *Pod, namespaces map[string]map[string]string) bool {
	if g.kind == groupSpread {
		return g.tsc.Selects(g.owner, p)
	}
	return g.term.Selects(g.owner, p, namespaces)
}

// groupFor returns the shared group for a term or constraint written on
// owner, creating it on first use.
func (s *solver) groupFor(kind groupKind, owner *Pod, term *PodAffinityTerm, tsc *TopologySpreadConstraint) *group {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%s|", kind, owner.Namespace)
	enc, _ := json.Marshal(owner.Labels)
	b.Write(enc)
	if term != nil {
		enc, _ = json.Marshal(term)
	} else {
		enc, _ = json.Marshal(tsc)
	}
	b.Write(enc)
	var eligReqs *nodeReqs
	honorTaints := false
	if tsc != nil {
		if tsc.NodeAffinityPolicy != PolicyIgnore {
			eligReqs = newNodeReqs(owner.NodeSelector, owner.RequiredNodeAffinity, nil)
			b.WriteString("|a" + eligReqs.key)
		}
		if tsc.NodeTaintsPolicy == PolicyHonor {
			honorTaints = true
			enc, _ = json.Marshal(owner.Tolerations)
			b.WriteString("|t")
			b.Write(enc)
		}
	}
	k := b.String()
	if g, ok := s.groupIdx[k]; ok {
		return g
	}
	g := &group{kind: kind, owner: owner, term: term, tsc: tsc, counts: map[string]int32{},
		owners: map[string]int32{}, eligReqs: eligReqs, honorTaints: honorTaints}
	if term != nil {
		g.key = term.TopologyKey
		g.selfSelect = term.Selects(owner, owner, s.p.Namespaces)
	} else {
		g.key = tsc.TopologyKey
		g.selfSelect = tsc.Selects(owner, owner)
		g.domains = map[string]bool{}
		g.binDomains = map[string]bool{}
		g.minDirty = true
		s.spreadGroups = append(s.spreadGroups, g)
	}
	g.desc = describeGroup(g)
	g.spreadByDesc = "topology spread of pods already there: " + g.desc
	s.groupIdx[k] = g
	s.groups = append(s.groups, g)
	return g
}

func describeGroup(g *group) string {
	var sel *LabelSelector
	if g.term != nil {
		sel = g.term.LabelSelector
	} else {
		sel = g.tsc.LabelSelector
	}
	s := "<none>"
	if sel != nil {
		var parts []string
		keys := make([]string, 0, len(sel.MatchLabels))
		for k := range sel.MatchLabels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+"="+sel.MatchLabels[k])
		}
		for _, e := range sel.MatchExpressions {
			parts = append(parts, fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values))
		}
		s = strings.Join(parts, ",")
	}
	switch g.kind {
	case groupSpread:
		return fmt.Sprintf("topology spread on %s (maxSkew %d, %s)", g.key, g.tsc.MaxSkew, s)
	case groupAffinity:
		return fmt.Sprintf("pod affinity on %s (%s)", g.key, s)
	}
	return fmt.Sprintf("pod anti-affinity on %s (%s)", g.key, s)
}

// eligible reports whether pods on bin b count for spread group g.
func (s *solver) eligible(g *group, b *bin) bool {
	for len(g.elig) <= b.id {
		g.elig = append(g.elig, 0)
	}
	if e := g.elig[b.id]; e != 0 {
		return e > 0
	}
	v := s.binView(b)
	ok := (g.eligReqs == nil || g.eligReqs.holds(&v)) && (!g.honorTaints || g.owner.ToleratesHardTaints(b.taints))
	g.elig[b.id] = -1
	if ok {
		g.elig[b.id] = 1
	}
	return ok
}

// addBin registers a bin: spread groups learn its domain.
func (s *solver) addBin(b *bin) {
	s.bins = append(s.bins, b)
	for _, g := range s.spreadGroups {
		if !s.eligible(g, b) {
			continue
		}
		if d, ok := s.domainOf(b, g.key); ok {
			if !g.domains[d] {
				g.domains[d] = true
				g.minDirty = true
			}
			g.binDomains[d] = true
		}
	}
}

// count records pod p of class c (or an existing pod when c is nil) on b.
func (s *solver) count(b *bin, groups []*group, owned []*group) {
	for _, g := range groups {
		if g.kind == groupSpread && !s.eligible(g, b) {
			continue
		}
		if d, ok := s.domainOf(b, g.key); ok {
			g.counts[d]++
			g.total++
			g.minDirty = true
		}
	}
	for _, g := range owned {
		if d, ok := s.domainOf(b, g.key); ok {
			g.owners[d]++
			g.ownerTotal++
		}
	}
}

// countExistingPod counts a pod already bound to an existing node or
// in-flight claim, and remembers its required anti-affinity.
func (s *solver) countExistingPod(b *bin, pod *Pod) {
	sig := labelSig(pod)
	groups, ok := s.selCache[sig]
	if !ok {
		for _, g := range s.groups {
			if g.selects(pod, s.p.Namespaces) {
				groups = append(groups, g)
			}
		}
		s.selCache[sig] = groups
	}
	var owned []*group
	for i := range pod.PodAntiAffinity.Required {
		g := s.groupFor(groupAnti, pod, &pod.PodAntiAffinity.Required[i], nil)
		s.requiredAnti[g] = true
		owned = append(owned, g)
	}
	s.count(b, groups, owned)
}

func labelSig(p *Pod) string {
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(p.Namespace)
	for _, k := range keys {
		b.WriteString("\x00" + k + "\x01" + p.Labels[k])
	}
	return b.String()
}

// globalMin is the smallest count over the domains the skew is measured
// against, 0 when fewer than minDomains domains hold a node.
func (g *group) globalMin(minDomains int32) int32 {
	if minDomains > 1 && int32(len(g.binDomains)) < minDomains {
		return 0
	}
	if g.minDirty {
		first := true
		g.minCache = 0
		for d := range g.domains {
			c := g.counts[d]
			if first || c < g.minCache {
				g.minCache = c
				first = false
			}
		}
		g.minDirty = false
	}
	return g.minCache
}

// addPotentialDomains adds to a non-hostname spread group the domains a
// new claim could be in: values of its key over the offerings every
// NodePool may launch, filtered by the owner's inclusion policies.
func (s *solver) addPotentialDomains(g *group) {
	if g.key == LabelHostname {
		return
	}
	for _, pi := range s.pools {
		if g.honorTaints && !g.owner.ToleratesHardTaints(pi.np.Taints) {
			continue
		}
		for _, it := range s.its {
			mask := pi.okMask[it.idx]
			for o, off := range it.offers {
				if mask&(1<<uint(o)) == 0 {
					continue
				}
				v := view{base: pi.base, it: it.labels, zone: off.Zone, ct: off.CapacityType, free: pi.free}
				if g.eligReqs != nil && !g.eligReqs.holds(&v) {
					continue
				}
				if d, ok := v.get(g.key); ok && !g.domains[d] {
					g.domains[d] = true
					g.minDirty = true
				}
			}
		}
	}
}

// Checks a level makes before placing a pod.

type spreadCheck struct {
	g          *group
	maxSkew    int32
	minDomains int32
	self       int32 // 1 when the constraint selects the pod itself
}

type termCheck struct {
	g    *group
	self bool // the term selects the pod itself
}

// reject classifies why a bin refused a pod: permanent reasons stay true
// as the plan grows (so first-fit may skip the bin for good), transient
// ones may change.
type reject uint8

const (
	accept reject = iota
	rejectPermanent
	rejectTransient
)

// topoCheck runs the topology rules of a level against a bin whose
// domains dom yields.
func (s *solver) topoCheck(c *podClass, lv *level, dom func(string) (string, bool)) (reject, string) {
	for i := range lv.spreads {
		sc := &lv.spreads[i]
		d, ok := dom(sc.g.key)
		if !ok {
			return rejectPermanent, "node lacks " + sc.g.key
		}
		if sc.g.key == LabelHostname {
			// Conservative: a new empty node can always appear, so the
			// minimum is 0.
			if sc.g.counts[d]+sc.self > sc.maxSkew {
				return rejectPermanent, sc.g.desc
			}
			continue
		}
		if sc.g.counts[d]+sc.self-sc.g.globalMin(sc.minDomains) > sc.maxSkew {
			return rejectTransient, sc.g.desc
		}
	}
	for i := range lv.affinity {
		tc := &lv.affinity[i]
		d, ok := dom(tc.g.key)
		if !ok {
			return rejectPermanent, "node lacks " + tc.g.key
		}
		if tc.g.counts[d] > 0 || (tc.g.total == 0 && tc.self) {
			continue
		}
		return rejectTransient, tc.g.desc
	}
	for i := range lv.anti {
		g := lv.anti[i].g
		if d, ok := dom(g.key); ok && g.counts[d] > 0 {
			return rejectPermanent, g.desc
		}
	}
	for _, g := range c.symAnti {
		if d, ok := dom(g.key); ok && g.owners[d] > 0 {
			return rejectPermanent, "anti-affinity of pods already there"
		}
	}
	return s.ownersCheck(c, lv, dom)
}

// balancing reports whether pods selected by spread group g, placed at a
// level that balances, must keep g's counts within its skew in every
// domain, not only where owners are: some owners of g are still to be
// placed, and they can only go where g's count is low. Hostname groups
// need no balance: a new node, with a count of 0, is always possible.
func (g *group) balancing() bool {
	return g.key != LabelHostname && g.ownersPlanned > g.ownerTotal
}

// ownersCheck keeps the plan's final state valid for pods placed before
// that carry a DoNotSchedule spread constraint or a required pod affinity
// term selecting class c without c carrying it (verify.Plan and
// kube-scheduler judge every pod against all the others, not only those
// placed before it):
//   - a pod of c may not raise a domain holding owners of such a spread
//     constraint above the skew the constraint allows them;
//   - at a level that balances (lv.balance), while owners of such a
//     non-hostname constraint are still to be placed, a pod of c may not
//     raise any domain above that skew, owners there or not: the owners
//     placed later go where the constraint's count is low, and each of
//     them must then find its own labels' counts low enough there too
//     (KarpenterBenchmarkMix's spread pods select each other's labels and
//     the plain pods', which first fit put in the cheapest zone);
//   - while the only pod a self-selecting affinity term counts is the
//     first owner, placed alone by the "first pod may go anywhere" rule,
//     a pod of c must join that owner's domain (elsewhere the owner's
//     term would select a pod, none of them beside it).
func (s *solver) ownersCheck(c *podClass, lv *level, dom func(string) (string, bool)) (reject, string) {
	for _, g := range c.spreadBy {
		d, ok := dom(g.key)
		if !ok || g.owners[d] == 0 && (!lv.balance || !g.balancing()) {
			continue
		}
		if g.key == LabelHostname {
			// Conservative minimum 0 again (see topoCheck); the count
			// only grows, so the refusal is for good.
			if g.counts[d]+1 > g.tsc.MaxSkew {
				return rejectPermanent, g.spreadByDesc
			}
			continue
		}
		if g.counts[d]+1-g.globalMin(g.tsc.MinDomains) > g.tsc.MaxSkew {
			return rejectTransient, g.spreadByDesc
		}
	}
	for _, g := range c.affinityBy {
		if g.total != 1 || g.ownerTotal == 0 {
			continue
		}
		if d, ok := dom(g.key); ok && g.counts[d] == 0 {
			return rejectTransient, "pod affinity of a pod already placed alone: " + g.desc
		}
	}
	return accept, ""
}
