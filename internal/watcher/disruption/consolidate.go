package disruption

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Solver action kinds.
const (
	solverDelete  = "Delete"
	solverReplace = "Replace"
)

// EventUnconsolidatable is the event reason for nodes the solver left alone.
const EventUnconsolidatable = "Unconsolidatable"

// consolidate asks the solver which underutilized nodes can go, and applies
// its actions within the budgets: deletions, and replacements launched (and
// Initialized) before the nodes they replace are deleted.
func (p *pass) consolidate(ctx context.Context) {
	if p.c.Solver == nil {
		return
	}
	dss, unconverted, err := p.c.Cluster.DaemonSets(ctx)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("disruption: list DaemonSets: %w", err))
		return
	}
	byNode := p.consolidationCandidates(unconvertedBlock(unconverted))
	if len(byNode) == 0 {
		return
	}
	req, err := p.consolidateRequest(ctx, byNode, dss)
	if err != nil {
		p.errs = append(p.errs, err)
		return
	}
	resp, err := p.c.Solver.Consolidate(ctx, req)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("disruption: consolidate: %w", err))
		return
	}
	for _, b := range resp.GetBlocked() {
		if c := byNode[b.GetNode()]; c != nil {
			p.addBlocked(c, solverBlockCode(b.GetKind()), b.GetReason())
			p.event(c, "Normal", EventUnconsolidatable, b.GetReason())
		}
	}
	for _, a := range resp.GetActions() {
		p.apply(ctx, a, byNode)
	}
}

// solverBlockCode maps the solver's kind of blocked candidate to the
// report's code; kinds without a code of their own are BlockedSolver.
func solverBlockCode(kind string) string {
	switch kind {
	case "PDB":
		return BlockedPDB
	case "Budget":
		return BlockedBudget
	case "DoNotDisrupt":
		return BlockedDoNotDisrupt
	}
	return BlockedSolver
}

// unconvertedBlock is the message blocking consolidation when DaemonSets
// could not be converted, naming them; "" when all were.
func unconvertedBlock(unconverted []UnconvertedDaemonSet) string {
	if len(unconverted) == 0 {
		return ""
	}
	names := make([]string, 0, len(unconverted))
	for _, u := range unconverted {
		names = append(names, fmt.Sprintf("%s (%v)", u.Name, u.Err))
	}
	return fmt.Sprintf("the overhead of DaemonSet(s) %s is unknown, so no node is consolidated until they convert", strings.Join(names, "; "))
}

// consolidationCandidates are the registered, unblocked nodes of pools with
// policy WhenEmptyOrUnderutilized whose consolidateAfter passed, by node
// name. Those reported as blocked instead: every one while dsBlock (an
// unconverted DaemonSet) says why, an unpriced one, and those whose pool's
// budget allows no Underutilized disruption now.
func (p *pass) consolidationCandidates(dsBlock string) map[string]*Candidate {
	out := map[string]*Candidate{}
	for _, c := range p.cands {
		if p.skip[c.NodeClaim.Name] || c.Node == nil {
			continue
		}
		policy := c.NodePool.Spec.Disruption.ConsolidationPolicy
		if !policy.ConsolidatesUnderutilized() || !consolidationDue(c, p.now) {
			continue
		}
		if dsBlock != "" {
			p.blockQuietly(c, BlockedDaemonSetUnconverted, dsBlock)
			continue
		}
		if c.Unpriced != "" {
			p.blockQuietly(c, c.UnpricedReason, c.Unpriced)
			continue
		}
		if msg := p.budgetCheck(c.NodePool.Name, ReasonUnderutilized, 1); msg != "" {
			p.block(c, BlockedBudget, msg)
			continue
		}
		out[c.Node.Name] = c
	}
	return out
}

// consolidateRequest describes the cluster to the solver. Candidates carry
// their NodePool; the other registered nodes are sent without one, so they
// take pods but are not proposed for removal. Nodes being deleted or
// disrupted in this pass are left out; NodeClaims without a node are sent
// as in flight.
func (p *pass) consolidateRequest(ctx context.Context, byNode map[string]*Candidate, dss []*typesv1.DaemonSet) (*solverv1.ConsolidateRequest, error) {
	its, err := p.c.Cluster.InstanceTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("disruption: list instance types: %w", err)
	}
	pdbs, err := p.c.Cluster.PDBs(ctx)
	if err != nil {
		return nil, fmt.Errorf("disruption: list PodDisruptionBudgets: %w", err)
	}
	req := &solverv1.ConsolidateRequest{InstanceTypes: its, DaemonSets: dss, PodDisruptionBudgets: pdbsToProto(pdbs)}
	for _, name := range sortedKeys(p.pools) {
		np, err := kubeyaml.NodePool(p.pools[name].pool)
		if err != nil {
			return nil, fmt.Errorf("disruption: %w", err)
		}
		req.NodePools = append(req.NodePools, np)
		if allowed, ok := p.allowance(name); ok {
			req.DisruptionAllowances = append(req.DisruptionAllowances,
				&solverv1.NodePoolDisruptionAllowance{NodePool: name, MaxNodes: int32(min(allowed, math.MaxInt32))})
		}
	}
	for _, c := range p.cands {
		if isDeleting(c) || (p.skip[c.NodeClaim.Name] && !p.blockedOnly(c)) {
			continue
		}
		if err := p.addToRequest(req, c, byNode); err != nil {
			return nil, fmt.Errorf("disruption: %w", err)
		}
	}
	return req, nil
}

