package solver

import "math"

// The lower bound.
//
// Every new node of instance type t bought at offering price c and holding
// pods S satisfies, for every resource r, Σ_{p∈S} req_p[r] ≤ avail_t[r]
// (allocatable less DaemonSet overhead). For any weights w ≥ 0 with
// Σ_r w_r = 1 it follows that
//
//	Σ_{p∈S} c · Σ_r w_r req_p[r]/avail_t[r] ≤ c · Σ_r w_r = c,
//
// so charging each pod u_p(w) = min over the offerings it may use of
// c · Σ_r w_r req_p[r]/avail_t[r] never charges a node more than its
// price: Σ_p u_p(w) is a lower bound on the cost of every plan that
// places those pods, for every w on the simplex. (Taking the maximum over
// resources per pod instead is NOT valid: a CPU-only pod and a
// memory-only pod share one node.) A pod that fits on an existing node or
// in-flight NodeClaim is charged nothing.
//
// f(w) = Σ_p u_p(w) is concave (a sum of minima of linear functions), so a
// pattern search over the simplex finds a good w; whatever w it ends at,
// f(w) is evaluated exactly and is valid. With per-instance-type weights
// instead of one global w this is the dual of the LP relaxation over
// instance types; the global family is that LP restricted to weights
// proportional to allocatable, exact when instance types are scaled copies
// of each other (the KarpenterMix catalog) and close on real catalogs.

// boundClass is one pod class as the bound sees it: how many of its pods
// are counted and, per offering it may use, its cost vector
// g[r] = price · req[r] / avail[r] (only Pareto-minimal vectors are kept,
// srcs says which offering gave each).
type boundClass struct {
	n    int64
	g    [][]float64
	srcs []int
}

// lowerBound returns a lower bound on the cost per hour of the new
// NodeClaims of any plan that places every pod this solve placed (0, which
// always holds, when the solve's halt stops it).
func (s *solver) lowerBound() float64 {
	dims := s.boundDims()
	if len(dims) == 0 {
		return 0
	}
	var classes []boundClass
	var counted []*podClass
	for _, c := range s.classes {
		if s.halt.stopped() {
			return 0
		}
		n := int64(0)
		for _, idx := range c.pods {
			if _, bad := s.unscheduled[idx]; !bad {
				n++
			}
		}
		if n == 0 || s.fitsExisting(c) {
			continue
		}
		g, srcs := s.classCostVectors(c, dims)
		if len(g) == 0 {
			continue // placed on an existing node only; charged nothing
		}
		classes = append(classes, boundClass{n: n, g: g, srcs: srcs})
		counted = append(counted, c)
	}
	if len(classes) == 0 {
		return 0
	}
	w, best := maximizeBound(s.halt, classes, len(dims))
	if s.halt.stopped() {
		return 0
	}
	best = max(best, s.refineBound(counted, classes, dims, w))
	// Shave a little off so float rounding never lifts the bound above an
	// optimum that meets it exactly.
	return best * (1 - 1e-9)
}

// boundDims lists the resources some pending pod requests.
func (s *solver) boundDims() []int {
	var dims []int
	for r := 0; r < s.res.n(); r++ {
		for _, c := range s.classes {
			if c.req[r] > 0 {
				dims = append(dims, r)
				break
			}
		}
	}
	return dims
}

// fitsExisting reports whether one pod of class c fits, by labels, taints
// and free resources before this solve, on some existing node or in-flight
// NodeClaim.
func (s *solver) fitsExisting(c *podClass) bool {
	lv := c.levels[len(c.levels)-1]
	for _, b := range s.bins {
		if b.kind == binNew || b.deleted || s.existingOff {
			continue
		}
		base := s.baseUsed[b.id]
		if base == nil || !fitsIn(base, c.req, b.alloc) {
			continue
		}
		if tolerated(c.rep, b.taints, false) && lv.reqs.matches(b.labels) {
			return true
		}
	}
	return false
}

