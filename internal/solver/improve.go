package solver

import (
	"errors"
	"runtime"
	"sync"
	"time"
)

// DefaultImproveRounds is how many strategies a solve runs at least when
// the caller sets neither Options.ImproveRounds nor a time cap
// (Options.ImproveBudget); one more runs while the last one found a
// better placement than all before it. The default effort is counted in
// work, so the plan does not depend on the machine's speed or load.
const DefaultImproveRounds = 2

// DefaultImproveBudget is what callers that answer by a deadline
// (internal/solverapi) assume the default effort takes on the problems
// they serve; the solver itself reads no clock unless a cap is set.
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

// strategies are tried in this order; the first always runs and the
// first DefaultImproveRounds are the default effort. The order puts
// first what did best on the benchmark workloads: growSlack 0.5 on
// KarpenterBenchmarkMix (once pods selected by zonal spreads balance),
// growSlack 1 on the trace.
var strategies = []strategy{
	{byCost: true, growSlack: 0.5},
	{byCost: true, growSlack: 1},
	{byCost: true, growSlack: 2.5, openCopies: 16},
	{byCost: true, growSlack: 1.75},
	{byCost: true, growSlack: 2},
	{byCost: false, growSlack: 1},
	{byCost: false, growSlack: 0},
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
// The effort is counted in work unless the caller caps it in time:
//   - by default, the first DefaultImproveRounds strategies run, then
//     the next one at a time for as long as the last one found a better
//     placement than all before it, and repacking runs to its end (at
//     most maxRepackPasses passes); with Options.ImproveRounds, exactly
//     that many strategies. The plan is the same on any machine, however
//     fast or loaded, and with any GOMAXPROCS;
//   - a negative Options.ImproveBudget runs the first strategy only;
//   - a positive Options.ImproveBudget is a wall-clock cap, read on h's
//     clock from the start of the solve. The first strategy always runs
//     to its end (a plan is needed); a further one (up to
//     Options.ImproveRounds, all of them when that is 0) starts, when a
//     CPU is free, only if it is expected to end within the cap (taking
//     as long as the slowest so far) and, without ImproveRounds, the last
//     maxStale strategies to end did not all fail to improve the best
//     plan; a strategy still running at nine tenths of the cap is stopped
//     and dropped, and repacking stops there (the last tenth is for the
//     plan and the lower bound). A cap of at least PatternMinBudget also
//     runs the pattern strategy (pattern.go) after the others, until
//     eight tenths of the cap.
//
// Once h stops, no strategy starts, the running ones and repacking stop,
// and improve returns h's error.
func improve(h *halt, p *Problem) attempt {
	start := h.now()
	if err := validateProblem(h, p); err != nil {
		return attempt{err: err}
	}
	ef := effortOf(p.Options, start)
	base, err := newSolverFrom(h, p, nil)
	if err != nil {
		return attempt{err: err}
	}
	base.fillCaches()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	a := runStrategies(h, p, base, ef)
	if a.err != nil {
		return a
	}
	if budget := p.Options.ImproveBudget; p.Options.ImproveRounds <= 0 && ef.capped && budget >= PatternMinBudget {
		if pa, ok := runPattern(h, p, base, start.Add(budget*patternShare/capShares)); ok {
			if better(&pa, &a) {
				a = pa
			}
			a.patternBound = pa.patternBound
		}
		if err := h.err(); err != nil {
			return attempt{err: err}
		}
	}
	a.s.halt = h // a strategy stopped at the cap is never picked; this one ran to its end
	a.s.repack(ef.deadline)
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	a.plan = a.s.plan()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	return a
}

// effort is how much improvement a solve makes (see improve).
type effort struct {
	rounds   int  // strategies to run at most
	exact    bool // run all rounds (Options.ImproveRounds), no stale rule
	extend   bool // the default: more rounds while the last one improved
	capped   bool // a wall-clock cap is set
	deadline time.Time
}

// effortOf reads the effort from the options of a solve started at start.
func effortOf(o Options, start time.Time) effort {
	ef := effort{rounds: o.ImproveRounds, exact: o.ImproveRounds > 0, capped: o.ImproveBudget > 0}
	switch {
	case o.ImproveBudget < 0:
		ef.rounds = 1
	case ef.exact:
	case ef.capped:
		ef.rounds = len(strategies)
	default:
		ef.rounds, ef.extend = DefaultImproveRounds, true
	}
	ef.rounds = min(ef.rounds, len(strategies))
	if ef.capped {
		ef.deadline = start.Add(o.ImproveBudget * capShare / capShares)
	}
	return ef
}

// Under a time cap, strategies and repacking stop at capShare/capShares
// of it, the pattern strategy at patternShare/capShares: the rest is left
// for turning the placement into a plan and for the lower bound, so that
// the solve ends within the cap.
const (
	capShares    = 10
	capShare     = 9
	patternShare = 8
)

// runStrategies runs the strategies the effort allows, one per CPU, and
// returns the best placement (see improve).
func runStrategies(h *halt, p *Problem, base *solver, ef effort) attempt {
	results := make([]attempt, len(strategies))
	ran := make([]bool, len(strategies))
	var (
		mu      sync.Mutex
		slowest time.Duration
		stale   int
		best    *attempt
	)
	finished := func(a attempt, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		slowest = max(slowest, took)
		if a.err == nil && (best == nil || better(&a, best)) {
			best, stale = &a, 0
		} else {
			stale++
		}
	}
	mayStart := func(i int) bool {
		if h.stopped() || i >= ef.rounds {
			return false
		}
		if i == 0 || !ef.capped {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		if !ef.exact && stale >= maxStale {
			return false
		}
		return !h.now().Add(slowest).After(ef.deadline)
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
		sh := h
		if ef.capped && i > 0 {
			sh = h.capped(ef.deadline)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			t0 := h.now()
			results[i] = runStrategy(sh, p, base, strategies[i])
			finished(results[i], h.now().Sub(t0))
		}()
	}
	wg.Wait()
	if err := h.err(); err != nil {
		return attempt{err: err}
	}
	for i := range results {
		if ran[i] && errors.Is(results[i].err, errCapReached) {
			ran[i] = false // stopped at the cap: dropped
		}
	}
	// The default effort goes on, one strategy at a time, while the last
	// one found a better placement than all before it: a rule on results,
	// not on time.
	for n := ef.rounds; ef.extend && n < len(strategies) && lastImproved(results[:n]); n++ {
		results[n], ran[n] = runStrategy(h, p, base, strategies[n]), true
		if err := h.err(); err != nil {
			return attempt{err: err}
		}
	}
	return pickBest(results, ran)
}

// lastImproved reports whether the last of the attempts is better than
// each of the others (all ran and none failed).
func lastImproved(results []attempt) bool {
	last := &results[len(results)-1]
	if last.err != nil {
		return false
	}
	for i := range results[:len(results)-1] {
		if results[i].err != nil || !better(last, &results[i]) {
			return false
		}
	}
	return true
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
