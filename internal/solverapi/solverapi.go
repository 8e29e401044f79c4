// Package solverapi is the boundary between the protobuf API
// (flotilla.solver.v1) and the pure solver: it validates requests, converts
// them to solver.Problem, runs the solver and converts the plan back. The
// gRPC service and the CLI share it, so both accept and reject exactly the
// same requests.
//
// Every validation failure wraps ErrInvalidArgument and names the field
// (see FieldError); any other error is the solver's own failure.
package solverapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Solve validates req, plans it and returns the plan with the time the
// solver took. When ctx ends first it stops within milliseconds, wherever
// it is (validating, converting, solving as solver.Solve says, or
// converting the plan back), and returns an error wrapping ctx.Err().
func Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	return solve(ctx, req, nil)
}

// solve is Solve with the solver's options adjusted (when adjust is not
// nil) after conversion.
func solve(ctx context.Context, req *solverv1.SolveRequest, adjust func(*solver.Options)) (*solverv1.SolveResponse, error) {
	if err := validateSolveRequest(ctx, req); err != nil {
		return nil, stageErr("solve", err)
	}
	problem, err := solveProblem(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("solve: %w", err)
	}
	if adjust != nil {
		adjust(&problem.Options)
	}
	start := time.Now()
	plan, err := solver.Solve(ctx, problem)
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("solve: %w", err)
	}
	pb, err := planToProto(ctx, plan)
	if err != nil {
		return nil, fmt.Errorf("solve: %w", err)
	}
	resp := &solverv1.SolveResponse{Plan: pb, SolveSeconds: elapsed.Seconds(), LowerBoundPerHour: plan.LowerBoundPerHour,
		Explanations: ExplanationsToProto(plan)}
	if plan.LowerBoundPerHour > 0 {
		resp.CostToBoundRatio = plan.CostPerHour / plan.LowerBoundPerHour
	}
	return resp, nil
}

// stageErr returns a validation error as it is (its message starts with
// the field), and prefixes any other error, such as the context's, with
// the call.
func stageErr(call string, err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return err
	}
	return fmt.Errorf("%s: %w", call, err)
}

// Consolidate validates req and returns the consolidation actions the
// solver proposes, with the time it took. When ctx ends first it stops as
// Solve does.
func Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	if err := validateConsolidateRequest(ctx, req); err != nil {
		return nil, stageErr("consolidate", err)
	}
	problem, err := consolidateProblem(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("consolidate: %w", err)
	}
	start := time.Now()
	plan, err := solver.Consolidate(ctx, problem)
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("consolidate: %w", err)
	}
	resp := ConsolidationToProto(plan)
	resp.SolveSeconds = elapsed.Seconds()
	return resp, nil
}
