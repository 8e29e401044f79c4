package patternlp

import (
	"context"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// bestPattern enumerates every count vector: the true optimum of a small
// knapsack.
func bestPattern(items []item, capacity []int64) float64 {
	best := 0.0
	x := make([]int, len(items))
	var rec func(i int, rem []int64, v float64)
	rec = func(i int, rem []int64, v float64) {
		if i == len(items) {
			best = math.Max(best, v)
			return
		}
		for c := 0; c <= items[i].max; c++ {
			ok := true
			next := make([]int64, len(rem))
			for d := range rem {
				next[d] = rem[d] - int64(c)*items[i].w[d]
				ok = ok && next[d] >= 0
			}
			if !ok {
				break
			}
			x[i] = c
			rec(i+1, next, v+float64(c)*items[i].v)
		}
	}
	rec(0, capacity, 0)
	return best
}

func drawKnapsack(t *rapid.T) ([]item, []int64) {
	dims := rapid.IntRange(1, 3).Draw(t, "dims")
	capacity := make([]int64, dims)
	for d := range capacity {
		capacity[d] = rapid.Int64Range(0, 20).Draw(t, "cap")
	}
	items := make([]item, rapid.IntRange(0, 5).Draw(t, "items"))
	for i := range items {
		w := make([]int64, dims)
		for d := range w {
			w[d] = rapid.Int64Range(0, 9).Draw(t, "w")
		}
		items[i] = item{w: w, v: float64(rapid.IntRange(0, 50).Draw(t, "v")), max: rapid.IntRange(0, 4).Draw(t, "max")}
		if slicesAllZero(w) {
			items[i].max = min(items[i].max, 2) // free items still have a count limit
		}
	}
	return items, capacity
}

func slicesAllZero(w []int64) bool {
	for _, v := range w {
		if v != 0 {
			return false
		}
	}
	return true
}

// The branch and bound finds the optimum, its pattern fits and is worth
// what it says; cut short, its upper bound still holds.
func TestPropertyKnapsackExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		items, capacity := drawKnapsack(t)
		want := bestPattern(items, capacity)
		for _, limit := range []int{1_000_000, rapid.IntRange(1, 5).Draw(t, "limit")} {
			got := knapsack(items, capacity, limit, nil)
			checkPattern(t, items, capacity, got.x, got.best)
			for e, x := range got.earlier {
				checkPattern(t, items, capacity, x, got.earlierValue[e])
				if got.earlierValue[e] > got.best {
					t.Fatalf("an earlier incumbent is worth %v, more than the best %v", got.earlierValue[e], got.best)
				}
			}
			if got.upper < want-1e-6 {
				t.Fatalf("limit %d: upper bound %v below the optimum %v", limit, got.upper, want)
			}
			if got.exact && math.Abs(got.best-want) > 1e-6 {
				t.Fatalf("exact search found %v, optimum %v", got.best, want)
			}
		}
	})
}

// checkPattern fails unless x fits capacity within the item counts and
// is worth value.
func checkPattern(t *rapid.T, items []item, capacity []int64, x []int, value float64) {
	sum := 0.0
	used := make([]int64, len(capacity))
	for i, k := range x {
		if k < 0 || k > items[i].max {
			t.Fatalf("item %d: count %d outside [0, %d]", i, k, items[i].max)
		}
		sum += float64(k) * items[i].v
		for d := range used {
			used[d] += int64(k) * items[i].w[d]
		}
	}
	for d := range used {
		if used[d] > capacity[d] {
			t.Fatalf("pattern %v uses %d of dimension %d, capacity %d", x, used[d], d, capacity[d])
		}
	}
	if math.Abs(sum-value) > 1e-6 {
		t.Fatalf("pattern %v is worth %v, reported %v", x, sum, value)
	}
}

// drawInput draws 1..3 types over (cpu, memory, pods) and 1..4 classes
// of 1..3 pods, every class fitting the first type.
func drawInput(t *rapid.T) Input {
	var in Input
	for range rapid.IntRange(1, 3).Draw(t, "types") {
		in.Types = append(in.Types, Type{
			Capacity: []int64{rapid.Int64Range(1, 8).Draw(t, "cpu"), rapid.Int64Range(1, 16).Draw(t, "mem"), rapid.Int64Range(1, 4).Draw(t, "maxPods")},
			Price:    float64(rapid.IntRange(1, 100).Draw(t, "price")) / 100,
		})
	}
	first := in.Types[0].Capacity
	for range rapid.IntRange(1, 4).Draw(t, "classes") {
		in.Classes = append(in.Classes, Class{
			Requests: []int64{rapid.Int64Range(1, first[0]).Draw(t, "podCPU"), rapid.Int64Range(0, first[1]).Draw(t, "podMem"), 1},
			Count:    rapid.IntRange(1, 3).Draw(t, "count"),
		})
	}
	return in
}

// optimum tries every partition of the pods into nodes, each node the
// cheapest type that holds its pods.
func optimum(in Input) float64 {
	var pods []int // class of each pod
	for c, cl := range in.Classes {
		for range cl.Count {
			pods = append(pods, c)
		}
	}
	nodeCost := func(group []int) float64 {
		best := math.Inf(1)
		for _, ty := range in.Types {
			ok := true
			for d := range ty.Capacity {
				sum := int64(0)
				for _, c := range group {
					sum += in.Classes[c].Requests[d]
				}
				ok = ok && sum <= ty.Capacity[d]
			}
			if ok {
				best = math.Min(best, ty.Price)
			}
		}
		return best
	}
	best := math.Inf(1)
	var groups [][]int
	var rec func(i int, cost float64)
	rec = func(i int, cost float64) {
		if cost >= best {
			return
		}
		if i == len(pods) {
			best = cost
			return
		}
		for g := range groups {
			old := nodeCost(groups[g])
			groups[g] = append(groups[g], pods[i])
			if c := nodeCost(groups[g]); !math.IsInf(c, 1) {
				rec(i+1, cost-old+c)
			}
			groups[g] = groups[g][:len(groups[g])-1]
		}
		groups = append(groups, []int{pods[i]})
		if c := nodeCost(groups[len(groups)-1]); !math.IsInf(c, 1) {
			rec(i+1, cost+c)
		}
		groups = groups[:len(groups)-1]
	}
	rec(0, 0)
	return best
}

