package solver

import (
	"sort"
	"time"
)

// Repacking: local search after placement.
//
// First fit sizes each claim when it opens and grows it as pods arrive, so
// a finished claim often launches a type one size above what its pods
// need, while other nodes have room to spare. Repacking takes one claim at
// a time, most room left first: it takes every pod off the claim, resets
// the claim to every instance type of its NodePool at its zone and
// capacity type, then moves each pod (largest first) onto another node or
// claim where it fits at no extra price (the target's launch type does not
// change), or puts it back. The change is kept when the claim now launches
// a cheaper type or nothing at all; otherwise everything is rolled back.
//
// Moves keep every plan valid by construction:
//   - the target accepts the pod by the same canPlace checks as first fit;
//   - a pod only moves between bins in the same domain for every topology
//     key other than the hostname that it, or a group counting it, uses,
//     with the same spread eligibility, so zonal (and other non-hostname)
//     counts never change and no other pod's spread, affinity or
//     anti-affinity is affected;
//   - pods with hostname pod affinity, or selected by a hostname affinity
//     term, never move (another pod on the claim may depend on them), nor do
//     pods whose groups count instance type or open NodePool keys;
//   - hostname counts only drop on the claim left (spread is checked
//     conservatively, with a minimum of zero, so that never breaks another
//     pod) and are checked on the target;
//   - it runs only when spread eligibility cannot change as claims narrow,
//     and never on NodePools with limits.

// maxRepackPasses bounds the passes over every claim.
const maxRepackPasses = 3

// repack improves the placement until a pass changes nothing, the passes
// run out, the deadline (zero: none) passes or the solve's halt stops it.
// The placement is valid whenever it returns: each claim's repacking is
// kept whole or rolled back whole.
func (s *solver) repack(deadline time.Time) {
	if !s.repackable() {
		return
	}
	for pass := 0; pass < maxRepackPasses && !s.halt.stopped(); pass++ {
		improved := false
		s.measureRoom()
		for _, a := range s.repackOrder() {
			if s.halt.stopped() || !deadline.IsZero() && s.halt.now().After(deadline) {
				return
			}
			if s.repackClaim(a) {
				improved = true
			}
		}
		if !improved {
			return
		}
	}
}

func (s *solver) repackable() bool {
	for _, g := range s.spreadGroups {
		if g.eligReqs != nil && !g.eligReqs.empty() {
			return false
		}
	}
	return true
}

func (n *nodeReqs) empty() bool {
	return len(n.selector) == 0 && len(n.terms) == 0 && len(n.volumes) == 0
}

// repackOrder lists the open claims by the share of their launch type's
// cpu and memory left unused, most first.
func (s *solver) repackOrder() []*bin {
	type cw struct {
		b     *bin
		spare float64
	}
	var out []cw
	n := s.res.n()
	for _, b := range s.bins {
		if b.kind != binNew || b.deleted || len(b.podIdx) == 0 || b.claim.pool.limited {
			continue
		}
		o := b.claim.opts[0]
		avail := b.claim.pool.availOf(int(o.it), int(o.off), n)
		spare := 0.0
		for _, r := range []int{resCPU, resMem} {
			if avail[r] > 0 {
				spare += float64(avail[r]-b.used[r]) / float64(avail[r])
			}
		}
		out = append(out, cw{b, spare})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].spare > out[j].spare })
	bins := make([]*bin, len(out))
	for i := range out {
		bins[i] = out[i].b
	}
	return bins
}

// classOf returns the class of pending pod idx.
func (s *solver) classOf(idx int) *podClass {
	if s.podClass == nil {
		s.podClass = make([]*podClass, len(s.p.Pods))
		for _, c := range s.classes {
			for _, i := range c.pods {
				s.podClass[i] = c
			}
		}
	}
	return s.podClass[idx]
}

