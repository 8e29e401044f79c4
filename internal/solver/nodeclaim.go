package solver

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
)

// claimOpt is one instance type (at one offering) a new claim may launch.
type claimOpt struct {
	it, off int32
	price   float64
}

// claim is the state of a new NodeClaim: its pool, pinned offering zone
// and capacity type, remaining options (cheapest first) and open keys.
type claim struct {
	pool   *poolInfo
	zone   string
	ct     string
	opts   []claimOpt
	free   map[string][]string
	maxCap []int64 // worst-case capacity, counted against pool limits
	// reserve are pricier options at the same offering kept aside: a pod
	// that must join this claim (pod affinity) may upgrade to them.
	reserve []claimOpt
	// reserveAlloc is the component-wise maximum room of the reserve
	// options: a pod that does not fit in it cannot grow the claim.
	reserveAlloc []int64
	placed       []*level // levels of the pods placed, to re-check reserve
	// dsPorts are the host ports of the DaemonSets that run on any of
	// opts and reserve: whichever the claim launches, they are taken.
	dsPorts []HostPort
}

// cand is an (instance type, offering) a class could open a claim on.
type cand struct {
	it, off int32
	price   float64
	copies  int64 // pods of the class that fit on an empty node
	zc      int32 // the offering's (zone, capacity type)
}

// compatMask returns, per instance type, the offerings of pool pi whose
// node labels satisfy the level's requirements (cached by requirements).
func (s *solver) compatMask(lv *level, pi *poolInfo) []uint64 {
	if lv.compat == nil {
		lv.compat = make([][]uint64, len(s.pools))
	}
	if m := lv.compat[pi.idx]; m != nil {
		return m
	}
	k := compatKey{reqs: lv.reqs.key, pool: pi.idx}
	if m, ok := s.compat[k]; ok {
		lv.compat[pi.idx] = m
		return m
	}
	m := make([]uint64, len(s.its))
	for _, it := range s.its {
		ok := pi.okMask[it.idx]
		if ok == 0 {
			continue
		}
		v := view{base: pi.base, it: it.labels, free: pi.free}
		for o, off := range it.offers {
			bit := uint64(1) << uint(o)
			if ok&bit == 0 {
				continue
			}
			v.zone, v.ct = off.Zone, off.CapacityType
			if lv.reqs.holds(&v) {
				m[it.idx] |= bit
			}
		}
	}
	s.compat[k] = m
	lv.compat[pi.idx] = m
	return m
}

type compatKey struct {
	reqs string
	pool int
}

// candsFor lists, cheapest first, the offerings of pool pi a pod of class
// c could open a claim on at level lv.
func (s *solver) candsFor(c *podClass, lv *level, pi *poolInfo) []cand {
	if cs, ok := lv.cands[pi.idx]; ok {
		return cs
	}
	n := s.res.n()
	mask := s.compatMask(lv, pi)
	// Classes with the same requests and node requirements share the list.
	key := candsKey{reqs: lv.reqs.key, pool: pi.idx, req: reqKey(c.req)}
	if cs, ok := s.candsShared[key]; ok {
		lv.cands[pi.idx] = cs
		return cs
	}
	cs := []cand{}
	for _, cd := range pi.order {
		if mask[cd.it]&(1<<uint(cd.off)) == 0 {
			continue
		}
		k := copiesIn(c.req, pi.availOf(int(cd.it), int(cd.off), n))
		if k < 1 {
			continue
		}
		cd.copies = k
		cs = append(cs, cd)
	}
	if s.candsShared == nil {
		s.candsShared = map[candsKey][]cand{}
	}
	s.candsShared[key] = cs
	lv.cands[pi.idx] = cs
	return cs
}

// candsKey identifies what candsFor depends on.
type candsKey struct {
	reqs string
	pool int
	req  string
}

func reqKey(req []int64) string {
	b := make([]byte, 0, 8*len(req))
	for _, q := range req {
		b = binary.LittleEndian.AppendUint64(b, uint64(q))
	}
	return string(b)
}

func (s *solver) offerOf(it, off int32) *Offering { return &s.its[it].offers[off] }

