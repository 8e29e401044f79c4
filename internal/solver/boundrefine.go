package solver

import (
	"math"
	"sort"
)

// Refining the bound with weights per offering.
//
// The argument of bound.go holds node by node: a node bought at offering
// s charges its pods with s's weights, and those charges add up to at
// most s's price whatever the weights are, as long as they are on the
// simplex. So every offering may have weights of its own, and
//
//	u_c(W) = min over offerings s pod c may use of Σ_r W_s[r] g_{c,s}[r]
//
// still gives a valid bound Σ_c n_c u_c(W). (With one weight vector per
// offering this is the dual of the LP relaxation over instance types.)
// Starting from the best common weights w, refineBound gives own weights
// to the offerings of the instance types that charge the classes most
// cheaply (at most maxRefined types, all offerings of a type sharing
// them), keeps w for every other offering (a class's
// cheapest charge among those is computed once), and improves the own
// weights by projected subgradient ascent. Any weights it visits give a
// valid bound; it returns the best.

// maxRefined bounds the offerings that get weights of their own, and
// refineSteps the ascent's steps.
const (
	maxRefined  = 64
	refineSteps = 150
	// refineStall ends the ascent after that many steps without a better
	// bound.
	refineStall = 20
)

// refEntry is the cost vector of one class at one refined offering.
type refEntry struct {
	src int // index into the refined offerings
	g   []float64
}

func (s *solver) refineBound(cls []*podClass, bcs []boundClass, dims []int, w []float64) float64 {
	d := len(dims)
	ids := refinedSources(cls, bcs, w)
	ns := make([]float64, len(bcs))
	for i := range bcs {
		ns[i] = float64(bcs[i].n)
	}
	if len(ids) == 0 {
		return 0
	}
	rest := make([]float64, len(cls))   // cheapest charge at other offerings
	own := make([][]refEntry, len(cls)) // cost vectors at refined offerings
	for i, c := range cls {
		if s.halt.stopped() {
			return 0
		}
		rest[i] = math.Inf(1)
		s.forSources(c, dims, func(src int, g []float64) {
			if k, ok := ids[src/maxOfferings]; ok {
				own[i] = append(own[i], refEntry{src: k, g: append([]float64(nil), g...)})
				return
			}
			rest[i] = min(rest[i], dot(w, g))
		})
	}
	W := make([][]float64, len(ids))
	for k := range W {
		W[k] = append([]float64(nil), w...)
	}
	grad := make([][]float64, len(ids))
	for k := range grad {
		grad[k] = make([]float64, d)
	}
	best, since := 0.0, 0
	for step := 0; step < refineSteps && since < refineStall && !s.halt.stopped(); step++ {
		for k := range grad {
			clear(grad[k])
		}
		total := 0.0
		for i := range cls {
			u, at := rest[i], -1
			for j, e := range own[i] {
				if v := dot(W[e.src], e.g); v < u {
					u, at = v, j
				}
			}
			total += ns[i] * u
			if at >= 0 {
				e := own[i][at]
				for r := range e.g {
					grad[e.src][r] += ns[i] * e.g[r]
				}
			}
		}
		if total > best*(1+1e-9) {
			best, since = total, 0
		} else {
			since++
		}
		eta := 0.5 / math.Sqrt(float64(step+1))
		for k := range W {
			norm := math.Sqrt(dot(grad[k], grad[k]))
			if norm == 0 {
				continue
			}
			for r := range W[k] {
				W[k][r] += eta * grad[k][r] / norm
			}
			projectSimplex(W[k])
		}
	}
	return best
}

// refinedSources picks the instance types (per NodePool) whose offerings
// get own weights, shared by every offering of the type (each node still
// charges at most its own price): for every class the types of the three
// cheapest of its Pareto-minimal cost vectors under w, ranked by how many
// pods they charge (then by number, for determinism), at most maxRefined.
// It maps source / maxOfferings to 0, 1, ...
func refinedSources(cls []*podClass, bcs []boundClass, w []float64) map[int]int {
	weight := map[int]float64{}
	type cand struct {
		src int
		v   float64
	}
	var top [3]cand
	for ci, bc := range bcs {
		n := 0
		for j, g := range bc.g {
			x := cand{bc.srcs[j] / maxOfferings, dot(w, g)}
			if n == len(top) && x.v >= top[len(top)-1].v {
				continue
			}
			if n < len(top) {
				n++
			}
			i := n - 1
			for ; i > 0 && x.v < top[i-1].v; i-- {
				top[i] = top[i-1]
			}
			top[i] = x
		}
		for rank := 0; rank < n; rank++ {
			weight[top[rank].src] += float64(len(cls[ci].pods)) / float64(rank+1)
		}
	}
	srcs := make([]int, 0, len(weight))
	for src := range weight {
		srcs = append(srcs, src)
	}
	sort.Slice(srcs, func(a, b int) bool {
		if weight[srcs[a]] != weight[srcs[b]] {
			return weight[srcs[a]] > weight[srcs[b]]
		}
		return srcs[a] < srcs[b]
	})
	if len(srcs) > maxRefined {
		srcs = srcs[:maxRefined]
	}
	ids := make(map[int]int, len(srcs))
	for i, src := range srcs {
		ids[src] = i
	}
	return ids
}

func dot(a, b []float64) float64 {
	v := 0.0
	for i := range a {
		v += a[i] * b[i]
	}
	return v
}

// projectSimplex replaces v by its Euclidean projection onto the simplex
// {x ≥ 0, Σ x = 1}.
func projectSimplex(v []float64) {
	u := append([]float64(nil), v...)
	sort.Sort(sort.Reverse(sort.Float64Slice(u)))
	sum, theta := 0.0, 0.0
	for i, x := range u {
		sum += x
		if t := (sum - 1) / float64(i+1); x-t > 0 {
			theta = t
		}
	}
	for i := range v {
		v[i] = max(v[i]-theta, 0)
	}
}
