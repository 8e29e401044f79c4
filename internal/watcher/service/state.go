package service

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

const recentDecisions = 50

// GetState reports the controller's view in detail.
func (s *Service) GetState(ctx context.Context, _ *watcherv1.GetStateRequest) (*watcherv1.GetStateResponse, error) {
	if s.Reader == nil {
		return nil, errNoReader
	}
	snap, err := state.Load(ctx, s.Reader)
	if err != nil {
		return nil, err
	}
	types := s.types(ctx, snap)
	resp := &watcherv1.GetStateResponse{Leader: s.leader(), RecentDecisions: s.decisions()}
	var last = s.lastSolve()
	for _, p := range snap.Pending() {
		pp := &watcherv1.PendingPod{Pod: state.Key(p)}
		if last != nil {
			pp.Reason = last.Reasons[pp.Pod]
			pp.NominatedNodeClaim = last.Nominations[pp.Pod]
		}
		resp.PendingPods = append(resp.PendingPods, pp)
	}
	for _, c := range snap.NodeClaims {
		cs := claimState(c, types)
		resp.CostPerHour += cs.PricePerHour
		resp.NodeClaims = append(resp.NodeClaims, cs)
	}
	for _, n := range snap.Nodes {
		resp.Nodes = append(resp.Nodes, nodeState(snap, n))
	}
	if last != nil {
		resp.LastSolve = &watcherv1.SolveSummary{
			Time: timestamppb.New(last.Time), Pods: int32(last.Pods), NodeClaims: int32(last.NodeClaims), //nolint:gosec // counts of one batch
			CostPerHour: last.CostPerHour, LowerBoundPerHour: last.LowerBound, Unschedulable: int32(last.Unschedulable), //nolint:gosec // as above
			SolveSeconds: last.SolveSeconds, Attempts: int32(last.Attempts), //nolint:gosec // as above
		}
	}
	return resp, nil
}

// GetStatus reports counts.
func (s *Service) GetStatus(ctx context.Context, _ *watcherv1.GetStatusRequest) (*watcherv1.GetStatusResponse, error) {
	st, err := s.GetState(ctx, &watcherv1.GetStateRequest{})
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &watcherv1.GetStatusResponse{
		PendingPods: int32(len(st.PendingPods)), NodeClaims: int32(len(st.NodeClaims)), //nolint:gosec // cluster object counts
		CostPerHour: st.CostPerHour, Leader: st.Leader, RecentDecisions: st.RecentDecisions,
	}, nil
}

func (s *Service) lastSolve() *provisioning.LastSolve {
	if s.Provisioner == nil {
		return nil
	}
	return s.Provisioner.Last()
}

func (s *Service) types(ctx context.Context, snap *state.Snapshot) map[string]*typesv1.InstanceType {
	out := map[string]*typesv1.InstanceType{}
	if s.Types == nil {
		return out
	}
	for _, nc := range snap.NodeClasses {
		list, err := s.Types.InstanceTypes(ctx, nc)
		if err != nil {
			continue
		}
		for _, t := range list {
			if _, ok := out[t.GetName()]; !ok {
				out[t.GetName()] = t
			}
		}
	}
	return out
}

func (s *Service) decisions() []*watcherv1.Decision {
	var out []*watcherv1.Decision
	for _, e := range s.Journal.Recent(recentDecisions) {
		out = append(out, &watcherv1.Decision{Time: timestamppb.New(e.Time), Kind: e.Kind, Object: e.Object, Message: e.Message})
	}
	return out
}

func claimState(c *karpv1.NodeClaim, types map[string]*typesv1.InstanceType) *watcherv1.NodeClaimState {
	phase := "Pending"
	for _, p := range []string{karpv1.ConditionLaunched, karpv1.ConditionRegistered, karpv1.ConditionInitialized} {
		if meta.IsStatusConditionTrue(c.Status.Conditions, p) {
			phase = p
		}
	}
	if c.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	it := c.Labels[corev1.LabelInstanceTypeStable]
	zone := c.Labels[corev1.LabelTopologyZone]
	ct := c.Labels[karpv1.CapacityTypeLabelKey]
	return &watcherv1.NodeClaimState{
		Name: c.Name, NodePool: c.Labels[karpv1.NodePoolLabelKey], InstanceType: it, Zone: zone, CapacityType: ct,
		ProviderId: c.Status.ProviderID, NodeName: c.Status.NodeName, Phase: phase, Created: timestamppb.New(c.CreationTimestamp.Time),
		PricePerHour: state.Price(types, it, zone, ct),
	}
}

func nodeState(snap *state.Snapshot, n *corev1.Node) *watcherv1.NodeState {
	ns := &watcherv1.NodeState{
		Name: n.Name, NodePool: n.Labels[karpv1.NodePoolLabelKey], InstanceType: n.Labels[corev1.LabelInstanceTypeStable],
		Pods: int32(len(snap.PodsOn(n.Name))), //nolint:gosec // pods per node
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ns.Ready = c.Status == corev1.ConditionTrue
		}
	}
	if c := snap.ClaimFor(n); c != nil {
		ns.NodeClaim = c.Name
	}
	for _, t := range n.Spec.Taints {
		ns.Taints = append(ns.Taints, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
	}
	sort.Strings(ns.Taints)
	return ns
}