// allowance is how many more Underutilized disruptions pool's budgets
// allow now; false when its budgets are invalid (its candidates are
// already blocked).
func (p *pass) allowance(name string) (int, bool) {
	ps := p.pools[name]
	allowed, err := AllowedDisruptions(ps.pool.Spec.Disruption.Budgets, karpv1.DisruptionReason(ReasonUnderutilized), p.now, ps.total, ps.disrupting)
	if err != nil {
		return 0, false
	}
	return max(allowed, 0), true
}

// pdbsToProto converts the PodDisruptionBudgets for the solver, which then
// keeps all its actions together within each one's allowed disruptions.
func pdbsToProto(pdbs []*policyv1.PodDisruptionBudget) []*typesv1.PodDisruptionBudget {
	out := make([]*typesv1.PodDisruptionBudget, 0, len(pdbs))
	for _, b := range pdbs {
		if b == nil {
			continue
		}
		pb := &typesv1.PodDisruptionBudget{Namespace: b.Namespace, Name: b.Name,
			DisruptionsAllowed: max(b.Status.DisruptionsAllowed, 0)}
		if sel := b.Spec.Selector; sel != nil {
			pb.Selector = &typesv1.LabelSelector{MatchLabels: maps.Clone(sel.MatchLabels)}
			for _, e := range sel.MatchExpressions {
				pb.Selector.MatchExpressions = append(pb.Selector.MatchExpressions, &typesv1.LabelSelectorRequirement{
					Key: e.Key, Operator: string(e.Operator), Values: slices.Clone(e.Values)})
			}
		}
		out = append(out, pb)
	}
	return out
}

// addToRequest adds a candidate to the solver request: a NodeClaim without a
// node as in flight, a consolidation candidate with its NodePool, any other
// node as a destination only.
func (p *pass) addToRequest(req *solverv1.ConsolidateRequest, c *Candidate, byNode map[string]*Candidate) error {
	if c.Node == nil {
		nc, err := convertInFlight(c)
		if err != nil {
			return err
		}
		req.NodeClaims = append(req.NodeClaims, nc)
		return nil
	}
	pool := ""
	if byNode[c.Node.Name] == c {
		pool = c.NodePool.Name
	}
	n, err := convertNode(c, pool)
	if err != nil {
		return err
	}
	req.Nodes = append(req.Nodes, n)
	return nil
}

// blockedOnly reports whether the candidate was skipped for being blocked
// rather than disrupted: blocked nodes stay and can take pods.
func (p *pass) blockedOnly(c *Candidate) bool {
	for _, d := range p.report.Decisions {
		if d.NodeClaim == c.NodeClaim.Name {
			return false
		}
	}
	return true
}

// apply carries out one solver action if all its nodes are still
// candidates and the budgets allow it.
func (p *pass) apply(ctx context.Context, a *solverv1.ConsolidationAction, byNode map[string]*Candidate) {
	cands := make([]*Candidate, 0, len(a.GetNodes()))
	need := map[string]int{}
	for _, n := range a.GetNodes() {
		c := byNode[n]
		if c == nil || p.skip[c.NodeClaim.Name] {
			p.c.log().Info("consolidation action skipped: node no longer a candidate", slog.String("node", n), slog.String("kind", a.GetKind()))
			return
		}
		cands = append(cands, c)
		need[c.NodePool.Name]++
	}
	if len(cands) == 0 {
		return
	}
	if msg := p.reserve(need, ReasonUnderutilized); msg != "" {
		for _, c := range cands {
			p.block(c, BlockedBudget, msg)
		}
		return
	}
	d := Decision{Reason: ReasonUnderutilized, Action: ActionDelete, SavingsPerHour: a.GetSavingsPerHour(),
		Message: fmt.Sprintf("underutilized: %s (saves $%.4f/h)", a.GetReason(), a.GetSavingsPerHour())}
	switch a.GetKind() {
	case solverDelete:
	case solverReplace:
		claim, err := replacementClaim(a.GetReplacement())
		if err != nil {
			p.release(need)
			p.errs = append(p.errs, fmt.Errorf("disruption: solver action on %s: %w", strings.Join(a.GetNodes(), ", "), err))
			return
		}
		names, ok := p.replace(ctx, cands, need, ReasonUnderutilized, claim)
		if !ok {
			return
		}
		d.Action, d.Replacements = ActionReplace, names
	default:
		p.release(need)
		p.errs = append(p.errs, fmt.Errorf("disruption: solver proposed unknown action kind %q", a.GetKind()))
		return
	}
	for _, c := range cands {
		p.disrupt(ctx, c, d)
	}
}