// moveKeys returns the non-hostname topology keys whose domain a pod of
// class c must keep when it moves, and whether it may move at all.
func (s *solver) moveKeys(c *podClass) ([]string, bool) {
	if c.moveChecked {
		return c.moveKeys, c.movable
	}
	c.moveChecked = true
	seen := map[string]bool{}
	ok := true
	add := func(g *group) {
		if g.key == LabelHostname {
			return
		}
		if s.itKeys[g.key] || s.isFreeKey(g.key) {
			ok = false
		}
		if !seen[g.key] {
			seen[g.key] = true
			c.moveKeys = append(c.moveKeys, g.key)
		}
	}
	for _, g := range c.selectedBy {
		if g.kind == groupAffinity && g.key == LabelHostname {
			ok = false
		}
		add(g)
	}
	for _, gs := range [][]*group{c.ownsAnti, c.symAnti} {
		for _, g := range gs {
			add(g)
		}
	}
	for _, lv := range c.levels {
		if lv.sticky {
			ok = false
		}
		for i := range lv.spreads {
			add(lv.spreads[i].g)
		}
		for _, tcs := range [][]termCheck{lv.affinity, lv.anti} {
			for i := range tcs {
				add(tcs[i].g)
			}
		}
	}
	sort.Strings(c.moveKeys)
	c.movable = ok
	return c.moveKeys, ok
}

func (s *solver) isFreeKey(key string) bool {
	for _, pi := range s.pools {
		if _, ok := pi.free[key]; ok {
			return true
		}
	}
	return false
}

// binSnap is what a repack attempt may change on a bin.
type binSnap struct {
	b       *bin
	used    []int64
	ports   []HostPort
	pending []PodRef
	podIdx  []int
	alloc   []int64
	claim   claim
}

func (s *solver) snap(b *bin) binSnap {
	sn := binSnap{b: b, used: append([]int64(nil), b.used...), ports: b.ports, pending: b.pending, podIdx: b.podIdx, alloc: b.alloc}
	if b.claim != nil {
		sn.claim = *b.claim
	}
	return sn
}

func (s *solver) restore(sn *binSnap) {
	b := sn.b
	copy(b.used, sn.used)
	b.ports, b.pending, b.podIdx, b.alloc = sn.ports, sn.pending, sn.podIdx, sn.alloc
	if cl := b.claim; cl != nil {
		if cl.maxCap != nil {
			subVec(cl.pool.committed, cl.maxCap)
		}
		*cl = sn.claim
		if cl.maxCap != nil {
			addVec(cl.pool.committed, cl.maxCap)
		}
	}
}

// uncount undoes count for a pod leaving b.
func (s *solver) uncount(b *bin, groups []*group, owned []*group) {
	for _, g := range groups {
		if g.kind == groupSpread && !s.eligible(g, b) {
			continue
		}
		if d, ok := s.domainOf(b, g.key); ok {
			g.counts[d]--
			g.total--
			g.minDirty = true
		}
	}
	for _, g := range owned {
		if d, ok := s.domainOf(b, g.key); ok {
			g.owners[d]--
			g.ownerTotal--
		}
	}
}

type repackMove struct {
	idx  int
	to   *bin
	snap binSnap
}

