package patternlp

import (
	"math"
	"sort"
)

// item is one pod class in a pricing knapsack: its requests per dimension,
// the value the master's duals give one of its pods, and how many of its
// pods there are.
type item struct {
	w   []int64
	v   float64
	max int
	id  int // index in the caller's slice
}

// knapsackResult is the outcome of one pricing knapsack.
type knapsackResult struct {
	best  float64 // value of the best pattern found
	x     []int   // that pattern: pods per item
	upper float64 // no pattern is worth more (== best when exact)
	exact bool
	// earlier holds the last incumbents the search replaced, best first,
	// with their values: more columns for the master from the same search.
	earlier      [][]int
	earlierValue []float64
}

// keepEarlier is how many replaced incumbents a search keeps.
const keepEarlier = 3

// stopEvery is how many search nodes pass between looks at the stop
// channel: a node's bound costs microseconds, a look nanoseconds.
const stopEvery = 256

// knapsack maximizes Σ v_i x_i subject to Σ w_i x_i ≤ capacity in every
// dimension and 0 ≤ x_i ≤ max_i, x integer, by depth-first branch and bound.
// The bound at a search node is the smallest fractional knapsack over each
// dimension alone and over a weighted sum of all of them, which no
// completion can beat; dominance between items (see dominance) cuts the
// rest. After nodeLimit search nodes it stops and reports, as upper, the
// largest bound it left unexplored, so upper stays an upper bound on the
// true optimum either way. It also stops, the same way, once stop is
// closed.
func knapsack(items []item, capacity []int64, nodeLimit int, stop <-chan struct{}) knapsackResult {
	k := &ksearch{capacity: capacity, nodeLimit: nodeLimit, stop: stop}
	for i, it := range items {
		if it.v <= 0 || it.max <= 0 || fitCount(it.w, capacity) == 0 {
			continue
		}
		it.id = i
		it.max = min(it.max, fitCount(it.w, capacity))
		k.items = append(k.items, it)
	}
	// One more bounding dimension: the surrogate of all dimensions with
	// the multipliers of the best Lagrangian bound at the root. Its
	// fractional knapsack is the relaxation's bound when every dimension
	// binds together, where the single dimensions are weak.
	mu := lagrangeWeights(k.items, capacity)
	k.size = make([][]float64, len(capacity)+1)
	for d := range capacity {
		k.size[d] = make([]float64, len(k.items))
		for j, it := range k.items {
			k.size[d][j] = float64(it.w[d])
		}
	}
	sur := make([]float64, len(k.items))
	for j, it := range k.items {
		for d, w := range it.w {
			sur[j] += mu[d] * float64(w)
		}
	}
	k.size[len(capacity)] = sur
	k.mu = mu
	// Search the items by value per surrogate size; bound each dimension
	// with the items by value per unit of it.
	byVal := func(sz []float64) []int {
		order := make([]int, len(k.items))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool {
			return density(k.items[order[a]].v, sz[order[a]]) > density(k.items[order[b]].v, sz[order[b]])
		})
		return order
	}
	perm := byVal(sur)
	sorted := make([]item, len(perm))
	for j, o := range perm {
		sorted[j] = k.items[o]
	}
	k.items = sorted
	for d := range k.size {
		old := k.size[d]
		k.size[d] = make([]float64, len(perm))
		for j, o := range perm {
			k.size[d][j] = old[o]
		}
	}
	k.byDim = make([][]int, len(k.size))
	for d := range k.size {
		k.byDim[d] = byVal(k.size[d])
	}
	k.x = make([]int, len(k.items))
	k.bestX = make([]int, len(k.items))
	k.rem = append([]int64(nil), capacity...)
	k.dominance()
	k.search(0, 0)

	res := knapsackResult{best: k.best, upper: math.Max(k.best, k.maxOpen), exact: k.nodes <= k.nodeLimit}
	// Map the pattern back to the caller's item indices.
	res.x = make([]int, len(items))
	for j, it := range k.items {
		res.x[it.id] = k.bestX[j]
	}
	for e := len(k.prev) - 1; e >= 0; e-- {
		x := make([]int, len(items))
		for j, it := range k.items {
			x[it.id] = k.prev[e][j]
		}
		res.earlier = append(res.earlier, x)
		res.earlierValue = append(res.earlierValue, k.prevValue[e])
	}
	return res
}

