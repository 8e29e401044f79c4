package solver

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/flotilla-io/flotilla/internal/patternlp"
)

// The pattern strategy: with a long budget, plan resource-only batches by
// the pattern LP.
//
// When every pending pod needs nothing but resources (no node selector or
// affinity, no inter-pod rules, no spread, no host ports or volumes) and
// nothing exists yet to place them on, choosing nodes is a cutting-stock
// problem: which instance types, each with which mix of pods. The
// first-fit strategies decide that pod by pod; the pattern LP of
// internal/patternlp decides it for the whole batch by column generation
// and rounds the LP to whole nodes. It takes seconds to minutes, so it
// runs only when the caller gives an explicit improvement budget of at
// least PatternMinBudget, and stops at the budget. Its nodes are then
// opened and filled through the same checks as every other placement, and
// the plan competes with the first-fit strategies on cost.

// PatternMinBudget is the smallest Options.ImproveBudget that runs the
// pattern strategy.
const PatternMinBudget = time.Second

// patternMaxClasses bounds the pod classes the strategy takes on: the LP
// has a row per class and keeps its basis inverse dense.
const patternMaxClasses = 500

// patternPool returns the NodePool a pattern plan may open its nodes in:
// the first one every class tolerates and has candidates in, when the
// problem suits the strategy.
func (s *solver) patternPool() (*poolInfo, bool) {
	if len(s.bins) > 0 || len(s.classes) == 0 || len(s.classes) > patternMaxClasses || s.maxNewClaims >= 0 {
		return nil, false
	}
	for _, c := range s.classes {
		if len(c.levels) != 1 || len(c.selectedBy)+len(c.ownsAnti)+len(c.symAnti)+len(c.owns)+len(c.spreadBy)+len(c.affinityBy) > 0 {
			return nil, false
		}
		lv := c.levels[0]
		if !lv.reqs.empty() || len(lv.spreads)+len(lv.affinity)+len(lv.anti)+len(lv.pinKeys) > 0 || len(c.rep.HostPorts) > 0 {
			return nil, false
		}
	}
pools:
	for _, pi := range s.pools {
		for _, c := range s.classes {
			lv := c.levels[0]
			if !tolerated(c.rep, pi.np.Taints, lv.avoidSoft) || len(s.candsFor(c, lv, pi)) == 0 {
				continue pools
			}
		}
		return pi, true
	}
	return nil, false
}

// patternInput describes the classes and the pool's instance types as
// vectors: a type's capacity is the most any of its offerings leaves
// after DaemonSet overhead, its price its cheapest candidate offering.
// Both err on the generous side so that the LP's bound holds for every
// plan in the pool; a planned node that does not fit the offering it
// opens at is caught when it is filled.
func (s *solver) patternInput(pi *poolInfo) (patternlp.Input, []int) {
	n := s.res.n()
	var in patternlp.Input
	for _, c := range s.classes {
		in.Classes = append(in.Classes, patternlp.Class{Requests: c.req, Count: len(c.pods)})
	}
	typeOf := map[int32]int{} // instance type index → input type
	var its []int
	for _, c := range s.classes {
		for _, cd := range s.candsFor(c, c.levels[0], pi) {
			t, ok := typeOf[cd.it]
			if !ok {
				t = len(in.Types)
				typeOf[cd.it] = t
				its = append(its, int(cd.it))
				in.Types = append(in.Types, patternlp.Type{Capacity: make([]int64, n), Price: math.Inf(1)})
			}
			ty := &in.Types[t]
			ty.Price = math.Min(ty.Price, cd.price)
			avail := pi.availOf(int(cd.it), int(cd.off), n)
			for i := range ty.Capacity {
				ty.Capacity[i] = max(ty.Capacity[i], avail[i])
			}
		}
	}
	return in, its
}

// runPattern plans the problem by the pattern LP until deadline, and
// returns with the plan the LP's proven bound on the cost of any plan that
// places every pod (0 when it does not hold: more than one NodePool). It
// reports ok false when the problem does not suit the strategy, a planned
// node could not be opened and filled as planned, or h stopped it.
func runPattern(h *halt, p *Problem, base *solver, deadline time.Time) (attempt, bool) {
	s, err := newSolverFrom(h, p, base)
	if err != nil {
		return attempt{}, false
	}
	pi, ok := s.patternPool()
	if !ok {
		return attempt{}, false
	}
	in, its := s.patternInput(pi)
	ctx := context.Background()
	if h != nil {
		ctx = h.ctx
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	res := patternlp.Plan(ctx, in, patternlp.Options{}, 0)
	if len(res.Unfit) > 0 || h.stopped() {
		return attempt{}, false
	}
	// The LP's bound holds for every plan that places all the pods when
	// this pool is the only one.
	var bound float64
	if len(s.pools) == 1 {
		bound = res.Lower
	}
	next := make([]int, len(s.classes)) // pods of each class placed so far
	for _, nd := range res.Nodes {
		if h.stopped() {
			return attempt{}, false
		}
		var b *bin
		for ci, k := range nd.Counts {
			c := s.classes[ci]
			for range k {
				podIdx := c.pods[next[ci]]
				next[ci]++
				if b == nil {
					if b = s.openPatternClaim(c, pi, podIdx, its[nd.Type]); b == nil {
						return attempt{}, false
					}
					continue
				}
				if r, _ := s.canPlace(c, c.levels[0], b); r != accept {
					return attempt{}, false
				}
				s.commit(c, b, podIdx)
			}
		}
	}
	return attempt{s: s, cost: s.placementCost(), unsched: len(s.unscheduled), patternBound: bound}, true
}

// openPatternClaim opens a claim in pool pi targeting instance type it at
// its cheapest allowed offering, with the pod podIdx of class c on it.
func (s *solver) openPatternClaim(c *podClass, pi *poolInfo, podIdx int, it int) *bin {
	lv := c.levels[0]
	cs := s.candsFor(c, lv, pi)
	spotOK := s.spotDiversity(cs)
	okCand := func(cd *cand) bool {
		if !spotOK[cd.zc] {
			return false
		}
		ok, _ := pi.withinLimits(s.its[cd.it].capacity)
		return ok
	}
	best := -1
	for i := range cs {
		if int(cs[i].it) == it && okCand(&cs[i]) && (best < 0 || cs[i].price < cs[best].price) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := s.newClaimBin(lv, pi, cs, best, fmt.Sprintf("flotilla-new-%d", s.newClaims), okCand)
	if b == nil {
		return nil
	}
	if r, _ := s.admitClaim(c, lv, b, podIdx); r != accept {
		return nil
	}
	return b
}
