package solver

import (
	"runtime"
	"sync"
	"time"
)

// DefaultImproveBudget caps the time Solve spends (further placement
// strategies and repacking) when Options.ImproveBudget is zero; the budget
// is then scaled to the problem (see improve).
const DefaultImproveBudget = 200 * time.Millisecond

// strategy is one way to run the first-fit placement: the order classes
// are placed in and how far open claims may grow (see grow.go).
type strategy struct {
	byCost    bool
	growSlack float64
	// openCopies, when positive, caps the pods of the opening class a new
	// claim is sized for, leaving room for other classes to mix in.
	openCopies int64
}

// strategies are tried in this order; the first always runs. The order
// puts first what did best on the benchmark workloads.
var strategies = []strategy{
	{byCost: true, growSlack: 2.5, openCopies: 16},
	{byCost: true, growSlack: 1},
	{byCost: true, growSlack: 1.75},
	{byCost: true, growSlack: 2},
	{byCost: false, growSlack: 1},
	{byCost: false, growSlack: 0},
	{byCost: true, growSlack: 0.5},
	{byCost: false, growSlack: 2},
}

// attempt is the outcome of one strategy: a placement (not yet turned
// into a plan), its cost and how many pods it left out.
type attempt struct {
	s       *solver
	cost    float64
	unsched int
	plan    *Plan
	err     error
	// patternBound is the pattern LP's bound on any plan placing every
	// pod, when the pattern strategy ran and has one (pattern.go).
	patternBound float64
}

func runStrategy(h *halt, p *Problem, base *solver, st strategy) attempt {
	s, err := newSolverFrom(h, p, base)
	if err != nil {
		return attempt{err: err}
	}
	s.growSlack = st.growSlack
	s.openCopies = st.openCopies
	if st.byCost {
		s.orderByCost()
	}
	s.placeAll()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	return attempt{s: s, cost: s.placementCost(), unsched: len(s.unscheduled)}
}

// placementCost is what the new claims launch for: their cheapest
// remaining option (finishing only adds pricier fallbacks).
func (s *solver) placementCost() float64 {
	total := 0.0
	for _, b := range s.bins {
		if b.kind == binNew && len(b.pending) > 0 {
			total += b.claim.opts[0].price
		}
	}
	return total
}

// improve runs strategies in parallel (one per CPU), repacks the best
// placement (repack.go) and returns it as a plan. The best placement has
// the fewest unschedulable pods, then the lowest cost, then the earliest
// strategy. Every placement is complete and valid, so the choice never
// trades validity for cost.
//
// With Options.ImproveRounds set, exactly that many strategies run and
// repacking runs to the end: the plan does not depend on machine speed.
// Otherwise the first strategy always runs and a further one starts, when
// a CPU is free, only if it is expected to end within the budget (counted
// from the start of the solve, expecting it to take as long as the slowest
// strategy so far) and the last maxStale strategies to end did not all
// fail to improve the best plan; repacking then gets what is left of the
// budget, and at least a quarter of the time spent so far. Without an
// explicit budget the budget is 1.25 times the time the first strategy
// took to end (from the start of the solve), at most DefaultImproveBudget:
// it scales with the problem, and on two CPUs usually runs the first two
// strategies side by side and then repacks. An explicit budget of at least
// PatternMinBudget also runs the pattern strategy (pattern.go) after the
// others, until nine tenths of the budget.
//
// Once h stops, no strategy starts, the running ones and repacking stop,
// and improve returns h's error.
func improve(h *halt, p *Problem) attempt {
	start := time.Now()
	if err := validateProblem(h, p); err != nil {
		return attempt{err: err}
	}
	rounds := p.Options.ImproveRounds
	budget := p.Options.ImproveBudget
	auto := budget == 0
	if auto {
		budget = DefaultImproveBudget
	}
	if rounds <= 0 && budget < 0 {
		rounds = 1
	}
	rounds = min(rounds, len(strategies))
	base, err := newSolverFrom(h, p, nil)
	if err != nil {
		return attempt{err: err}
	}
	base.fillCaches()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	results := make([]attempt, len(strategies))
	ran := make([]bool, len(strategies))
	var (
		mu      sync.Mutex
		slowest time.Duration
		stale   int
		best    *attempt
		scaled  bool
	)
	finished := func(a attempt, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		slowest = max(slowest, took)
		if auto && !scaled {
			budget = min(budget, time.Since(start)*5/4)
			scaled = true
		}
		if a.err == nil && (best == nil || better(&a, best)) {
			best, stale = &a, 0
		} else {
			stale++
		}
	}
	mayStart := func(i int) bool {
		if h.stopped() {
			return false
		}
		if rounds > 0 {
			return i < rounds
		}
		if i == 0 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		return stale < maxStale && time.Since(start)+slowest <= budget
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i := range strategies {
		slots <- struct{}{} // wait for a free CPU before deciding
		if !mayStart(i) {
			<-slots
			break
		}
		ran[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			t0 := time.Now()
			results[i] = runStrategy(h, p, base, strategies[i])
			finished(results[i], time.Since(t0))
		}()
	}
	wg.Wait()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	a := pickBest(results, ran)
	if a.err != nil {
		return a
	}
	spent := time.Since(start)
	if rounds <= 0 && budget >= PatternMinBudget {
		if pa, ok := runPattern(h, p, base, start.Add(budget*9/10)); ok {
			if better(&pa, &a) {
				a = pa
			}
			a.patternBound = pa.patternBound
		}
		if err := h.err(); err != nil {
			return attempt{err: err}
		}
	}
	var deadline time.Time
	if p.Options.ImproveRounds <= 0 {
		deadline = start.Add(max(budget, 0))
		if least := time.Now().Add(spent / 4); least.After(deadline) {
			deadline = least
		}
	}
	a.s.repack(deadline)
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	a.plan = a.s.plan()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	return a
}

// maxStale stops the improvement phase once that many strategies in a
// row ended without a better plan.
const maxStale = 3

func pickBest(results []attempt, ran []bool) attempt {
	best := -1
	for i, a := range results {
		if !ran[i] {
			continue
		}
		if a.err != nil {
			return a
		}
		if best < 0 || better(&a, &results[best]) {
			best = i
		}
	}
	return results[best]
}

func better(a, b *attempt) bool {
	if a.unsched != b.unsched {
		return a.unsched < b.unsched
	}
	return a.cost < b.cost-1e-9
}

// fillCaches computes every per-level cache a placement reads (compatible
// offerings, candidates per NodePool, cost per pod), so that solvers built
// from this one in parallel only read it.
func (s *solver) fillCaches() {
	for _, c := range s.classes {
		if s.halt.stopped() {
			return
		}
		for _, lv := range c.levels {
			for _, pi := range s.pools {
				s.candsFor(c, lv, pi)
			}
			s.perPodCost(c, lv)
		}
	}
}

// borrowCaches copies the per-level caches of base, a solver of the same
// problem that fillCaches completed. Classes correspond by creation index.
func (s *solver) borrowCaches(base *solver) {
	byIdx := make([]*podClass, len(base.classes))
	for _, c := range base.classes {
		byIdx[c.idx] = c
	}
	for _, c := range s.classes {
		bc := byIdx[c.idx]
		for j, lv := range c.levels {
			bl := bc.levels[j]
			lv.perPod = bl.perPod
			for k, v := range bl.cands {
				lv.cands[k] = v
			}
			if bl.compat != nil {
				lv.compat = append([][]uint64(nil), bl.compat...)
			}
		}
	}
}