// On tiny inputs column generation converges, the bound never beats the
// true optimum, and the rounded plan places every pod on nodes that hold
// them and never costs less than the optimum.
func TestPropertyBoundBelowOptimum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := drawInput(t)
		want := optimum(in)
		plan := Plan(context.Background(), in, Options{}, 0)
		if !plan.Converged || plan.Stopped || len(plan.Unfit) > 0 {
			t.Fatalf("converged %v, stopped %v, unfit %v", plan.Converged, plan.Stopped, plan.Unfit)
		}
		if plan.Lower > want+1e-6 {
			t.Fatalf("bound %v above the optimum %v", plan.Lower, want)
		}
		if plan.Master < plan.Lower-1e-6 {
			t.Fatalf("master %v below the bound %v", plan.Master, plan.Lower)
		}
		if plan.Cost < want-1e-6 {
			t.Fatalf("rounded plan costs %v, below the optimum %v", plan.Cost, want)
		}
		checkPlan(t, in, plan)
		if b := Bound(context.Background(), in, Options{}); b.Lower != plan.Lower {
			t.Fatalf("Bound gives %v, Plan %v", b.Lower, plan.Lower)
		}
	})
}

// checkPlan fails unless the plan places each class exactly and every
// node holds its pods.
func checkPlan(t interface{ Fatalf(string, ...any) }, in Input, plan PlanResult) {
	left := make([]int, len(in.Classes))
	for c, cl := range in.Classes {
		left[c] = cl.Count
	}
	for _, c := range plan.Unfit {
		left[c] = 0
	}
	cost := 0.0
	for _, nd := range plan.Nodes {
		ty := in.Types[nd.Type]
		for d := range ty.Capacity {
			sum := int64(0)
			for c, k := range nd.Counts {
				sum += int64(k) * in.Classes[c].Requests[d]
			}
			if sum > ty.Capacity[d] {
				t.Fatalf("node of type %d uses %d of dimension %d, capacity %d", nd.Type, sum, d, ty.Capacity[d])
			}
		}
		for c, k := range nd.Counts {
			left[c] -= k
		}
		cost += ty.Price
	}
	for c, k := range left {
		if k != 0 {
			t.Fatalf("class %d: %d pods left unplaced (negative: placed twice)", c, k)
		}
	}
	if math.Abs(cost-plan.Cost) > 1e-6 {
		t.Fatalf("nodes cost %v, plan says %v", cost, plan.Cost)
	}
}

// Ten 1-cpu pods on 4-cpu nodes at $1/h: the LP needs 2.5 nodes, a plan 3.
func TestPlanTextbook(t *testing.T) {
	in := Input{Types: []Type{{Capacity: []int64{4, 110}, Price: 1}}, Classes: []Class{{Requests: []int64{1, 1}, Count: 10}}}
	plan := Plan(context.Background(), in, Options{}, 0)
	if math.Abs(plan.Lower-2.5) > 1e-9 || math.Abs(plan.Master-2.5) > 1e-9 || !plan.Converged {
		t.Fatalf("bound %v, master %v, converged %v; want 2.5, 2.5, true", plan.Lower, plan.Master, plan.Converged)
	}
	if plan.Cost != 3 || len(plan.Nodes) != 3 {
		t.Fatalf("plan: %d nodes at $%v/h, want 3 at $3/h", len(plan.Nodes), plan.Cost)
	}
	checkPlan(t, in, plan)
}

// A class no type fits is listed, not planned; a dominated type is never
// used.
func TestPlanUnfitAndDominated(t *testing.T) {
	in := Input{
		Types:   []Type{{Capacity: []int64{2}, Price: 2}, {Capacity: []int64{4}, Price: 1}},
		Classes: []Class{{Requests: []int64{64}, Count: 1}, {Requests: []int64{1}, Count: 3}},
	}
	plan := Plan(context.Background(), in, Options{}, 0)
	if len(plan.Unfit) != 1 || plan.Unfit[0] != 0 || plan.Types != 1 {
		t.Fatalf("unfit %v, types priced %d; want [0] and 1", plan.Unfit, plan.Types)
	}
	if plan.Cost != 1 || len(plan.Nodes) != 1 || plan.Nodes[0].Type != 1 {
		t.Fatalf("plan %+v at $%v/h, want one node of type 1 at $1/h", plan.Nodes, plan.Cost)
	}
	checkPlan(t, in, plan)
}

// A cancelled context still yields a plan that places every pod.
func TestPlanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := Input{Types: []Type{{Capacity: []int64{4}, Price: 1}, {Capacity: []int64{16}, Price: 3}},
		Classes: []Class{{Requests: []int64{3}, Count: 5}, {Requests: []int64{1}, Count: 7}}}
	plan := Plan(ctx, in, Options{}, 0)
	if !plan.Stopped {
		t.Fatal("a cancelled run does not say it stopped")
	}
	checkPlan(t, in, plan)
}
