package solver

import (
	"math"
	"sort"
)

// Growing claims.
//
// A new claim is opened on the instance type that holds the most pods of
// the class that opened it per dollar, and keeps only cheaper types as
// options, so it can shrink but not grow. A pod whose own node would be
// mostly empty (a hostname anti-affinity pod, say) then leaves most of a
// small node unused. With growth on, a pod that fits no bin as it is may
// upgrade an open claim to a pricier option at the same offering (from the
// claim's reserve) when the extra price is no more than growSlack times
// what the pod would cost on a node of its own, per copy. Every rule the
// claim's pods already passed is re-checked for the new option
// (reserveFits), exactly as for a pod that must join a claim by affinity.

// perPodCost is the cheapest price per pod of the class on a new node at
// level lv: price over the copies that fit (bounded by selfCap), over
// every NodePool whose taints the class tolerates.
func (s *solver) perPodCost(c *podClass, lv *level) float64 {
	if lv.perPod > 0 {
		return lv.perPod
	}
	best := math.Inf(1)
	for _, pi := range s.pools {
		if !tolerated(c.rep, pi.np.Taints, lv.avoidSoft) {
			continue
		}
		for _, cd := range s.candsFor(c, lv, pi) {
			k := min(cd.copies, lv.selfCap)
			best = min(best, cd.price/float64(k))
		}
	}
	lv.perPod = best
	return best
}

// growFit tries to place the pod on an open claim that upgrades to a
// pricier option for it (see scan.go for the claims it skips).
func (s *solver) growFit(c *podClass, lv *level, podIdx int, why *reasons) *bin {
	limit := s.growSlack * s.perPodCost(c, lv)
	if math.IsInf(limit, 1) || limit <= 0 {
		return nil
	}
	s.growLimit = limit
	s.growing = true
	defer s.memoZones(c, lv)()
	b := s.scanBins(&lv.grow, lv.sticky, maxGrowScan, func(b *bin) reject {
		if b.kind != binNew || len(b.claim.reserve) == 0 || !fitsIn(b.used, c.req, b.claim.reserveAlloc) {
			return rejectPermanent
		}
		r, w := s.canPlace(c, lv, b)
		if r == rejectTransient {
			why.topology(w)
		}
		return r
	})
	if b != nil {
		s.commit(c, b, podIdx)
	}
	s.growing = false
	return b
}

// maxGrowScan caps the claims one growFit call examines, so that a level
// whose rejections are not permanent (topology spread) does not make
// placement quadratic in the number of claims.
const maxGrowScan = 4096

// growOpts lists, cheapest first, the reserve options that cost at most
// the grow limit more than the claim's cheapest option and that every pod
// on the claim and this one accept.
func (s *solver) growOpts(c *podClass, lv *level, b *bin, sc []claimOpt) []claimOpt {
	cl := b.claim
	if len(cl.opts) == 0 {
		return sc
	}
	base := cl.opts[0].price
	n := s.res.n()
	var levels []*level
	var keys []string
	// The reserve is cheapest first: skip what costs less than the claim.
	start := 0
	for start < len(cl.reserve) && cl.reserve[start].price < base {
		start++
	}
	for _, o := range cl.reserve[start:] {
		if o.price-base > s.growLimit || len(sc) >= s.maxOpts {
			break
		}
		if !fitsIn(b.used, c.req, cl.pool.availOf(int(o.it), int(o.off), n)) {
			continue
		}
		if levels == nil {
			levels = append(append(make([]*level, 0, len(cl.placed)+1), cl.placed...), lv)
			keys = s.pinnedKeys(levels)
		}
		if s.reserveFits(b, c.req, levels, keys, o) {
			sc = append(sc, o)
		}
	}
	return sc
}

// orderByCost re-sorts the classes by what one pod costs on a node of its
// own (perPodCost at the first level), most expensive first, so pods of
// scarce resources (GPUs, say) open their nodes before cheap pods, which
// then fill the room left on them. Classes that fit nowhere go last; ties
// keep the size order.
func (s *solver) orderByCost() {
	cost := make(map[*podClass]float64, len(s.classes))
	for _, c := range s.classes {
		v := s.perPodCost(c, c.levels[0])
		if math.IsInf(v, 1) {
			v = -1
		}
		cost[c] = v
	}
	sort.SliceStable(s.classes, func(a, b int) bool {
		return cost[s.classes[a]] > cost[s.classes[b]]
	})
}
