// Package patternlp computes a lower bound on the cost of any plan for a
// set of pending pods by the LP relaxation of the node-pattern
// formulation, solved by column generation with exact pricing.
//
// A pattern is an instance type with a number of pods of each class (pods
// with equal requests) that fit on it together. Every plan buys whole
// patterns, so its cost is at least the optimum of
//
//	minimize Σ_p price_p z_p  subject to  Σ_p x_{p,c} z_p ≥ n_c for every class c,  z ≥ 0.
//
// Column generation solves that LP over a growing set of patterns. Its
// dual gives each pod of class c a price y_c ≥ 0. For any such prices,
// scaling them by θ = min over types t of price_t / V_t(y), where V_t(y) is
// the most a pattern of t can be worth at prices y, makes them dual
// feasible, so θ Σ_c n_c y_c is a valid bound (Farley's bound). V_t is an
// integer knapsack, solved here by branch and bound; when the search is cut
// short its own upper bound stands in for V_t, which keeps the bound valid.
//
// The input is vectors only: the caller chooses the dimensions (resources
// and a pod count) and which instance types each class may use. Anything
// the input leaves out (selectors, affinities, spread, taints, NodePool
// limits) only removes patterns, so a bound computed without it still
// holds. On the trace workload it takes minutes.
package patternlp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Input is a problem as vectors over common dimensions (for example cpu,
// memory, GPUs and a pod count of 1 per pod).
type Input struct {
	Classes []Class
	Types   []Type
}

// Class is Count pods with equal Requests.
type Class struct {
	Requests []int64
	Count    int
}

// Type is an instance type: what pods may use of it and its price.
type Type struct {
	Capacity []int64
	Price    float64
}

// Options tune Bound and Plan. Zero values take the defaults.
type Options struct {
	// MaxRounds caps the column-generation rounds (default 500).
	MaxRounds int
	// NodeLimit caps the branch-and-bound nodes of one pricing knapsack
	// (default 2,000,000).
	NodeLimit int
	// StopAbove ends the run once the proven bound reaches it (0: never).
	StopAbove float64
	// Progress, if set, is called after every round.
	Progress func(Round)
}

// Round reports one column-generation round.
type Round struct {
	Round   int
	Master  float64 // cost of the restricted master's optimum
	Lower   float64 // best proven bound so far
	Added   int     // patterns added this round
	Exact   bool    // every pricing knapsack of the round was solved exactly
	Elapsed time.Duration
}

// Result is the outcome of Bound.
type Result struct {
	// Lower is a proven lower bound on the cost of any plan that places
	// every pod of the classes some type fits on new nodes.
	Lower float64
	// Master is the cost of the last restricted master: an upper bound on
	// the LP optimum (the LP optimum lies in [Lower, Master]).
	Master float64
	// Converged is true when no pattern prices out under exact pricing, so
	// Lower == Master == the LP optimum (up to rounding).
	Converged bool
	// Stopped is true when the context ended the run early; the other
	// fields describe the last complete round.
	Stopped bool
	Rounds  int
	Columns int
	// Types counts the instance types priced (the undominated ones).
	Types int
	// Unfit lists the classes no type fits; they are left out.
	Unfit []int
	// Patterns is the master's last solution, by decreasing cost.
	Patterns []Pattern
}

// Pattern is one column of the master's solution: Nodes (a fractional
// LP weight) nodes of Type, each with Counts[c] pods of class c.
type Pattern struct {
	Type   int
	Counts []int
	Nodes  float64
}

type itype struct {
	orig  int // index in Input.Types
	cap   []int64
	price float64
}

// Bound runs column generation for in. It returns early, with Stopped
// set, when ctx ends.
func Bound(ctx context.Context, in Input, opt Options) Result {
	md, n, res := newModel(in, &opt)
	if len(md.classes) == 0 {
		res.Converged = true
		return res
	}
	lp := md.solveLP(ctx, n, opt)
	res.Lower, res.Master, res.Converged, res.Stopped, res.Rounds = lp.lower, lp.master, lp.converged, lp.stopped, lp.rounds
	res.Columns = len(md.pool)
	res.Patterns = md.patterns(lp.z)
	return res
}

// newModel keeps the instance types worth pricing; classes no type fits
// get a demand of 0.
func newModel(in Input, opt *Options) (*model, []int, Result) {
	if opt.MaxRounds <= 0 {
		opt.MaxRounds = 500
	}
	if opt.NodeLimit <= 0 {
		opt.NodeLimit = 2_000_000
	}
	md := &model{classes: in.Classes, types: buildTypes(in.Types), seen: map[string]int{}}
	res := Result{Types: len(md.types)}
	n := make([]int, len(in.Classes))
	for c, cl := range in.Classes {
		if md.cheapestSingle(cl.Requests, cl.Count) < 0 {
			if cl.Count > 0 {
				res.Unfit = append(res.Unfit, c)
			}
			continue
		}
		n[c] = cl.Count
	}
	return md, n, res
}

// column is a pattern: an instance type (index into model.types) and pods
// per class.
type column struct {
	t int
	x []int
}

// model is the classes and instance types of one problem, with every
// pattern column generation has found so far.
type model struct {
	classes []Class
	types   []itype
	pool    []column
	seen    map[string]int // pool index by patternKey
}

// addColumn adds a pattern to the pool unless it is there already, and
// returns its index.
func (md *model) addColumn(t int, x []int) int {
	key := patternKey(t, x)
	if j, ok := md.seen[key]; ok {
		return j
	}
	md.seen[key] = len(md.pool)
	md.pool = append(md.pool, column{t: t, x: x})
	return len(md.pool) - 1
}

// lpResult is one column-generation run.
type lpResult struct {
	lower, master      float64
	converged, stopped bool
	rounds             int
	z                  []float64 // nodes per pool column in the master's solution
}

// solveLP runs column generation for the demand n (pods per class; a
// class with none is left out), starting from every pattern in the pool,
// each capped at the demand. When ctx ends it returns the master's last
// solution, which is always feasible.
func (md *model) solveLP(ctx context.Context, n []int, opt Options) lpResult {
	var rows []int // the classes with demand
	for c, k := range n {
		if k > 0 {
			rows = append(rows, c)
		}
	}
	var out lpResult
	out.z = make([]float64, len(md.pool))
	if len(rows) == 0 {
		out.converged = true
		return out
	}
	ms, fromPool, err := md.startMaster(rows, n)
	if err != nil {
		return out
	}
	restrict := func(x []int) []float64 {
		col := make([]float64, len(rows))
		for r, c := range rows {
			col[r] = float64(min(x[c], n[c]))
		}
		return col
	}
	addAll := func(from int) {
		for j := from; j < len(md.pool); j++ {
			col := restrict(md.pool[j].x)
			if slices.ContainsFunc(col, func(v float64) bool { return v > 0 }) {
				ms.add(col, md.types[md.pool[j].t].price)
				fromPool = append(fromPool, j)
			}
		}
	}
	addAll(0)
	pc := &pricing{n: n, nf: make([]float64, len(n))}
	for c, k := range n {
		pc.nf[c] = float64(k)
	}
	solved := false
	begin := time.Now()
	for round := 1; round <= opt.MaxRounds; round++ {
		if ctx.Err() != nil {
			out.stopped = true
			break
		}
		if err := ms.solve(ctx, 1_000_000); err != nil {
			// Out of time, or numerical trouble: keep the last basis,
			// which is feasible.
			out.stopped = errors.Is(err, errStopped)
			break
		}
		solved = true
		yr := ms.duals()
		y := make([]float64, len(md.classes))
		for r, c := range rows {
			y[c] = math.Max(yr[r], 0)
		}
		out.master = ms.objective()
		out.rounds = round
		before := len(md.pool)
		exact := md.priceRound(ctx, pc, y, opt.NodeLimit)
		out.lower = pc.lower
		added := len(md.pool) - before
		addAll(before)
		if opt.Progress != nil {
			opt.Progress(Round{Round: round, Master: out.master, Lower: out.lower, Added: added, Exact: exact, Elapsed: time.Since(begin)})
		}
		if added == 0 {
			out.converged = exact
			break
		}
		if opt.StopAbove > 0 && out.lower >= opt.StopAbove {
			break
		}
	}
	if !solved {
		out.master = ms.objective()
	}
	out.z = make([]float64, len(md.pool))
	for k, j := range ms.basis {
		if j >= 0 && ms.xb[k] > 1e-9 {
			out.z[fromPool[j]] += ms.xb[k]
		}
	}
	return out
}

// startMaster builds the master for the classes rows with demand n, from a
// basis of one single-class pattern per row; it returns the pool column of
// each master column.
func (md *model) startMaster(rows, n []int) (*master, []int, error) {
	var fromPool []int
	rhs := make([]float64, len(rows))
	start := make([][]float64, len(rows))
	startCost := make([]float64, len(rows))
	for r, c := range rows {
		rhs[r] = float64(n[c])
		w := md.classes[c].Requests
		t := md.cheapestSingle(w, n[c])
		k := min(n[c], fitCount(w, md.types[t].cap))
		x := make([]int, len(md.classes))
		x[c] = k
		fromPool = append(fromPool, md.addColumn(t, x))
		start[r] = make([]float64, len(rows))
		start[r][r] = float64(k)
		startCost[r] = md.types[t].price
	}
	ms, err := newMaster(rhs, start, startCost)
	return ms, fromPool, err
}

// pricing is what column generation keeps between rounds.
type pricing struct {
	n      []int     // demand per class
	nf     []float64 // the same as floats
	lower  float64   // best Farley bound so far
	center []float64 // the duals that gave it
}

// priceRound adds to the pool the patterns that price out at the master's
// duals y and raises pc.lower by Farley's bound. It prices first at duals
// smoothed toward the best-bound ones (Wentges): they swing less between
// rounds, so fewer rounds. A pattern must still price out at y; when none
// does, it prices at y itself, and when that finds none but some searches
// were cut short, gives those ten times the nodes once. It returns whether
// the last pricing was exact.
func (md *model) priceRound(ctx context.Context, pc *pricing, y []float64, nodeLimit int) bool {
	before := len(md.pool)
	exact := true
	use := func(ys []float64, priced []knapsackResult) {
		theta := math.Inf(1)
		exact = true
		for i, pr := range priced {
			exact = exact && pr.exact
			if pr.upper > 0 {
				theta = math.Min(theta, md.types[i].price/pr.upper)
			}
		}
		if lb := theta * dotv(pc.nf, ys); !math.IsInf(theta, 1) && lb > pc.lower {
			pc.lower, pc.center = lb, ys
		}
		for i, pr := range priced {
			price := md.types[i].price * (1 + 1e-9)
			for e, x := range append([][]int{pr.x}, pr.earlier...) {
				if (e > 0 || pr.best > 0) && valueAt(x, y) > price {
					md.addColumn(i, x)
				}
			}
		}
	}
	if pc.center != nil {
		ys := make([]float64, len(y))
		for c := range y {
			ys[c] = smoothing*pc.center[c] + (1-smoothing)*y[c]
		}
		use(ys, priceAll(ctx, md.classes, md.types, ys, pc.n, nodeLimit, nil))
	}
	if len(md.pool) > before {
		return exact
	}
	priced := priceAll(ctx, md.classes, md.types, y, pc.n, nodeLimit, nil)
	use(y, priced)
	if len(md.pool) == before && !exact {
		use(y, priceAll(ctx, md.classes, md.types, y, pc.n, 10*nodeLimit, priced))
	}
	return exact
}

// smoothing is the weight of the best-bound duals in the duals a round
// prices at.
const smoothing = 0.5

// valueAt is what pattern x is worth at duals y.
func valueAt(x []int, y []float64) float64 {
	v := 0.0
	for c, k := range x {
		v += float64(k) * y[c]
	}
	return v
}

// patterns lists the columns with weight in z, costliest first.
func (md *model) patterns(z []float64) []Pattern {
	var out []Pattern
	for j, w := range z {
		if w > 1e-9 {
			out = append(out, Pattern{Type: md.types[md.pool[j].t].orig, Counts: md.pool[j].x, Nodes: w})
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		return out[a].Nodes*md.priceOf(out[a].Type) > out[b].Nodes*md.priceOf(out[b].Type)
	})
	return out
}

func (md *model) priceOf(orig int) float64 {
	for _, t := range md.types {
		if t.orig == orig {
			return t.price
		}
	}
	return 0
}

// cheapestSingle is the type with the lowest price per pod for up to n
// pods of requests w alone, or -1 if none fits one.
func (md *model) cheapestSingle(w []int64, n int) int {
	best, at := math.Inf(1), -1
	for i, t := range md.types {
		k := min(n, fitCount(w, t.cap))
		if k > 0 && t.price/float64(k) < best {
			best, at = t.price/float64(k), i
		}
	}
	return at
}

// priceAll solves the pricing knapsack of every type, in parallel; once
// ctx ends the searches under way stop early (their upper bounds still
// hold) and no other starts: a type not searched gets no pattern and the
// upper bound +Inf, which holds and proves nothing.
//
// With earlier set, it prices again only the types whose earlier search
// was cut short with an upper bound above the price, and keeps the others.
func priceAll(ctx context.Context, classes []Class, types []itype, y []float64, n []int, nodeLimit int, earlier []knapsackResult) []knapsackResult {
	out := make([]knapsackResult, len(types))
	copy(out, earlier)
	items := make([]item, len(classes))
	for i, c := range classes {
		items[i] = item{w: c.Requests, v: y[i], max: n[i]}
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = knapsack(items, types[i].cap, nodeLimit, ctx.Done())
			}
		}()
	}
	for i := range types {
		again := earlier == nil || !earlier[i].exact && earlier[i].upper > types[i].price
		if !again {
			continue
		}
		if ctx.Err() != nil {
			if earlier == nil {
				out[i] = knapsackResult{upper: math.Inf(1)}
			}
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func patternKey(t int, x []int) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(t))
	for c, k := range x {
		if k != 0 {
			fmt.Fprintf(&b, " %d:%d", c, k)
		}
	}
	return b.String()
}

// buildTypes returns the priced types without the dominated ones
// (another type at most as expensive with at least as much of every
// dimension; of equal types the first stays).
func buildTypes(in []Type) []itype {
	var out []itype
	for i, a := range in {
		if a.Price < 0 || math.IsInf(a.Price, 0) || math.IsNaN(a.Price) {
			continue
		}
		dominated := false
		for j, b := range in {
			if i != j && b.Price <= a.Price && covers(b.Capacity, a.Capacity) &&
				(b.Price < a.Price || !covers(a.Capacity, b.Capacity) || j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, itype{orig: i, cap: a.Capacity, price: a.Price})
		}
	}
	return out
}

func covers(a, b []int64) bool {
	for d := range a {
		if a[d] < b[d] {
			return false
		}
	}
	return true
}