// openClaim creates a new claim for a pod of class c, trying pools by
// weight. It picks the target instance type holding the most pods of the
// class per dollar (nRem caps how many are still to place) and keeps every
// cheaper compatible type as an option, so the claim can take other pods
// and later shrink to the cheapest type holding them.
func (s *solver) openClaim(c *podClass, lv *level, podIdx int, nRem int64, why *reasons) *bin {
	if s.maxNewClaims >= 0 && s.newClaims >= s.maxNewClaims {
		why.other = "no new nodes allowed"
		return nil
	}
	for _, pi := range s.pools {
		if !tolerated(c.rep, pi.np.Taints, lv.avoidSoft) {
			why.taint(pi, c.rep)
			continue
		}
		if b := s.openInPool(c, lv, pi, podIdx, nRem, why); b != nil {
			return b
		}
	}
	return nil
}

func (s *solver) openInPool(c *podClass, lv *level, pi *poolInfo, podIdx int, nRem int64, why *reasons) *bin {
	cs := s.candsFor(c, lv, pi)
	if len(cs) == 0 {
		why.noType(s, c, lv, pi)
		return nil
	}
	why.tolerated = true
	host := fmt.Sprintf("flotilla-new-%d", s.newClaims)
	// Topology results per (zone, capacity type) when the level only
	// looks at keys every option of an offering agrees on.
	simple := len(lv.pinKeys) == 0
	memo := s.zcMemo[:0]
	for range s.zcNames {
		memo = append(memo, 0)
	}
	s.zcMemo = memo
	spotOK := s.spotDiversity(cs)
	okCand := func(cd *cand) bool {
		if !spotOK[cd.zc] {
			return false
		}
		if ds := pi.dsConflict(int(cd.it), int(cd.off), c.rep.HostPorts); ds != nil {
			why.hostPort(pi, ds, c.rep.HostPorts)
			return false
		}
		if pi.limited {
			if ok, r := pi.withinLimits(s.its[cd.it].capacity); !ok {
				why.limit(pi, s.res.names[r])
				return false
			}
		}
		if simple && memo[cd.zc] != 0 {
			return memo[cd.zc] > 0
		}
		off := s.offerOf(cd.it, cd.off)
		probe := claimProbe{s: s, pool: pi, zone: off.Zone, ct: off.CapacityType, host: host, it: s.its[cd.it]}
		r, w := s.topoCheck(c, lv, probe.domain)
		if r != accept {
			why.topology(w)
		}
		if simple {
			memo[cd.zc] = -1
			if r == accept {
				memo[cd.zc] = 1
			}
		}
		return r == accept
	}
	// Under limits.nodes, the copies the pool's remaining nodes could hold
	// at a type come first: the cheapest per pod is no good when it leaves
	// pods without a node (claims shrink but do not grow).
	left := pi.nodesLeft()
	cover := func(k int64) int64 {
		if left < 0 {
			return nRem
		}
		return min(k*left, nRem)
	}
	best := -1
	var bestScore float64
	var bestK, bestCover int64
	for i := range cs {
		cd := &cs[i]
		if !okCand(cd) {
			continue
		}
		k := min(cd.copies, nRem, lv.selfCap)
		if s.openCopies > 0 {
			k = min(k, s.openCopies)
		}
		score := cd.price / float64(k)
		cv := cover(k)
		if best < 0 || cv > bestCover || cv == bestCover && (score < bestScore*(1-1e-9) || (score <= bestScore*(1+1e-9) && k > bestK)) {
			best, bestScore, bestK, bestCover = i, score, k, cv
		}
	}
	if best < 0 {
		return nil
	}
	b := s.newClaimBin(lv, pi, cs, best, host, okCand)
	if b == nil {
		why.other = fmt.Sprintf("NodePool %s cannot keep minValues", pi.np.Name)
		return nil
	}
	if r, w := s.admitClaim(c, lv, b, podIdx); r != accept {
		why.topology(w)
		return nil
	}
	return b
}

// admitClaim puts pod podIdx of class c on the new claim b: when the pod's
// rules accept b, b joins the bins with the pod on it; otherwise the claim
// is released.
func (s *solver) admitClaim(c *podClass, lv *level, b *bin, podIdx int) (reject, string) {
	r, w := s.canPlace(c, lv, b)
	if r != accept {
		s.releaseClaim(b)
		return r, w
	}
	s.addBin(b)
	s.newClaims++
	s.commit(c, b, podIdx)
	return accept, ""
}