// replace taints the candidates' nodes, then launches the replacements and
// waits for them. On failure the taints are taken off, the reserved budget
// is returned, the candidates are reported as blocked with a Warning event,
// and false is returned: nothing is deleted.
func (p *pass) replace(ctx context.Context, cands []*Candidate, need map[string]int, reason string, claims ...*typesv1.NodeClaim) ([]string, bool) {
	if !p.taint(ctx, cands, reason) {
		p.release(need)
		return nil, false
	}
	for _, c := range cands {
		p.event(c, "Normal", EventReplacing, fmt.Sprintf("Launching %d replacement NodeClaim(s) (%s) before disrupting (%s)",
			len(claims), instanceTypes(claims), reason))
	}
	timeout := p.c.ReplaceTimeout
	if timeout <= 0 {
		timeout = DefaultReplaceTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	names, err := p.c.Actuator.Replace(rctx, claims, reason)
	cancel()
	if err == nil {
		return names, true
	}
	if rctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("replacement not Initialized within %s: %w", timeout, err)
	}
	p.release(need)
	p.untaint(ctx, cands)
	for _, c := range cands {
		p.skip[c.NodeClaim.Name] = true
		p.addBlocked(c, BlockedReplaceFailed, fmt.Sprintf("replacement failed, node kept: %v", err))
		p.event(c, "Warning", EventReplaceFailed, fmt.Sprintf("Replacement for %s disruption failed, node kept: %v", reason, err))
	}
	p.c.log().Warn("disruption replacement failed", slog.String("reason", reason), slog.Any("error", err))
	return nil, false
}

func instanceTypes(claims []*typesv1.NodeClaim) string {
	var s []string
	for _, c := range claims {
		s = append(s, c.GetInstanceType())
	}
	return strings.Join(s, ", ")
}

// driftReplacement is a like-for-like replacement of a drifted candidate from
// its NodePool's current template: the template's labels and taints, and the
// node's instance type, zone and capacity type where the NodePool's
// requirements still allow them.
func driftReplacement(c *Candidate) (*typesv1.NodeClaim, error) {
	np := c.NodePool
	taints, err := kubeyaml.Taints(np.Spec.Template.Spec.Taints)
	if err != nil {
		return nil, fmt.Errorf("nodepool %s: %w", np.Name, err)
	}
	allocatable, err := kubeyaml.Quantities(c.NodeClaim.Status.Allocatable)
	if err != nil {
		return nil, fmt.Errorf("nodeclaim %s: %w", c.NodeClaim.Name, err)
	}
	labels := maps.Clone(np.Spec.Template.ObjectMeta.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[karpv1.NodePoolLabelKey] = np.Name
	src := c.NodeClaim.Labels
	if c.Node != nil {
		src = c.Node.Labels
	}
	for _, k := range []string{corev1.LabelInstanceTypeStable, corev1.LabelTopologyZone, karpv1.CapacityTypeLabelKey} {
		if v := src[k]; v != "" && allowedBy(np.Spec.Template.Spec.Requirements, k, v) {
			labels[k] = v
		}
	}
	return &typesv1.NodeClaim{
		NodePool:     np.Name,
		InstanceType: labels[corev1.LabelInstanceTypeStable],
		Zone:         labels[corev1.LabelTopologyZone],
		CapacityType: labels[karpv1.CapacityTypeLabelKey],
		PricePerHour: c.PricePerHour,
		Labels:       labels,
		Taints:       taints,
		Allocatable:  allocatable,
	}, nil
}

// allowedBy reports whether label key=v meets every requirement on key.
func allowedBy(reqs []karpv1.NodeSelectorRequirementWithMinValues, key, v string) bool {
	for _, r := range reqs {
		if r.Key == key && !satisfies(r.NodeSelectorRequirement, v, true) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