// classCostVectors lists the Pareto-minimal cost vectors of the offerings
// (over every NodePool whose taints the class tolerates) that one pod of
// class c may use, by its required node constraints only.
// It also returns the source of each (see forSources).
func (s *solver) classCostVectors(c *podClass, dims []int) ([][]float64, []int) {
	var front [][]float64
	var srcs []int
	s.forSources(c, dims, func(src int, g []float64) { front, srcs = paretoInsert(front, srcs, g, src) })
	return front, srcs
}

// forSources calls fn with the cost vector g (reused between calls) of
// every offering, over every NodePool whose taints class c tolerates, that
// one pod of c may use by its required constraints; src numbers the
// (NodePool, instance type, offering).
func (s *solver) forSources(c *podClass, dims []int, fn func(src int, g []float64)) {
	lv := c.levels[len(c.levels)-1]
	n := s.res.n()
	g := make([]float64, len(dims))
	for _, pi := range s.pools {
		if !tolerated(c.rep, pi.np.Taints, false) {
			continue
		}
		mask := s.compatMask(lv, pi)
		for _, it := range s.its {
			m := mask[it.idx]
			for o := range it.offers {
				if m&(1<<uint(o)) == 0 {
					continue
				}
				avail := pi.availOf(it.idx, o, n)
				if copiesIn(c.req, avail) < 1 {
					continue
				}
				price := it.offers[o].PricePerHour
				for i, r := range dims {
					g[i] = 0
					if c.req[r] > 0 {
						g[i] = price * float64(c.req[r]) / float64(avail[r])
					}
				}
				fn((pi.idx*len(s.its)+it.idx)*maxOfferings+o, g)
			}
		}
	}
}

// paretoInsert adds a copy of g to front unless some vector there is no
// larger in every component; it drops the vectors g dominates.
// srcs runs parallel to front: the source (see forSources) of each vector.
func paretoInsert(front [][]float64, srcs []int, g []float64, src int) ([][]float64, []int) {
	for _, f := range front {
		if dominates(f, g) {
			return front, srcs
		}
	}
	out, outSrc := front[:0], srcs[:0]
	for i, f := range front {
		if !dominates(g, f) {
			out = append(out, f)
			outSrc = append(outSrc, srcs[i])
		}
	}
	return append(out, append([]float64(nil), g...)), append(outSrc, src)
}

func dominates(a, b []float64) bool {
	for i := range a {
		if a[i] > b[i] {
			return false
		}
	}
	return true
}

// evalBound is f(w): the sum over classes of n times the cheapest w-cost.
func evalBound(classes []boundClass, w []float64) float64 {
	total := 0.0
	for i := range classes {
		bc := &classes[i]
		best := math.Inf(1)
		for _, g := range bc.g {
			v := 0.0
			for r, x := range g {
				v += w[r] * x
			}
			best = min(best, v)
		}
		total += float64(bc.n) * best
	}
	return total
}

// maxBoundEvals caps the evaluations of f(w) one bound may take.
const maxBoundEvals = 4000

// maximizeBound searches the simplex for the weights with the largest
// f(w): the best vertex or the centre to start, then pattern moves that
// shift weight between two resources, halving the step when none helps.
// It is deterministic; once h stops, it returns what it has (still a
// bound).
func maximizeBound(h *halt, classes []boundClass, d int) ([]float64, float64) {
	w := make([]float64, d)
	best := -1.0
	evals := 0
	try := func(cand []float64) bool {
		evals++
		if v := evalBound(classes, cand); v > best*(1+1e-12) {
			best = v
			copy(w, cand)
			return true
		}
		return false
	}
	cand := make([]float64, d)
	for i := range cand {
		cand[i] = 1 / float64(d)
	}
	try(cand)
	for r := 0; r < d; r++ {
		clear(cand)
		cand[r] = 1
		try(cand)
	}
	for step := 0.25; step > 1e-4; step /= 2 {
		for moved := true; moved && evals < maxBoundEvals && !h.stopped(); {
			moved = false
			for i := 0; i < d; i++ {
				for j := 0; j < d; j++ {
					if i == j || w[i] <= 0 {
						continue
					}
					copy(cand, w)
					delta := min(step, cand[i])
					cand[i] -= delta
					cand[j] += delta
					if try(cand) {
						moved = true
					}
				}
			}
		}
	}
	return w, best
}