// spotDiversity says per (zone, capacity type) whether a claim may open
// there: spot offerings need at least MinSpotInstanceTypes instance types
// in cs at that zone, unless cs has nothing but spot offerings.
func (s *solver) spotDiversity(cs []cand) []bool {
	ok := s.zcOK[:0]
	for range s.zcNames {
		ok = append(ok, true)
	}
	s.zcOK = ok
	need := s.p.Options.MinSpotInstanceTypes
	if need == 0 {
		need = DefaultMinSpotInstanceTypes
	}
	if need <= 1 {
		return ok
	}
	count := s.zcCount[:0]
	for range s.zcNames {
		count = append(count, 0)
	}
	s.zcCount = count
	other := false
	for i := range cs {
		if s.zcSpot[cs[i].zc] {
			count[cs[i].zc]++
		} else {
			other = true
		}
	}
	if !other {
		return ok
	}
	for zc, spot := range s.zcSpot {
		if spot && count[zc] < need {
			ok[zc] = false
		}
	}
	return ok
}

// newClaimBin builds the claim for cs[best]: options are the candidates at
// the same zone and capacity type that cost no more (more when minValues
// needs them).
func (s *solver) newClaimBin(lv *level, pi *poolInfo, cs []cand, best int, host string, okCand func(*cand) bool) *bin {
	bo := s.offerOf(cs[best].it, cs[best].off)
	bestIT := s.its[cs[best].it]
	bestZC := cs[best].zc
	var opts []claimOpt
	var extra []claimOpt
	for i := range cs {
		cd := &cs[i]
		if cd.zc != bestZC || !samePins(lv.pinKeys, bestIT, s.its[cd.it]) {
			continue
		}
		if cd.price > cs[best].price && len(pi.minValues) == 0 && len(extra) >= s.maxReserve() {
			continue
		}
		if i != best && !okCand(cd) {
			continue
		}
		opt := claimOpt{it: cd.it, off: cd.off, price: cd.price}
		if cd.price <= cs[best].price {
			opts = append(opts, opt)
		} else {
			extra = append(extra, opt)
		}
	}
	// minValues: extend with pricier options until every key has enough
	// distinct values.
	for len(extra) > 0 && !s.minValuesOK(pi, opts) {
		opts = append(opts, extra[0])
		extra = extra[1:]
	}
	if !s.minValuesOK(pi, opts) {
		return nil
	}
	labels := copyLabels(pi.base, 3)
	labels[LabelZone] = bo.Zone
	labels[LabelCapacityType] = bo.CapacityType
	labels[LabelHostname] = host
	cl := &claim{pool: pi, zone: bo.Zone, ct: bo.CapacityType, opts: opts, free: pi.free, reserve: extra}
	cl.reserveAlloc = make([]int64, s.res.n())
	for _, o := range extra {
		maxVec(cl.reserveAlloc, pi.availOf(int(o.it), int(o.off), s.res.n()))
	}
	b := &bin{id: s.newBinID(), kind: binNew, name: host, labels: labels, taints: pi.np.Taints,
		used: make([]int64, s.res.n()), claim: cl}
	s.refreshClaim(b)
	return b
}

// maxReserve caps a claim's reserve (pricier options it may upgrade to):
// it bounds memory per claim on large catalogs.
func (s *solver) maxReserve() int { return 4 * s.maxOpts }

func samePins(keys []string, a, b *itInfo) bool {
	for _, k := range keys {
		x, okx := a.labels[k]
		y, oky := b.labels[k]
		if okx != oky || x != y {
			return false
		}
	}
	return true
}

// refreshClaim recomputes the quick-reject allocatable and the worst-case
// capacity counted against the pool's limits after options changed.
func (s *solver) refreshClaim(b *bin) {
	cl := b.claim
	n := s.res.n()
	alloc := make([]int64, n)
	capv := make([]int64, n)
	for _, o := range cl.opts {
		maxVec(alloc, cl.pool.availOf(int(o.it), int(o.off), n))
		maxVec(capv, s.its[o.it].capacity)
	}
	b.alloc = alloc
	cl.dsPorts = s.claimDSPorts(cl)
	if cl.maxCap != nil {
		subVec(cl.pool.committed, cl.maxCap)
	}
	cl.maxCap = capv
	addVec(cl.pool.committed, capv)
}

