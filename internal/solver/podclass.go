package solver

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// podClass is a set of pending pods with the same scheduling spec: they
// are placed one after another with everything computed once.
type podClass struct {
	idx  int
	rep  *Pod
	pods []int // indexes into Problem.Pods, in input order
	req  []int64
	// levels go from every preference honoured to none.
	levels     []*level
	selectedBy []*group // groups that count pods of this class
	ownsAnti   []*group // required anti-affinity groups of this class
	symAnti    []*group // required anti-affinity groups that select this class
	// owns lists the groups of the class's required terms and
	// DoNotSchedule constraints: its pods count as their owners.
	owns []*group
	// spreadBy and affinityBy are the DoNotSchedule spread and pod
	// affinity groups of other classes that select this class: its pods
	// must not break them for owners already placed (see ownersCheck).
	spreadBy   []*group
	affinityBy []*group
	// moveKeys, movable and moveChecked cache moveKeys (repack.go).
	moveKeys    []string
	movable     bool
	moveChecked bool
}

// level is one relaxation step of a class: preferences still kept are
// treated as required.
type level struct {
	reqs      *nodeReqs
	avoidSoft bool
	spreads   []spreadCheck
	affinity  []termCheck
	anti      []termCheck
	// selfCap bounds how many pods of the class one node takes (hostname
	// anti-affinity, hostname spread, host ports).
	selfCap int64
	// pinKeys are topology keys a claim must settle before taking a pod.
	pinKeys []string
	// fit and grow list the bins first fit and growing may still use;
	// sticky levels never drop bins (see scan.go).
	fit, grow binScan
	sticky    bool
	// balance: pods of the class keep the counts of the spread groups of
	// other classes that select them within skew in every domain while
	// those groups' owners are still to be placed (ownersCheck). Every
	// level of such a class balances but an added last one, so a pod that
	// cannot go anywhere balanced still goes where the placed owners allow.
	balance bool
	// zoneQuick caches zoneOnly: 1 yes, -1 no, 0 not known yet.
	zoneQuick int8
	// perPod caches perPodCost.
	perPod float64
	cands  map[int][]cand
	// compat caches compatMask per pool index.
	compat [][]uint64
}

// classKey is the part of a pod besides namespace, labels, requests and
// node selector that decides where it may go.
type classKey struct {
	RequiredNodeAffinity  []NodeSelectorTerm
	PreferredNodeAffinity []PreferredSchedulingTerm
	Tolerations           []Toleration
	PodAffinity           PodAffinity
	PodAntiAffinity       PodAffinity
	TopologySpread        []TopologySpreadConstraint
	HostPorts             []HostPort
	Volumes               []VolumeTopology
}

// classPartition groups the pods of p into classes: the pods of each
// class, in input order, classes in order of their first pod. It stops
// early, with a partial answer, when h stops.
func classPartition(h *halt, p *Problem) [][]int {
	byKey := map[string]int{}
	var out [][]int
	var b strings.Builder
	for i, pod := range p.Pods {
		if h.stopped() {
			return out
		}
		b.Reset()
		writeClassKey(&b, pod)
		k := b.String()
		c, ok := byKey[k]
		if !ok {
			c = len(out)
			byKey[k] = c
			out = append(out, nil)
		}
		out[c] = append(out[c], i)
	}
	return out
}

// writeClassKey writes what decides where pod may go: namespace, labels,
// requests and node selector directly (the common case), the rest as JSON
// when any is set.
func writeClassKey(b *strings.Builder, pod *Pod) {
	b.WriteString(pod.Namespace)
	writeSorted(b, '\x01', pod.Labels)
	reqs := make(map[string]string, len(pod.Requests))
	for k, q := range pod.Requests {
		reqs[k] = strconv.FormatInt(q, 10)
	}
	writeSorted(b, '\x02', reqs)
	writeSorted(b, '\x03', pod.NodeSelector)
	if len(pod.RequiredNodeAffinity)+len(pod.PreferredNodeAffinity)+len(pod.Tolerations)+
		len(pod.PodAffinity.Required)+len(pod.PodAffinity.Preferred)+len(pod.PodAntiAffinity.Required)+
		len(pod.PodAntiAffinity.Preferred)+len(pod.TopologySpread)+len(pod.HostPorts)+len(pod.Volumes) == 0 {
		return
	}
	enc, _ := json.Marshal(classKey{RequiredNodeAffinity: pod.RequiredNodeAffinity, PreferredNodeAffinity: pod.PreferredNodeAffinity,
		Tolerations: pod.Tolerations, PodAffinity: pod.PodAffinity, PodAntiAffinity: pod.PodAntiAffinity,
		TopologySpread: pod.TopologySpread, HostPorts: pod.HostPorts, Volumes: pod.Volumes})
	b.WriteByte('\x04')
	b.Write(enc)
}

// writeSorted writes a map's entries in key order, each after sep.
func writeSorted(b *strings.Builder, sep byte, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(sep)
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
	}
}