// repackClaim tries to make claim a cheaper (see the top of the file); it
// reports whether it did.
func (s *solver) repackClaim(a *bin) bool {
	cl := a.claim
	if a.deleted || len(a.podIdx) == 0 || cl.pool.limited {
		return false
	}
	pods := append([]int(nil), a.podIdx...)
	for _, idx := range pods {
		if _, ok := s.moveKeys(s.classOf(idx)); !ok {
			return false
		}
	}
	oldPrice := cl.opts[0].price
	if !s.mayShrink(a, pods, oldPrice) {
		return false
	}
	snapA := s.snap(a)
	for _, idx := range pods {
		c := s.classOf(idx)
		s.uncount(a, c.selectedBy, c.owns)
	}
	clear(a.used)
	a.ports, a.pending, a.podIdx = nil, nil, nil
	s.resetClaim(a, oldPrice)
	order := append([]int(nil), pods...)
	sort.SliceStable(order, func(i, j int) bool {
		x, y := s.classOf(order[i]).req, s.classOf(order[j]).req
		if x[resCPU] != y[resCPU] {
			return x[resCPU] > y[resCPU]
		}
		return x[resMem] > y[resMem]
	})
	var moved []repackMove
	ok := true
	for _, idx := range order {
		c := s.classOf(idx)
		if b, sn := s.moveOut(c, idx, a); b != nil {
			moved = append(moved, repackMove{idx: idx, to: b, snap: sn})
			continue
		}
		if !s.putBack(c, idx, a) {
			ok = false
			break
		}
	}
	newPrice := 0.0
	if len(a.podIdx) > 0 {
		newPrice = cl.opts[0].price
	}
	if ok && newPrice < oldPrice*(1-1e-9) {
		if len(a.podIdx) == 0 {
			s.releaseClaim(a)
			a.deleted = true
		} else {
			s.noteRoom(a)
		}
		return true
	}
	for i := len(moved) - 1; i >= 0; i-- {
		m := &moved[i]
		c := s.classOf(m.idx)
		s.uncount(m.to, c.selectedBy, c.owns)
		s.restore(&m.snap)
		s.measureFree(m.to)
	}
	for _, idx := range a.podIdx {
		c := s.classOf(idx)
		s.uncount(a, c.selectedBy, c.owns)
	}
	s.restore(&snapA)
	for _, idx := range pods {
		c := s.classOf(idx)
		s.count(a, c.selectedBy, c.owns)
		s.placedOn[idx] = a
	}
	return false
}

// resetClaim gives claim a every instance type its NodePool offers at its
// zone and capacity type up to price limit (its launch type among them),
// cheapest first; placing pods narrows them again.
func (s *solver) resetClaim(a *bin, limit float64) {
	cl := a.claim
	zc := s.zcID(cl.zone, cl.ct)
	var opts []claimOpt
	for _, cd := range cl.pool.order {
		if cd.price > limit {
			break
		}
		if cd.zc == zc {
			opts = append(opts, claimOpt{it: cd.it, off: cd.off, price: cd.price})
		}
	}
	cl.opts = opts
	cl.free = cl.pool.free
	cl.placed = nil
	cl.reserve = nil
	cl.reserveAlloc = nil
	s.refreshClaim(a)
}

// moveOut puts pending pod idx of class c, just taken off claim a, on the
// first other bin that takes it at no extra price and keeps its domains.
func (s *solver) moveOut(c *podClass, idx int, a *bin) (*bin, binSnap) {
	keys, _ := s.moveKeys(c)
	bins := s.binsByZone[""]
	if len(keys) > 0 {
		bins = s.binsByZone[a.labels[LabelZone]]
	}
	for _, b := range bins {
		if !fitsFree(c.req, s.freeRoom[b.id]) || b == a || b.deleted || !s.sameDomains(c, keys, a, b) {
			continue
		}
		for _, lv := range c.levels {
			if r, _ := s.canPlace(c, lv, b); r != accept {
				continue
			}
			if b.claim != nil && s.scratch[0].price != b.claim.opts[0].price {
				break
			}
			sn := s.snap(b)
			s.commit(c, b, idx)
			s.measureFree(b)
			return b, sn
		}
	}
	return nil, binSnap{}
}

// sameDomains reports whether bins a and b are in the same domain for
// every key and count alike for every spread group selecting class c.
func (s *solver) sameDomains(c *podClass, keys []string, a, b *bin) bool {
	for _, k := range keys {
		da, oka := s.domainOf(a, k)
		db, okb := s.domainOf(b, k)
		if oka != okb || da != db {
			return false
		}
	}
	for _, g := range c.selectedBy {
		if g.kind == groupSpread && s.eligible(g, a) != s.eligible(g, b) {
			return false
		}
	}
	return true
}

// putBack places pending pod idx of class c back on claim a.
func (s *solver) putBack(c *podClass, idx int, a *bin) bool {
	for _, lv := range c.levels {
		if r, _ := s.canPlace(c, lv, a); r == accept {
			s.commit(c, a, idx)
			return true
		}
	}
	return false
}

// roomTop keeps, per resource, the two largest rooms and the bins that
// have them, so that the largest room outside one bin is known.
type roomTop struct {
	v [2][]int64
	b [2][]*bin
}