// claimDSPorts lists the host ports of every DaemonSet that runs on some
// option (or reserve option) of the claim, each DaemonSet once.
func (s *solver) claimDSPorts(cl *claim) []HostPort {
	if cl.pool.dsRun == nil {
		return nil
	}
	var out []HostPort
	var seen map[*dsInfo]bool
	add := func(os []claimOpt) {
		for _, o := range os {
			for _, ds := range cl.pool.dsRun[o.it][o.off] {
				if seen == nil {
					seen = map[*dsInfo]bool{}
				}
				if !seen[ds] {
					seen[ds] = true
					out = append(out, ds.ports...)
				}
			}
		}
	}
	add(cl.opts)
	add(cl.reserve)
	return out
}

// releaseClaim undoes refreshClaim for a claim that is not kept.
func (s *solver) releaseClaim(b *bin) {
	subVec(b.claim.pool.committed, b.claim.maxCap)
	b.claim.maxCap = nil
}

func (s *solver) minValuesOK(pi *poolInfo, opts []claimOpt) bool {
	for _, r := range pi.minValues {
		seen := map[string]bool{}
		for _, o := range opts {
			if v, ok := s.its[o.it].labels[r.Key]; ok {
				seen[v] = true
			}
		}
		if len(seen) < r.MinValues {
			return false
		}
	}
	return true
}

// claimProbe yields the domains a claim (existing or about to be made)
// has for topology keys.
type claimProbe struct {
	s     *solver
	pool  *poolInfo
	zone  string
	ct    string
	host  string
	it    *itInfo             // a virtual claim's target type
	opts  []claimOpt          // or a claim's remaining options
	free  map[string][]string // open keys
	fixed map[string]string   // a claim's labels
}

func (p *claimProbe) domain(key string) (string, bool) {
	if p.fixed != nil {
		if v, ok := p.fixed[key]; ok {
			return v, true
		}
	} else {
		switch key {
		case LabelHostname:
			return p.host, true
		case LabelZone:
			return p.zone, true
		case LabelCapacityType:
			return p.ct, true
		}
		if v, ok := p.pool.base[key]; ok {
			return v, true
		}
	}
	if p.it != nil {
		if v, ok := p.it.labels[key]; ok {
			return v, true
		}
	} else if p.s.itKeys[key] && len(p.opts) > 0 {
		return p.s.agreed(p.opts, key)
	}
	free := p.free
	if free == nil && p.pool != nil {
		free = p.pool.free
	}
	if dom, ok := free[key]; ok && len(dom) > 0 {
		return dom[0], true
	}
	return "", false
}

// agreed is the value every option has for an instance type label, if
// they agree.
func (s *solver) agreed(opts []claimOpt, key string) (string, bool) {
	v0, ok0 := s.its[opts[0].it].labels[key]
	for _, o := range opts[1:] {
		v, ok := s.its[o.it].labels[key]
		if ok != ok0 || v != v0 {
			return "", false
		}
	}
	return v0, ok0
}

// domainOf is the domain bin b is in for key: its label, or the value a
// claim's options all agree on, or a claim's settled open key.
func (s *solver) domainOf(b *bin, key string) (string, bool) {
	if v, ok := b.labels[key]; ok {
		return v, true
	}
	cl := b.claim
	if cl == nil {
		return "", false
	}
	if s.itKeys[key] && len(cl.opts) > 0 {
		return s.agreed(cl.opts, key)
	}
	if dom, ok := cl.free[key]; ok && len(dom) > 0 {
		return dom[0], true
	}
	return "", false
}

// binView is a bin's labels as a view (a claim's open parts included).
func (s *solver) binView(b *bin) view {
	v := view{base: b.labels}
	if b.claim != nil {
		v.free = b.claim.free
		if len(b.claim.opts) > 0 {
			v.it = s.its[b.claim.opts[0].it].labels
		}
	}
	return v
}

