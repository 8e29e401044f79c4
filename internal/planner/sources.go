package planner

import (
	"context"
	"time"

	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// InProcess is the solver run in this process, through the same
// validation and conversion as the solver service.
type InProcess struct{}

// Solve plans the pending pods.
func (InProcess) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	return solverapi.Solve(ctx, req)
}

// Consolidate proposes consolidation actions.
func (InProcess) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	return solverapi.Consolidate(ctx, req)
}

// Remote is a solver service client.
type Remote struct{ Client solverv1.SolverServiceClient }

// Solve calls the service.
func (r Remote) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	return r.Client.Solve(ctx, req)
}

// Consolidate calls the service.
func (r Remote) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	return r.Client.Consolidate(ctx, req)
}

// LauncherTypes lists instance types through the launcher at addr with
// ListInstanceTypes per EC2NodeClass. Unlike the watcher, which names its
// classes, it sends each class inline: ListInstanceTypes has no side
// effects, and a plan's classes may come from files the launcher's cluster
// does not hold. A launcher that does not answer makes Plan fail with
// ErrUnreachable.
func LauncherTypes(c launcherv1.LauncherServiceClient, addr string) state.InstanceTypeSource {
	return launcherTypes{src: &nodeclass.Types{Launcher: c, ByName: false, TTL: time.Hour}, addr: addr}
}