func newRoomTop(n int) *roomTop {
	return &roomTop{v: [2][]int64{make([]int64, n), make([]int64, n)}, b: [2][]*bin{make([]*bin, n), make([]*bin, n)}}
}

func (t *roomTop) note(b *bin, free []int64) {
	for r, q := range free {
		switch {
		case t.b[0][r] == b:
			t.v[0][r] = max(t.v[0][r], q)
		case q > t.v[0][r]:
			t.v[1][r], t.b[1][r] = t.v[0][r], t.b[0][r]
			t.v[0][r], t.b[0][r] = q, b
		case q > t.v[1][r]:
			t.v[1][r], t.b[1][r] = q, b
		}
	}
}

// fitsOutside reports whether req fits, resource by resource, in the
// largest room of some bin other than a (a necessary condition for a move).
func (t *roomTop) fitsOutside(a *bin, req []int64) bool {
	for r, q := range req {
		if q <= 0 {
			continue
		}
		v := t.v[0][r]
		if t.b[0][r] == a {
			v = t.v[1][r]
		}
		if q > v {
			return false
		}
	}
	return true
}

// measureRoom records, per zone and over all bins, the largest rooms bins
// have at their launch price: an upper bound on what a pod may move into
// (bins only fill up during a pass, except claims that repacking shrank,
// which noteRoom adds).
func (s *solver) measureRoom() {
	s.roomAll = newRoomTop(s.res.n())
	s.roomZone = map[string]*roomTop{}
	s.binsByZone = map[string][]*bin{}
	for _, b := range s.bins {
		if !b.deleted && (!s.existingOff || b.kind == binNew) {
			s.noteRoom(b)
			z := b.labels[LabelZone]
			s.binsByZone[z] = append(s.binsByZone[z], b)
			if z != "" {
				s.binsByZone[""] = append(s.binsByZone[""], b)
			}
		}
	}
}

func (s *solver) noteRoom(b *bin) {
	free := s.measureFree(b)
	s.roomAll.note(b, free)
	z := b.labels[LabelZone]
	if s.roomZone[z] == nil {
		s.roomZone[z] = newRoomTop(s.res.n())
	}
	s.roomZone[z].note(b, free)
}

// measureFree records in s.freeRoom what bin b has left at its launch
// price and returns it.
func (s *solver) measureFree(b *bin) []int64 {
	n := s.res.n()
	for len(s.freeRoom) <= b.id {
		s.freeRoom = append(s.freeRoom, nil)
	}
	room := b.alloc
	if b.claim != nil {
		o := b.claim.opts[0]
		room = b.claim.pool.availOf(int(o.it), int(o.off), n)
	}
	free := s.freeRoom[b.id]
	if free == nil {
		free = make([]int64, n)
		s.freeRoom[b.id] = free
	}
	for i := range free {
		free[i] = room[i] - b.used[i]
	}
	return free
}

// mayShrink is a quick necessary condition for repacking claim a: some
// instance type at its offering cheaper than oldPrice holds what stays
// when every pod that might fit elsewhere (by measureRoom) leaves.
func (s *solver) mayShrink(a *bin, pods []int, oldPrice float64) bool {
	n := s.res.n()
	stay := make([]int64, n)
	zoneRoom := s.roomZone[a.labels[LabelZone]]
	for _, idx := range pods {
		c := s.classOf(idx)
		keys, _ := s.moveKeys(c)
		room := s.roomAll
		if len(keys) > 0 {
			room = zoneRoom
		}
		if room == nil || !room.fitsOutside(a, c.req) {
			addVec(stay, c.req)
		}
	}
	if stay[resPods] == 0 {
		return true
	}
	cl := a.claim
	zc := s.zcID(cl.zone, cl.ct)
	for _, cd := range cl.pool.order {
		if cd.price >= oldPrice*(1-1e-9) {
			return false
		}
		if cd.zc == zc && fitsIn(make([]int64, n), stay, cl.pool.availOf(int(cd.it), int(cd.off), n)) {
			return true
		}
	}
	return false
}

// fitsFree reports whether req fits in free room.
func fitsFree(req, free []int64) bool {
	for i, q := range req {
		if q > free[i] {
			return false
		}
	}
	return true
}