// checkClaim is canPlace for a new claim: it narrows the options to those
// compatible with the pod and fitting it, settles topology keys the pod
// cares about, then runs the topology rules. The narrowed state is left in
// s.scratch / s.scratchFree for commit.
func (s *solver) checkClaim(c *podClass, lv *level, b *bin) (reject, string) {
	cl := b.claim
	n := s.res.n()
	mask := s.compatMask(lv, cl.pool)
	sc := s.scratch[:0]
	for _, o := range cl.opts {
		if mask[o.it]&(1<<uint(o.off)) != 0 && fitsIn(b.used, c.req, cl.pool.availOf(int(o.it), int(o.off), n)) {
			sc = append(sc, o)
		}
	}
	if len(sc) == 0 {
		if s.mustJoin(c, lv, b) {
			sc = s.upgradeOpts(c, lv, b, sc)
		} else if s.growing {
			sc = s.growOpts(c, lv, b, sc)
		}
	}
	s.scratch = sc
	if len(sc) == 0 {
		return rejectPermanent, "no option fits"
	}
	free := cl.free
	if len(free) > 0 {
		v := view{base: b.labels, it: s.its[sc[0].it].labels, free: free}
		if !lv.reqs.holds(&v) {
			return rejectPermanent, "labels"
		}
		free = lv.reqs.narrowFree(&v)
	}
	for _, k := range lv.pinKeys {
		if _, fixed := b.labels[k]; fixed {
			continue
		}
		if s.itKeys[k] {
			if _, ok := s.agreed(sc, k); !ok {
				sc = s.keepValue(sc, k)
			}
		} else if dom, ok := free[k]; ok && len(dom) > 1 {
			free = copyFree(free)
			free[k] = dom[:1]
		}
	}
	s.scratch = sc
	s.scratchFree = free
	s.scratchLevel = lv
	if len(sc) < len(cl.opts) && !s.minValuesOK(cl.pool, sc) {
		return rejectPermanent, "minValues"
	}
	if sc[0] != cl.opts[0] {
		if r, w := s.flipCheck(c, b, sc[0], free); r != accept {
			return r, w
		}
	}
	probe := claimProbe{s: s, fixed: b.labels, opts: sc, free: free}
	return s.topoCheck(c, lv, probe.domain)
}

// flipCheck refuses a narrowing of claim b (to cheapest option first and
// open keys free) that would make a DoNotSchedule spread group start or
// stop counting pods already on b (recheckEligibility): the counts would
// jump by more than the pod being placed, unchecked, under owners of the
// constraint already placed or the pod itself.
func (s *solver) flipCheck(c *podClass, b *bin, first claimOpt, free map[string][]string) (reject, string) {
	var v view
	viewSet := false
	for _, g := range s.spreadGroups {
		if g.eligReqs == nil || g.eligReqs.empty() || g.tsc.WhenUnsatisfiable == ScheduleAnyway ||
			b.id >= len(g.elig) || g.elig[b.id] == 0 || (g.ownerTotal == 0 && !slices.Contains(c.owns, g)) {
			continue
		}
		if !viewSet {
			v = view{base: b.labels, it: s.its[first.it].labels, free: free}
			viewSet = true
		}
		now := g.eligReqs.holds(&v) && (!g.honorTaints || g.owner.ToleratesHardTaints(b.taints))
		if now == (g.elig[b.id] > 0) {
			continue
		}
		for _, idx := range b.podIdx {
			if g.selects(s.p.Pods[idx], s.p.Namespaces) {
				return rejectTransient, "topology spread counts of pods already there: " + g.desc
			}
		}
	}
	return accept, ""
}

// mustJoin reports whether a pod of class c at the level needs this very
// node: its hostname affinity targets pods already here, or it is
// selected by the hostname affinity of a pod here alone (ownersCheck), so
// no new claim would do.
func (s *solver) mustJoin(c *podClass, lv *level, b *bin) bool {
	if len(b.claim.reserve) == 0 {
		return false
	}
	for _, tc := range lv.affinity {
		if tc.g.key == LabelHostname && tc.g.counts[b.name] > 0 {
			return true
		}
	}
	for _, g := range c.affinityBy {
		if g.key == LabelHostname && g.total == 1 && g.ownerTotal > 0 && g.counts[b.name] > 0 {
			return true
		}
	}
	return false
}

