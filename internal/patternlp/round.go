package patternlp

import (
	"context"
	"math"
	"sort"
	"time"
)

// PlanResult is a plan in whole nodes built from the pattern LP.
type PlanResult struct {
	Result
	// Cost is the plan's cost: the sum of its nodes' prices.
	Cost float64
	// Nodes are the plan's nodes. Together they hold exactly Count pods of
	// every class some type fits.
	Nodes []Node
	// LPs counts the column-generation runs, the first one included.
	LPs int
}

// Node is one node of a PlanResult: an instance type (index into
// Input.Types) and the pods per class on it.
type Node struct {
	Type   int
	Counts []int
}

// Plan solves the pattern LP like Bound, then rounds it to whole nodes by
// residual rounding: it buys ⌊z⌋ nodes of every pattern, solves the LP
// again for the pods left, and when no pattern has z ≥ 1 buys one node of
// the heaviest, until every pod is placed. residualRounds caps the
// column-generation rounds of each later LP (0: 40). With a deadline on
// ctx, the first LP stops at two thirds of the time left. When ctx ends, the
// last LP's patterns are rounded up instead, and any pod still left goes
// on the cheapest node per pod of its class alone, so a Plan always places
// every pod.
func Plan(ctx context.Context, in Input, opt Options, residualRounds int) PlanResult {
	md, n, res := newModel(in, &opt)
	out := PlanResult{Result: res}
	if residualRounds <= 0 {
		residualRounds = 40
	}
	// The first LP gets at most two thirds of the time left, the rounding
	// the rest.
	lpCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lpCtx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)*2/3))
		defer cancel()
	}
	lp := md.solveLP(lpCtx, n, opt)
	out.Lower, out.Master, out.Converged, out.Stopped, out.Rounds = lp.lower, lp.master, lp.converged, lp.stopped, lp.rounds
	out.Patterns = md.patterns(lp.z)
	out.LPs = 1
	left := append([]int(nil), n...)
	total := 0
	for _, k := range left {
		total += k
	}
	buy := func(col column) bool {
		node := Node{Type: md.types[col.t].orig, Counts: make([]int, len(md.classes))}
		placed := 0
		for c, k := range col.x {
			k = min(k, left[c])
			node.Counts[c] = k
			left[c] -= k
			placed += k
		}
		if placed == 0 {
			return false
		}
		total -= placed
		out.Nodes = append(out.Nodes, node)
		out.Cost += md.types[col.t].price
		return true
	}
	residual := opt
	residual.MaxRounds = residualRounds
	residual.Progress = nil
	for total > 0 {
		order := make([]int, 0, len(lp.z))
		for j, z := range lp.z {
			if z > 1e-9 {
				order = append(order, j)
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return lp.z[order[a]] > lp.z[order[b]] })
		bought := false
		for _, j := range order {
			for range int(math.Floor(lp.z[j] + 1e-9)) {
				if !buy(md.pool[j]) {
					break
				}
				bought = true
			}
		}
		if ctx.Err() != nil {
			// Out of time: round the rest of this LP up.
			for _, j := range order {
				buy(md.pool[j])
			}
			break
		}
		for _, j := range order {
			if bought {
				break
			}
			bought = buy(md.pool[j])
		}
		if !bought {
			break // the LP failed: the fallback below places the rest
		}
		if total == 0 {
			break
		}
		lp = md.solveLP(ctx, left, residual)
		out.LPs++
	}
	// Whatever is left (only when out of time or when an LP failed): each
	// class alone on its cheapest type per pod.
	for c := range left {
		for left[c] > 0 {
			t := md.cheapestSingle(md.classes[c].Requests, left[c])
			x := make([]int, len(md.classes))
			x[c] = fitCount(md.classes[c].Requests, md.types[t].cap)
			buy(column{t: t, x: x})
		}
	}
	out.Columns = len(md.pool)
	return out
}
