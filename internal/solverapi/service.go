package solverapi

import (
	"context"

	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Service implements solverv1.SolverServiceServer on top of Solve and
// Consolidate. It adds nothing else: errors are mapped to gRPC codes, and
// calls logged and measured, by internal/server's interceptors.
type Service struct {
	solverv1.UnimplementedSolverServiceServer
}

// NewService returns the solver's gRPC handler.
func NewService() *Service { return &Service{} }

// Solve implements solverv1.SolverServiceServer. The solver cannot be
// interrupted, so a call whose context is already done is refused
// up front.
func (*Service) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return Solve(req)
}

// Consolidate implements solverv1.SolverServiceServer.
func (*Service) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return Consolidate(req)
}