// upgradeOpts lists the reserve options that every pod already on the
// claim and this one accept, that hold them all and keep the pool within
// its limits.
func (s *solver) upgradeOpts(c *podClass, lv *level, b *bin, sc []claimOpt) []claimOpt {
	levels := append(append([]*level{}, b.claim.placed...), lv)
	keys := s.pinnedKeys(levels)
	for _, o := range b.claim.reserve {
		if s.reserveFits(b, c.req, levels, keys, o) {
			sc = append(sc, o)
		}
	}
	return sc
}

// reserveFits reports whether reserve option o could replace the claim's
// options: every level in levels accepts it, it holds the claim's pods plus
// req, it agrees with the options on every pinned and topology-counted
// instance type label (keys, from pinnedKeys), and it keeps the pool
// within its limits.
func (s *solver) reserveFits(b *bin, req []int64, levels []*level, keys []string, o claimOpt) bool {
	cl := b.claim
	n := s.res.n()
	avail := cl.pool.availOf(int(o.it), int(o.off), n)
	for i, u := range b.used {
		if u+req[i] > avail[i] {
			return false
		}
	}
	for _, lv := range levels {
		if s.compatMask(lv, cl.pool)[o.it]&(1<<uint(o.off)) == 0 {
			return false
		}
	}
	for _, k := range keys {
		if v, agreed := s.agreed(cl.opts, k); agreed {
			if have, has := s.its[o.it].labels[k]; !has || have != v {
				return false
			}
		}
	}
	if !cl.pool.limited {
		return true
	}
	capv := append([]int64{}, s.its[o.it].capacity...)
	for i := range capv {
		capv[i] = max(capv[i]-cl.maxCap[i], 0)
	}
	ok, _ := cl.pool.withinLimits(capv)
	return ok
}

// pinnedKeys are the instance type labels a claim must keep agreeing on:
// the keys its pods pinned and every topology key some group counts.
func (s *solver) pinnedKeys(levels []*level) []string {
	var keys []string
	for _, lv := range levels {
		keys = append(keys, lv.pinKeys...)
	}
	if s.groupKeysN != len(s.groups) {
		s.groupKeys = s.groupKeys[:0]
		for _, g := range s.groups {
			if s.itKeys[g.key] {
				s.groupKeys = append(s.groupKeys, g.key)
			}
		}
		s.groupKeysN = len(s.groups)
	}
	return append(keys, s.groupKeys...)
}

// widenOptions adds, cheapest first, every reserve option that could
// launch the finished claim just as well, so the launcher has fallbacks
// when the cheapest offering lacks capacity.
func (s *solver) widenOptions(b *bin) {
	cl := b.claim
	zero := make([]int64, s.res.n())
	have := map[claimOpt]bool{}
	for _, o := range cl.opts {
		have[o] = true
	}
	added := false
	keys := s.pinnedKeys(cl.placed)
	for _, o := range cl.reserve {
		if len(cl.opts) >= s.maxOpts {
			break
		}
		// Only pricier options: the cheapest, which the plan launches and
		// whose labels the topology counts used, stays first. Each option
		// is checked against the limits alone, so together they stay
		// within them too (the claim counts the maximum).
		if !have[o] && o.price >= cl.opts[0].price && s.reserveFits(b, zero, cl.placed, keys, o) {
			cl.opts = append(cl.opts, o)
			added = true
		}
	}
	cl.reserve = nil
	if added {
		s.refreshClaim(b)
		sort.SliceStable(cl.opts, func(i, j int) bool { return cl.opts[i].price < cl.opts[j].price })
	}
}

// keepValue keeps the options that share the cheapest option's value for
// an instance type label.
func (s *solver) keepValue(sc []claimOpt, key string) []claimOpt {
	v0, ok0 := s.its[sc[0].it].labels[key]
	out := sc[:0]
	for _, o := range sc {
		v, ok := s.its[o.it].labels[key]
		if ok == ok0 && v == v0 {
			out = append(out, o)
		}
	}
	return out
}

// applyScratch commits the narrowing checkClaim computed.
func (s *solver) applyScratch(b *bin) {
	cl := b.claim
	cl.free = s.scratchFree
	if len(cl.placed) == 0 || cl.placed[len(cl.placed)-1] != s.scratchLevel {
		cl.placed = append(cl.placed, s.scratchLevel)
	}
	if len(s.scratch) != len(cl.opts) || (len(s.scratch) > 0 && s.scratch[0] != cl.opts[0]) {
		cl.opts = append(cl.opts[:0:0], s.scratch...)
		s.refreshClaim(b)
		s.recheckEligibility(b)
	}
}

