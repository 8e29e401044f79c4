// Package planner answers "what would Flotilla do now?" for a live cluster
// without changing it: it reads the cluster (get and list only), builds the
// watcher's own provisioning request for the pending pods and solves it,
// and runs the watcher's disruption pass (expiration, drift, emptiness,
// consolidation) with an actuator that only records what it is asked to
// do. The result is a Report: the NodeClaims that would be launched, the
// nodes that would be deleted or replaced, why the others stay, and the
// cost before and after.
//
// The planner reads through a client.Reader only and never records events,
// so it has no means to write; the CLI also refuses every non-GET request
// at the HTTP transport (ReadOnlyTransport).
package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Solver plans: the solver service's client, or InProcess.
type Solver interface {
	Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error)
	Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error)
}

// Options configure a Plan.
type Options struct {
	// Types lists the instance types of an EC2NodeClass: a launcher
	// (LauncherTypes) or an offline catalog (CatalogTypes). Required.
	Types state.InstanceTypeSource
	// Solver plans; required.
	Solver Solver
	// InstanceTypesSource and SolverName describe Types and Solver in the
	// report.
	InstanceTypesSource, SolverName string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the disruption pass's log; nil discards it.
	Log *slog.Logger
}

// Plan reads the cluster through r and reports what Flotilla would do now.
// Errors wrap ErrNoCRDs, ErrForbidden or ErrUnreachable when the cluster,
// the launcher or the solver is not usable; other errors are failures of
// the planning itself.
func Plan(ctx context.Context, r client.Reader, opts Options) (*Report, error) {
	if opts.Types == nil || opts.Solver == nil {
		return nil, errors.New("planner: instance types and a solver are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	reader := newSnapshotReader(r)
	if err := checkCRDs(ctx, reader); err != nil {
		return nil, err
	}
	snap, err := state.Load(ctx, reader)
	if err != nil {
		return nil, classify(err)
	}
	if err := preflightTypes(ctx, snap, opts.Types); err != nil {
		return nil, err
	}
	solver := &recordingSolver{s: opts.Solver}
	rep := &Report{Time: opts.Now().UTC(), InstanceTypes: opts.InstanceTypesSource, Solver: opts.SolverName}
	targets, err := provision(ctx, snap, opts.Types, solver, &rep.Provisioning)
	if err != nil {
		return nil, err
	}
	cands, err := consolidate(ctx, reader, opts, solver, targets, &rep.Consolidation)
	if err != nil {
		return nil, err
	}
	rep.Cost = costOf(cands, rep)
	return rep, nil
}

// checkCRDs lists one NodePool, so that a cluster without the Karpenter
// CRDs gets the message that says so.
func checkCRDs(ctx context.Context, r client.Reader) error {
	var pools karpv1.NodePoolList
	return r.List(ctx, &pools, client.Limit(1))
}

// preflightTypes lists the instance types of every EC2NodeClass once, so a
// launcher that does not answer is an error rather than NodePools quietly
// left out (they stay cached for the plan).
func preflightTypes(ctx context.Context, snap *state.Snapshot, src state.InstanceTypeSource) error {
	names := make([]string, 0, len(snap.NodeClasses))
	for n := range snap.NodeClasses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_, err := src.InstanceTypes(ctx, snap.NodeClasses[n])
		if errors.Is(err, ErrUnreachable) {
			return err
		}
		if ctx.Err() != nil {
			return kindErrorf(ErrUnreachable, "listing instance types: %v", ctx.Err())
		}
	}
	return nil
}

// provision solves the pending pods as the watcher's provisioner does and
// fills out; it returns the existing nodes and NodeClaims pods were
// planned onto (the watcher nominates them, which keeps them from
// disruption).
func provision(ctx context.Context, snap *state.Snapshot, src state.InstanceTypeSource, s Solver, out *Provisioning) (map[string]bool, error) {
	out.NodeClaims, out.Unschedulable, out.Skipped = []NodeClaim{}, []Unschedulable{}, []Skipped{}
	out.ExistingNodeBindings = map[string][]string{}
	pending := snap.Pending()
	out.PendingPods = len(pending)
	targets := map[string]bool{}
	if len(pending) == 0 {
		return targets, nil
	}
	req, err := snap.Request(ctx, src, pending, state.Options{})
	if err != nil {
		return nil, fmt.Errorf("building the provisioning request: %w", err)
	}
	for _, sk := range req.Skipped {
		out.Skipped = append(out.Skipped, Skipped{Kind: sk.Kind, Name: sk.Name, Reason: sk.Reason})
	}
	if len(req.Solve.Pods) == 0 {
		return targets, nil
	}
	resp, err := s.Solve(ctx, req.Solve)
	if err != nil {
		return nil, fmt.Errorf("solve %d pending pods: %w", len(req.Solve.Pods), err)
	}
	plan := resp.GetPlan()
	out.CostPerHour, out.LowerBoundPerHour, out.SolveSeconds = plan.GetCostPerHour(), resp.GetLowerBoundPerHour(), resp.GetSolveSeconds()
	for _, c := range plan.GetNodeClaims() {
		out.NodeClaims = append(out.NodeClaims, NodeClaim{
			NodePool: c.GetNodePool(), InstanceType: c.GetInstanceType(), InstanceTypeOptions: append([]string{}, c.GetInstanceTypeOptions()...),
			Zone: c.GetZone(), CapacityType: c.GetCapacityType(), PricePerHour: c.GetPricePerHour(), Pods: append([]string{}, c.GetPods()...),
		})
	}
	for target, pods := range plan.GetExistingNodeBindings() {
		out.ExistingNodeBindings[target] = append([]string{}, pods.GetPods()...)
		targets[target] = true
	}
	byPod := map[string][]PoolReason{}
	for _, e := range resp.GetExplanations() {
		for _, r := range e.GetNodePools() {
			byPod[e.GetPod()] = append(byPod[e.GetPod()], PoolReason{NodePool: r.GetNodePool(), Reason: r.GetReason()})
		}
	}
	for _, u := range plan.GetUnschedulable() {
		out.Unschedulable = append(out.Unschedulable, Unschedulable{Pod: u.GetPod(), Reason: u.GetReason(), NodePools: byPod[u.GetPod()]})
	}
	return targets, nil
}

// costOf sums the report up: the launched NodeClaims now, plus the
// provisioning plan, less the disrupted nodes, plus their replacements.
func costOf(cands []disruption.Candidate, rep *Report) Cost {
	var c Cost
	for _, cand := range cands {
		if cand.NodeClaim.DeletionTimestamp == nil {
			c.CurrentPerHour += cand.PricePerHour
		}
	}
	c.LaunchPerHour = rep.Provisioning.CostPerHour
	seen := map[*NodeClaim]bool{}
	for i := range rep.Consolidation.Decisions {
		d := &rep.Consolidation.Decisions[i]
		c.RemovedPerHour += d.PricePerHour
		for j := range d.Replacements {
			if r := &d.Replacements[j]; !seen[r] {
				seen[r] = true
				c.ReplacementsPerHour += r.PricePerHour
			}
		}
	}
	c.PlannedPerHour = c.CurrentPerHour + c.LaunchPerHour - c.RemovedPerHour + c.ReplacementsPerHour
	return c
}

// recordingSolver passes calls on, keeps the kinds of the candidates the
// last consolidation left alone, and marks a solver that did not answer
// with ErrUnreachable.
type recordingSolver struct {
	s Solver
	// blockedKind maps a node to the solver's kind of reason for leaving it.
	blockedKind map[string]string
}

func (r *recordingSolver) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	resp, err := r.s.Solve(ctx, req)
	return resp, solverError(err)
}

func (r *recordingSolver) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	resp, err := r.s.Consolidate(ctx, req)
	if err != nil {
		return nil, solverError(err)
	}
	r.blockedKind = map[string]string{}
	for _, b := range resp.GetBlocked() {
		r.blockedKind[b.GetNode()] = b.GetKind()
	}
	return resp, nil
}

func solverError(err error) error {
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return kindErrorf(ErrUnreachable, "the solver does not answer: %v", status.Convert(err).Message())
	}
	return err
}
