package planner

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disrupt"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Kept reasons the planner adds for candidates the disruption pass passes
// over in silence.
const (
	KeptNominated           = "Nominated"
	KeptNotRegistered       = "NotRegistered"
	KeptConsolidateAfter    = "ConsolidateAfter"
	KeptConsolidationPolicy = "ConsolidationPolicy"
	KeptNoAction            = "NoAction"
)

// consolidate runs one disruption pass of the watcher's controller with an
// actuator that only records, and fills out. It returns every launched
// NodeClaim with its price (for the cost).
func consolidate(ctx context.Context, r client.Reader, opts Options, s *recordingSolver, targets map[string]bool, out *Consolidation) ([]disruption.Candidate, error) {
	cluster := &recordingCluster{Cluster: &disrupt.Cluster{Reader: r, Types: opts.Types}, nominated: targets}
	act := &dryActuator{replaced: map[string]*typesv1.NodeClaim{}}
	ctrl := &disruption.Controller{Cluster: cluster, Actuator: act, Solver: s, Now: opts.Now, Log: opts.Log}
	rep, err := ctrl.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("disruption pass: %w", classify(err))
	}
	byName := map[string]*disruption.Candidate{}
	for i := range cluster.all {
		byName[cluster.all[i].NodeClaim.Name] = &cluster.all[i]
	}
	out.Candidates = len(cluster.all)
	out.Decisions, out.Kept = []Decision{}, []Kept{}
	done := map[string]bool{}
	for _, d := range rep.Decisions {
		done[d.NodeClaim] = true
		out.Decisions = append(out.Decisions, decision(d, byName[d.NodeClaim], act))
	}
	for _, b := range rep.Blocked {
		if done[b.NodeClaim] {
			continue
		}
		done[b.NodeClaim] = true
		k := Kept{NodeClaim: b.NodeClaim, Node: b.Node, NodePool: b.NodePool, Reason: b.Reason, Message: b.Message}
		if kind := s.blockedKind[b.Node]; b.Reason == disruption.BlockedSolver && kind != "" {
			k.Reason = kind
		}
		if c := byName[b.NodeClaim]; c != nil {
			k.PricePerHour = c.PricePerHour
		}
		out.Kept = append(out.Kept, k)
	}
	for i := range cluster.all {
		c := &cluster.all[i]
		if done[c.NodeClaim.Name] {
			continue
		}
		code, msg := silentReason(c, targets, opts.Now())
		out.Kept = append(out.Kept, Kept{NodeClaim: c.NodeClaim.Name, Node: nodeName(c), NodePool: c.NodeClaim.Labels[karpv1.NodePoolLabelKey],
			PricePerHour: c.PricePerHour, Reason: code, Message: msg})
	}
	sort.SliceStable(out.Kept, func(i, j int) bool { return out.Kept[i].NodeClaim < out.Kept[j].NodeClaim })
	return cluster.all, nil
}

func decision(d disruption.Decision, c *disruption.Candidate, act *dryActuator) Decision {
	out := Decision{NodeClaim: d.NodeClaim, Node: d.Node, NodePool: d.NodePool, Reason: d.Reason, Action: d.Action,
		SavingsPerHour: d.SavingsPerHour, Message: d.Message}
	if c != nil {
		out.PricePerHour = c.PricePerHour
	}
	for _, name := range d.Replacements {
		r := act.replaced[name]
		if r == nil {
			continue
		}
		out.Replacements = append(out.Replacements, NodeClaim{NodePool: r.GetNodePool(), InstanceType: r.GetInstanceType(),
			InstanceTypeOptions: []string{r.GetInstanceType()}, Zone: r.GetZone(), CapacityType: r.GetCapacityType(), PricePerHour: r.GetPricePerHour()})
		out.NewCostPerHour += r.GetPricePerHour()
	}
	if d.Action == disruption.ActionDelete && d.Reason != disruption.ReasonUnderutilized {
		out.SavingsPerHour = out.PricePerHour
	}
	return out
}

