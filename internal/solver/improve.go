package solver

import (
	"runtime"
	"sync"
	"time"
)

// DefaultImproveBudget is the time Solve spends trying further placement
// strategies after the first, when Options.ImproveBudget is zero.
const DefaultImproveBudget = 200 * time.Millisecond

// strategy is one way to run the first-fit placement: the order classes
// are placed in and how far open claims may grow (see grow.go).
type strategy struct {
	byCost    bool
	growSlack float64
}

// strategies are tried in this order; the first always runs. The order
// puts first what did best on the benchmark workloads.
var strategies = []strategy{
	{byCost: true, growSlack: 1},
	{byCost: true, growSlack: 2},
	{byCost: false, growSlack: 1},
	{byCost: false, growSlack: 0},
	{byCost: true, growSlack: 0.5},
	{byCost: false, growSlack: 2},
}

// attempt is the outcome of one strategy.
type attempt struct {
	s    *solver
	plan *Plan
	err  error
}

func runStrategy(p *Problem, st strategy) attempt {
	s, err := newSolver(p)
	if err != nil {
		return attempt{err: err}
	}
	s.growSlack = st.growSlack
	if st.byCost {
		s.orderByCost()
	}
	s.placeAll()
	return attempt{s: s, plan: s.plan()}
}

// improve runs strategies in parallel (one per CPU) while the budget
// lasts, or exactly Options.ImproveRounds of them when that is set, and
// returns the best plan: fewest unschedulable pods, then cheapest, then
// earliest strategy. Every plan is a complete first-fit placement, so the
// choice never trades validity for cost.
func improve(p *Problem) attempt {
	rounds := p.Options.ImproveRounds
	budget := p.Options.ImproveBudget
	if budget == 0 {
		budget = DefaultImproveBudget
	}
	if rounds <= 0 && budget < 0 {
		rounds = 1
	}
	rounds = min(rounds, len(strategies))
	start := time.Now()
	results := make([]attempt, len(strategies))
	ran := make([]bool, len(strategies))
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i := range strategies {
		slots <- struct{}{} // wait for a free CPU before looking at the clock
		if rounds > 0 && i >= rounds || rounds <= 0 && i > 0 && time.Since(start) >= budget {
			break
		}
		ran[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			results[i] = runStrategy(p, strategies[i])
		}()
	}
	wg.Wait()
	return pickBest(results, ran)
}

func pickBest(results []attempt, ran []bool) attempt {
	best := -1
	for i, a := range results {
		if !ran[i] {
			continue
		}
		if a.err != nil {
			return a
		}
		if best < 0 || better(a.plan, results[best].plan) {
			best = i
		}
	}
	return results[best]
}

func better(a, b *Plan) bool {
	if len(a.Unschedulable) != len(b.Unschedulable) {
		return len(a.Unschedulable) < len(b.Unschedulable)
	}
	return a.CostPerHour < b.CostPerHour-1e-9
}