// recheckEligibility re-evaluates, after claim b's options narrowed, which
// spread groups count pods on it: the type it would launch may now carry
// other labels. Pods already on b join or leave the counts of every group
// whose verdict flipped, so skews stay exact.
func (s *solver) recheckEligibility(b *bin) {
	for _, g := range s.spreadGroups {
		if b.id >= len(g.elig) || g.elig[b.id] == 0 {
			continue // never asked; eligible() will evaluate it fresh
		}
		was := g.elig[b.id] > 0
		g.elig[b.id] = 0
		now := s.eligible(g, b)
		if was == now {
			continue
		}
		d, ok := s.domainOf(b, g.key)
		if !ok {
			continue
		}
		delta := int32(-1)
		if now {
			delta = 1
			g.domains[d] = true
			g.binDomains[d] = true
		}
		for _, idx := range b.podIdx {
			if g.selects(s.p.Pods[idx], s.p.Namespaces) {
				g.counts[d] += delta
				g.total += delta
			}
		}
		g.minDirty = true
	}
}

// finishClaim turns a claim into the plan's PlannedNodeClaim.
func (s *solver) finishClaim(b *bin) PlannedNodeClaim {
	cl := b.claim
	np := cl.pool.np
	n := s.res.n()
	s.widenOptions(b)
	opts := cl.opts
	maxOpts := s.maxOpts
	if len(opts) > maxOpts {
		capped := append([]claimOpt{}, opts[:maxOpts]...)
		for _, o := range opts[maxOpts:] {
			if s.minValuesOK(cl.pool, capped) {
				break
			}
			capped = append(capped, o)
		}
		opts = capped
	}
	launch := opts[0]
	labels := map[string]string{}
	for k, v := range b.labels {
		if k != LabelHostname {
			labels[k] = v
		}
	}
	for k := range s.its[launch.it].labels {
		if v, ok := s.agreed(opts, k); ok {
			labels[k] = v
		}
	}
	var reqs []Requirement
	itReq := Requirement{Key: LabelInstanceType, Operator: OpIn}
	for _, r := range np.Requirements {
		switch {
		case r.Key == LabelInstanceType:
			itReq.MinValues = max(itReq.MinValues, r.MinValues)
		case r.Key == LabelZone || r.Key == LabelCapacityType:
		case cl.pool.free[r.Key] != nil:
		default:
			reqs = append(reqs, r)
		}
	}
	freeKeys := make([]string, 0, len(cl.free))
	for k := range cl.free {
		freeKeys = append(freeKeys, k)
	}
	sort.Strings(freeKeys)
	for _, k := range freeKeys {
		if dom := cl.free[k]; len(dom) > 0 {
			labels[k] = dom[0]
			reqs = append(reqs, Requirement{Key: k, Operator: OpIn, Values: []string{dom[0]}})
		}
	}
	reqs = append(reqs,
		Requirement{Key: LabelZone, Operator: OpIn, Values: []string{cl.zone}},
		Requirement{Key: LabelCapacityType, Operator: OpIn, Values: []string{cl.ct}})
	names := make([]string, len(opts))
	for i, o := range opts {
		names[i] = s.its[o.it].name
	}
	itReq.Values = names
	reqs = append(reqs, itReq)
	requests := append([]int64{}, b.used...)
	addVec(requests, cl.pool.overheadOf(int(launch.it), int(launch.off), n))
	return PlannedNodeClaim{
		NodePool:            np.Name,
		Requirements:        reqs,
		Labels:              labels,
		Taints:              append([]Taint(nil), np.Taints...),
		StartupTaints:       append([]Taint(nil), np.StartupTaints...),
		InstanceTypeOptions: names,
		InstanceType:        s.its[launch.it].name,
		Zone:                cl.zone,
		CapacityType:        cl.ct,
		PricePerHour:        launch.price,
		Pods:                append([]PodRef(nil), b.pending...),
		Requests:            s.res.resources(requests),
	}
}