// silentReason says why the pass passed over a candidate without a word:
// pending pods are planned onto it, it has no node yet, its NodePool does
// not consolidate it yet, or only when empty.
func silentReason(c *disruption.Candidate, nominated map[string]bool, now time.Time) (string, string) {
	switch {
	case nominated[c.NodeClaim.Name] || (c.Node != nil && nominated[c.Node.Name]):
		return KeptNominated, "pending pods are planned onto it"
	case c.Node == nil:
		return KeptNotRegistered, "its node has not registered yet"
	case c.NodePool == nil:
		return disruption.BlockedNodePoolMissing, "its NodePool does not exist"
	}
	d := c.NodePool.Spec.Disruption
	if d.ConsolidateAfter.Duration == nil && d.ConsolidateAfter.Raw != "" {
		return KeptConsolidateAfter, fmt.Sprintf("NodePool %s has consolidateAfter: Never", c.NodePool.Name)
	}
	var after time.Duration
	if d.ConsolidateAfter.Duration != nil {
		after = *d.ConsolidateAfter.Duration
	}
	if last := disruption.LastPodEvent(c.NodeClaim); now.Before(last.Add(after)) {
		return KeptConsolidateAfter, fmt.Sprintf("NodePool %s has consolidateAfter %s; the last pod event was %s ago",
			c.NodePool.Name, after, now.Sub(last).Round(time.Second))
	}
	if !d.ConsolidationPolicy.ConsolidatesUnderutilized() {
		n := movablePods(c)
		return KeptConsolidationPolicy, fmt.Sprintf("NodePool %s consolidates only empty nodes (consolidationPolicy %s); the node runs %d %s",
			c.NodePool.Name, d.ConsolidationPolicy, n, plural(n, "pod", "pods"))
	}
	return KeptNoAction, "no consolidation action proposed for it"
}

// movablePods counts the pods that would have to move: active, not a
// DaemonSet's, not a mirror pod.
func movablePods(c *disruption.Candidate) int {
	n := 0
	for _, p := range c.Pods {
		if p.DeletionTimestamp == nil && !drain.IsTerminal(p) && !drain.IsDaemonSetPod(p) && !drain.IsMirror(p) {
			n++
		}
	}
	return n
}

func nodeName(c *disruption.Candidate) string {
	if c.Node != nil {
		return c.Node.Name
	}
	return c.NodeClaim.Status.NodeName
}

// recordingCluster is the watcher's Cluster that keeps every candidate it
// returns, and withholds those pending pods are planned onto (the watcher
// nominates them, which keeps them from disruption for a while).
type recordingCluster struct {
	disruption.Cluster
	nominated map[string]bool
	all       []disruption.Candidate
}

func (r *recordingCluster) Candidates(ctx context.Context) ([]disruption.Candidate, error) {
	cands, err := r.Cluster.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	if r.all == nil {
		r.all = cands
	}
	out := make([]disruption.Candidate, 0, len(cands))
	for _, c := range cands {
		if r.nominated[c.NodeClaim.Name] || (c.Node != nil && r.nominated[c.Node.Name]) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// dryActuator records what the disruption pass asks for and does nothing:
// no NodeClaim is created or deleted and no event recorded.
type dryActuator struct {
	replaced map[string]*typesv1.NodeClaim
	n        int
}

// Replace names the replacements it would launch and reports them ready.
func (a *dryActuator) Replace(_ context.Context, claims []*typesv1.NodeClaim, _ string) ([]string, error) {
	names := make([]string, 0, len(claims))
	for _, c := range claims {
		a.n++
		name := fmt.Sprintf("planned-replacement-%d", a.n)
		a.replaced[name] = c
		names = append(names, name)
	}
	return names, nil
}

// Taint does nothing.
func (a *dryActuator) Taint(context.Context, string) error { return nil }

// Untaint does nothing.
func (a *dryActuator) Untaint(context.Context, string) error { return nil }

// Delete does nothing.
func (a *dryActuator) Delete(context.Context, string, string) error { return nil }

// Event does nothing: a plan records no events.
func (a *dryActuator) Event(runtime.Object, string, string, string) {}
