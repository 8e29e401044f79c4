package solverapi

import (
	"context"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Service implements solverv1.SolverServiceServer on top of Solve and
// Consolidate: it refuses requests beyond its Limits before any other work
// and stops working on a call as soon as it is cancelled or out of time.
// Errors are mapped to gRPC codes, and calls logged and measured, by
// internal/server's interceptors.
type Service struct {
	solverv1.UnimplementedSolverServiceServer
	// Limits bound the requests served (DefaultLimits from NewService).
	Limits Limits
	// Metrics records each plan's cost and lower bound; nil records nothing.
	Metrics *Metrics
}

// NewService returns the solver's gRPC handler with DefaultLimits.
func NewService() *Service { return &Service{Limits: DefaultLimits} }

// deadlineShare is the part of the time left before a call's deadline that
// a partial-answer solve may spend, leaving the rest for converting and
// sending the plan.
const deadlineShare = 0.8

// Solve implements solverv1.SolverServiceServer. Without allow_partial a
// call that runs out of time fails with DEADLINE_EXCEEDED as soon as its
// deadline passes; with it, the improvement budget is shortened to fit the
// deadline and the plan is marked partial. A call cancelled or out of time
// returns once the solver has stopped working on it (within milliseconds),
// so no abandoned solve outlives its call.
func (s *Service) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.Limits.check(countPods(len(req.GetPods()), req.GetNodes(), req.GetNodeClaims()), len(req.GetInstanceTypes())); err != nil {
		return nil, err
	}
	var (
		adjust  func(*solver.Options)
		partial bool
	)
	if deadline, ok := ctx.Deadline(); ok && req.GetOptions().GetAllowPartial() {
		adjust, partial = fitBudget(req.GetOptions(), time.Until(deadline))
	}
	resp, err := solve(ctx, req, adjust)
	if err != nil {
		return nil, err
	}
	resp.Partial = partial
	s.Metrics.plan(resp.GetPlan().GetCostPerHour(), resp.GetLowerBoundPerHour())
	return resp, nil
}

// fitBudget shortens the improvement budget to deadlineShare of the time
// left, when the budget asked for (or the default) is longer; it reports
// whether it did.
func fitBudget(opts *solverv1.SolveOptions, left time.Duration) (func(*solver.Options), bool) {
	if opts.GetImproveRounds() > 0 {
		return nil, false // a fixed number of strategies: nothing to shorten
	}
	asked := time.Duration(opts.GetImproveBudgetSeconds() * float64(time.Second))
	if asked < 0 {
		return nil, false // the first strategy only already
	}
	budget := time.Duration(float64(left) * deadlineShare)
	if asked == 0 {
		// The default effort is counted in work and reads no clock, so
		// under a deadline it always gets the deadline's share as a cap.
		// It is reported partial when that share is below what the default
		// usually takes (it may also be cut on a larger problem).
		if budget <= 0 {
			return func(o *solver.Options) { o.ImproveBudget = -1 }, true
		}
		return func(o *solver.Options) { o.ImproveBudget = budget }, budget < solver.DefaultImproveBudget
	}
	if budget >= asked {
		return nil, false
	}
	if budget <= 0 {
		budget = -1 // the first strategy only
	}
	return func(o *solver.Options) { o.ImproveBudget = budget }, true
}

// Consolidate implements solverv1.SolverServiceServer; a call that runs out
// of time fails with DEADLINE_EXCEEDED as soon as its deadline passes, and
// like Solve returns once the solver has stopped working on it.
func (s *Service) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.Limits.check(countPods(0, req.GetNodes(), req.GetNodeClaims()), len(req.GetInstanceTypes())); err != nil {
		return nil, err
	}
	return Consolidate(ctx, req)
}