func (s *solver) buildClasses(partition [][]int) {
	if partition == nil {
		partition = classPartition(s.halt, s.p)
		if s.halt.stopped() {
			return
		}
	}
	s.partition = partition
	for i, pods := range partition {
		pod := s.p.Pods[pods[0]]
		s.classes = append(s.classes, &podClass{idx: i, rep: pod, req: s.res.podVec(pod.Requests), pods: pods})
	}
	for _, c := range s.classes {
		if s.halt.stopped() {
			return
		}
		c.levels = s.buildLevels(c)
		s.ownGroups(c)
	}
	// First fit decreasing: big pods first, cpu then memory then the rest.
	sort.SliceStable(s.classes, func(a, b int) bool {
		x, y := s.classes[a].req, s.classes[b].req
		for i := range x {
			j := i
			if i == resPods {
				continue
			}
			if x[j] != y[j] {
				return x[j] > y[j]
			}
		}
		return s.classes[a].pods[0] < s.classes[b].pods[0]
	})
}

// ownGroups sets the groups a class owns: its required anti-affinity and
// affinity terms and its DoNotSchedule spread constraints.
func (s *solver) ownGroups(c *podClass) {
	pod := c.rep
	for i := range pod.PodAntiAffinity.Required {
		c.ownsAnti = append(c.ownsAnti, s.groupFor(groupAnti, pod, &pod.PodAntiAffinity.Required[i], nil))
	}
	c.owns = append(c.owns, c.ownsAnti...)
	for i := range pod.PodAffinity.Required {
		c.owns = append(c.owns, s.groupFor(groupAffinity, pod, &pod.PodAffinity.Required[i], nil))
	}
	for i := range pod.TopologySpread {
		if tsc := &pod.TopologySpread[i]; tsc.WhenUnsatisfiable != ScheduleAnyway {
			c.owns = append(c.owns, s.groupFor(groupSpread, pod, nil, tsc))
		}
	}
}

// linkClasses computes, once every group exists, which groups count or
// constrain each class.
func (s *solver) linkClasses() {
	for _, c := range s.classes {
		for _, g := range c.owns {
			if g.kind == groupSpread {
				g.ownersPlanned += int32(len(c.pods))
			}
		}
	}
	for _, c := range s.classes {
		if s.halt.stopped() {
			return
		}
		for _, g := range s.groups {
			if !g.selects(c.rep, s.p.Namespaces) {
				continue
			}
			c.selectedBy = append(c.selectedBy, g)
			switch {
			case g.kind == groupAnti && s.isRequiredAnti(g):
				c.symAnti = append(c.symAnti, g)
			case slices.Contains(c.owns, g):
			case g.kind == groupSpread && g.tsc.WhenUnsatisfiable != ScheduleAnyway:
				c.spreadBy = append(c.spreadBy, g)
			case g.kind == groupAffinity && g.selfSelect:
				c.affinityBy = append(c.affinityBy, g)
			}
		}
		if slices.ContainsFunc(c.spreadBy, (*group).balancing) {
			for _, lv := range c.levels {
				lv.balance = true
			}
			c.levels = append(c.levels, unbalanced(c.levels[len(c.levels)-1]))
		}
		for _, lv := range c.levels {
			lv.pinKeys = pinKeys(lv, c)
			lv.sticky = stickyLevel(lv)
		}
	}
}

// unbalanced is a copy of level lv that does not balance, with caches and
// scans of its own.
func unbalanced(lv *level) *level {
	return &level{reqs: lv.reqs, avoidSoft: lv.avoidSoft, spreads: lv.spreads, affinity: lv.affinity, anti: lv.anti,
		selfCap: lv.selfCap, cands: map[int][]cand{}}
}

// isRequiredAnti reports whether some pod carries g as a required term.
func (s *solver) isRequiredAnti(g *group) bool { return s.requiredAnti[g] }

func pinKeys(lv *level, c *podClass) []string {
	seen := map[string]bool{LabelHostname: true, LabelZone: true, LabelCapacityType: true}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, sc := range lv.spreads {
		add(sc.g.key)
	}
	for _, t := range lv.affinity {
		add(t.g.key)
	}
	for _, t := range lv.anti {
		add(t.g.key)
	}
	for _, gs := range [][]*group{c.selectedBy, c.ownsAnti, c.symAnti} {
		for _, g := range gs {
			add(g.key)
		}
	}
	sort.Strings(out)
	return out
}

// preference is one optional rule of a pod, dropped in order when the pod
// cannot be placed with it.
type preference struct {
	kind   int // prefAnti, prefAffinity, prefNode, prefSpread, prefTaints
	idx    int
	weight int32
}

const (
	prefAnti = iota
	prefAffinity
	prefNode
	prefSpread
	prefTaints
)