// Value per unit of size; an item of size 0 is worth infinitely much per
// unit.
func density(v, size float64) float64 {
	if size <= 0 {
		return math.Inf(1)
	}
	return v / size
}

// lagrangeWeights returns multipliers μ ≥ 0 per dimension that make the
// Lagrangian bound Σ_d μ_d cap_d + Σ_i max_i · max(0, v_i − μ·w_i) small,
// found by projected subgradient descent in capacity-scaled units.
func lagrangeWeights(items []item, capacity []int64) []float64 {
	D := len(capacity)
	lam := make([]float64, D) // per unit of capacity share
	total := 0.0
	for _, it := range items {
		total += it.v * float64(it.max)
	}
	for d := range lam {
		lam[d] = total / float64(D)
	}
	eval := func(l []float64, g []float64) float64 {
		val := 0.0
		for d := range l {
			val += l[d]
			if g != nil {
				g[d] = 1
			}
		}
		for _, it := range items {
			r := it.v
			for d := range l {
				if capacity[d] > 0 {
					r -= l[d] * float64(it.w[d]) / float64(capacity[d])
				}
			}
			if r > 0 {
				val += float64(it.max) * r
				if g != nil {
					for d := range l {
						if capacity[d] > 0 {
							g[d] -= float64(it.max) * float64(it.w[d]) / float64(capacity[d])
						}
					}
				}
			}
		}
		return val
	}
	best := append([]float64(nil), lam...)
	bestVal := eval(lam, nil)
	g := make([]float64, D)
	step := total / float64(D)
	for range 400 {
		eval(lam, g)
		norm := 0.0
		for _, x := range g {
			norm += x * x
		}
		if norm == 0 {
			break
		}
		norm = math.Sqrt(norm)
		for d := range lam {
			lam[d] = math.Max(0, lam[d]-step*g[d]/norm)
		}
		if v := eval(lam, nil); v < bestVal {
			bestVal, best = v, append(best[:0], lam...)
		} else {
			step *= 0.9
		}
	}
	mu := make([]float64, D)
	for d := range mu {
		if capacity[d] > 0 {
			mu[d] = best[d] / float64(capacity[d])
		}
	}
	return mu
}

// fitCount is how many copies of w fit in rem.
func fitCount(w, rem []int64) int {
	n := math.MaxInt
	for d := range w {
		if w[d] == 0 {
			continue
		}
		n = min(n, int(rem[d]/w[d]))
	}
	return n
}

type ksearch struct {
	items     []item
	capacity  []int64
	size      [][]float64 // size[d][j]: item j's size in bounding dimension d
	mu        []float64   // the surrogate dimension's weights
	byDim     [][]int     // per bounding dimension, items by value per size
	nodeLimit int
	stop      <-chan struct{}

	nodes   int
	x       []int
	rem     []int64
	best    float64
	bestX   []int
	maxOpen float64
	// prev and prevValue are the last keepEarlier replaced incumbents,
	// oldest first.
	prev      [][]int
	prevValue []float64

	// Dominance (see dominance): dominates[a] lists the items a
	// dominates, dominatedBy[b] the items that dominate b; banned[b] > 0
	// forces x_b = 0, mustFill[a] > 0 forces x_a = max_a.
	dominates, dominatedBy [][]int
	banned, mustFill       []int
}