func (s *solver) preferences(pod *Pod) []preference {
	if s.p.Options.IgnorePreferences {
		return nil
	}
	var out []preference
	add := func(kind int, n int, weight func(int) int32) {
		start := len(out)
		for i := 0; i < n; i++ {
			out = append(out, preference{kind: kind, idx: i, weight: weight(i)})
		}
		// The lightest goes first, so the heaviest is kept longest.
		part := out[start:]
		sort.SliceStable(part, func(a, b int) bool { return part[a].weight < part[b].weight })
	}
	add(prefAnti, len(pod.PodAntiAffinity.Preferred), func(i int) int32 { return pod.PodAntiAffinity.Preferred[i].Weight })
	add(prefAffinity, len(pod.PodAffinity.Preferred), func(i int) int32 { return pod.PodAffinity.Preferred[i].Weight })
	var nodePrefs []int
	for i, pt := range pod.PreferredNodeAffinity {
		if len(pt.Term.Requirements) > 0 {
			nodePrefs = append(nodePrefs, i)
		}
	}
	add(prefNode, len(nodePrefs), func(i int) int32 { return pod.PreferredNodeAffinity[nodePrefs[i]].Weight })
	for i := start(out, prefNode); i < len(out); i++ {
		out[i].idx = nodePrefs[out[i].idx]
	}
	for i, c := range pod.TopologySpread {
		if c.WhenUnsatisfiable == ScheduleAnyway {
			out = append(out, preference{kind: prefSpread, idx: i})
		}
	}
	if s.hasSoftTaints {
		out = append(out, preference{kind: prefTaints})
	}
	return out
}

func start(prefs []preference, kind int) int {
	for i, p := range prefs {
		if p.kind == kind {
			return i
		}
	}
	return len(prefs)
}

func (s *solver) buildLevels(c *podClass) []*level {
	prefs := s.preferences(c.rep)
	var levels []*level
	for i := 0; i <= len(prefs); i++ {
		levels = append(levels, s.buildLevel(c, prefs[i:]))
	}
	return levels
}

func (s *solver) buildLevel(c *podClass, kept []preference) *level {
	pod := c.rep
	lv := &level{selfCap: 1 << 30, cands: map[int][]cand{}}
	keep := map[[2]int]bool{}
	for _, p := range kept {
		keep[[2]int{p.kind, p.idx}] = true
		if p.kind == prefTaints {
			lv.avoidSoft = true
		}
	}
	// Kept node preferences are ANDed into every required term.
	var extra []Requirement
	for i, pt := range pod.PreferredNodeAffinity {
		if keep[[2]int{prefNode, i}] {
			extra = append(extra, pt.Term.Requirements...)
		}
	}
	terms := pod.RequiredNodeAffinity
	if len(extra) > 0 {
		if len(terms) == 0 {
			terms = []NodeSelectorTerm{{Requirements: extra}}
		} else {
			combined := make([]NodeSelectorTerm, len(terms))
			for i, t := range terms {
				combined[i].Requirements = append(append([]Requirement{}, t.Requirements...), extra...)
			}
			terms = combined
		}
	}
	lv.reqs = newNodeReqs(pod.NodeSelector, terms, pod.Volumes)
	for i := range pod.TopologySpread {
		tsc := &pod.TopologySpread[i]
		if tsc.WhenUnsatisfiable == ScheduleAnyway && !keep[[2]int{prefSpread, i}] {
			continue
		}
		g := s.groupFor(groupSpread, pod, nil, tsc)
		sc := spreadCheck{g: g, maxSkew: tsc.MaxSkew, minDomains: tsc.MinDomains}
		if tsc.Selects(pod, pod) {
			sc.self = 1
			if tsc.TopologyKey == LabelHostname && int64(tsc.MaxSkew) < lv.selfCap {
				lv.selfCap = int64(tsc.MaxSkew)
			}
		}
		lv.spreads = append(lv.spreads, sc)
	}
	addTerms := func(kind groupKind, dst *[]termCheck, req []PodAffinityTerm, pref []WeightedPodAffinityTerm, pk int) {
		for i := range req {
			t := &req[i]
			*dst = append(*dst, termCheck{g: s.groupFor(kind, pod, t, nil), self: t.Selects(pod, pod, s.p.Namespaces)})
		}
		for i := range pref {
			if keep[[2]int{pk, i}] {
				t := &pref[i].Term
				*dst = append(*dst, termCheck{g: s.groupFor(kind, pod, t, nil), self: t.Selects(pod, pod, s.p.Namespaces)})
			}
		}
	}
	addTerms(groupAffinity, &lv.affinity, pod.PodAffinity.Required, pod.PodAffinity.Preferred, prefAffinity)
	addTerms(groupAnti, &lv.anti, pod.PodAntiAffinity.Required, pod.PodAntiAffinity.Preferred, prefAnti)
	for _, t := range lv.anti {
		if t.self && t.g.key == LabelHostname {
			lv.selfCap = 1
		}
	}
	if portsConflict(pod.HostPorts, pod.HostPorts) {
		lv.selfCap = 1
	}
	return lv
}