// dominance finds the pairs where item a is worth at least as much as b
// and needs no more of any dimension. Some optimal pattern then never
// holds b while a is below its count (swap one b for one a), so the search
// only looks at patterns where, for every such pair, x_b = 0 or
// x_a = max_a.
func (k *ksearch) dominance() {
	n := len(k.items)
	k.dominates = make([][]int, n)
	k.dominatedBy = make([][]int, n)
	k.banned = make([]int, n)
	k.mustFill = make([]int, n)
	for a := range k.items {
		for b := range k.items {
			if a == b || k.items[a].v < k.items[b].v || !covers(k.items[b].w, k.items[a].w) {
				continue
			}
			// Equal items: only the first dominates the second.
			if k.items[a].v == k.items[b].v && covers(k.items[a].w, k.items[b].w) && b < a {
				continue
			}
			k.dominates[a] = append(k.dominates[a], b)
			k.dominatedBy[b] = append(k.dominatedBy[b], a)
		}
	}
}

func (k *ksearch) search(i int, value float64) {
	k.nodes++
	if value > k.best {
		if k.best > 0 {
			if len(k.prev) == keepEarlier {
				k.prev, k.prevValue = k.prev[1:], k.prevValue[1:]
			}
			k.prev = append(k.prev, append([]int(nil), k.bestX...))
			k.prevValue = append(k.prevValue, k.best)
		}
		k.best = value
		copy(k.bestX, k.x)
		for j := i; j < len(k.x); j++ {
			k.bestX[j] = 0
		}
	}
	if i == len(k.items) {
		return
	}
	bound := value + k.bound(i)
	if bound <= k.best*(1+1e-12)+1e-12 {
		return
	}
	if k.nodes%stopEvery == 0 && k.stop != nil {
		select {
		case <-k.stop:
			k.nodeLimit = 0 // search no further
		default:
		}
	}
	if k.nodes > k.nodeLimit {
		k.maxOpen = math.Max(k.maxOpen, bound)
		return
	}
	it := k.items[i]
	n := min(it.max, fitCount(it.w, k.rem))
	lo := 0
	if k.banned[i] > 0 {
		n = 0
	}
	if k.mustFill[i] > 0 {
		if n < it.max {
			return
		}
		lo = it.max
	}
	for c := n; c >= lo; c-- {
		for d, w := range it.w {
			k.rem[d] -= int64(c) * w
		}
		k.x[i] = c
		k.mark(i, c, 1)
		k.search(i+1, value+float64(c)*it.v)
		k.mark(i, c, -1)
		k.x[i] = 0
		for d, w := range it.w {
			k.rem[d] += int64(c) * w
		}
	}
}

// mark applies (by +1) or undoes (by -1) the dominance rules for the
// later items once item i holds c copies.
func (k *ksearch) mark(i, c, by int) {
	if c < k.items[i].max {
		for _, b := range k.dominates[i] {
			if b > i {
				k.banned[b] += by
			}
		}
	}
	if c > 0 {
		for _, a := range k.dominatedBy[i] {
			if a > i {
				k.mustFill[a] += by
			}
		}
	}
}

// bound is the most the items from i on could add within k.rem: the
// smallest over bounding dimensions of the fractional knapsack on that
// dimension alone, each item capped at the copies that fit in every
// dimension.
func (k *ksearch) bound(i int) float64 {
	b := math.Inf(1)
	for d, order := range k.byDim {
		var left float64
		if d < len(k.rem) {
			left = float64(k.rem[d])
		} else {
			for e, r := range k.rem {
				left += k.mu[e] * float64(r)
			}
		}
		sz := k.size[d]
		sum := 0.0
		for _, j := range order {
			if j < i || k.banned[j] > 0 {
				continue
			}
			it := k.items[j]
			n := min(it.max, fitCount(it.w, k.rem))
			if n == 0 {
				continue
			}
			if sz[j] <= 0 {
				sum += float64(n) * it.v
				continue
			}
			if left <= 0 {
				break
			}
			take := math.Min(float64(n), left/sz[j])
			sum += take * it.v
			left -= take * sz[j]
		}
		b = math.Min(b, sum)
		if b <= 0 {
			return 0
		}
	}
	return b
}
