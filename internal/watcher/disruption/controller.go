package disruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// Run makes one disruption pass: expiration, drift, emptiness, consolidation
// (per consolidationPolicy after consolidateAfter), honouring budgets,
// do-not-disrupt and PDBs; returns what it decided.
//
// Expiration is forceful, as in Karpenter v1: an expired NodeClaim is deleted
// whatever its budgets, annotations and PDBs say (its pods then drain within
// the NodePool's terminationGracePeriod). The other methods skip blocked
// candidates and stay within the NodePools' budgets, counting nodes already
// being deleted. Failures to act on one node are reported (Report.Blocked,
// a Warning event) without failing the pass; the error reports what kept the
// pass from looking at the cluster or asking the solver.
func (c *Controller) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	defer func() { c.Metrics.pass(time.Since(start).Seconds()) }()
	if c.Cluster == nil || c.Actuator == nil {
		return Report{}, errors.New("disruption: controller needs a Cluster and an Actuator")
	}
	cands, err := c.Cluster.Candidates(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("disruption: list candidates: %w", err)
	}
	pdbs, err := c.Cluster.PDBs(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("disruption: list PodDisruptionBudgets: %w", err)
	}
	p := newPass(c, cands)
	p.expire(ctx)
	p.checkBlocked(pdbs)
	p.drift(ctx)
	p.emptiness(ctx)
	p.consolidate(ctx)
	c.forgetNotices(p.quiet)
	c.Metrics.blockedNow(p.report.Blocked)
	c.log().Info("disruption pass", slog.Int("candidates", len(p.cands)), slog.Int("decisions", len(p.report.Decisions)),
		slog.Int("blocked", len(p.report.Blocked)), slog.Duration("took", time.Since(start)))
	return p.report, errors.Join(p.errs...)
}

// pass is the state of one Run.
type pass struct {
	c       *Controller
	now     time.Time
	cands   []*Candidate
	pools   map[string]*poolState
	skip    map[string]bool // NodeClaims disrupted or blocked in this pass
	report  Report
	errs    []error
	invalid map[string]bool // NodePools whose invalid budgets were already reported
	quiet   map[string]bool // NodeClaims blocked quietly in this pass
	tainted map[string]bool // NodeClaims whose node this pass tainted
}

// poolState counts a NodePool's nodes for its budgets.
type poolState struct {
	pool              *karpv1.NodePool
	total, disrupting int
}

func newPass(c *Controller, cands []Candidate) *pass {
	now := c.now()
	p := &pass{c: c, now: now, pools: map[string]*poolState{}, skip: map[string]bool{},
		report: Report{Time: now}, invalid: map[string]bool{}, quiet: map[string]bool{}, tainted: map[string]bool{}}
	for i := range cands {
		cand := &cands[i]
		if cand.NodeClaim == nil {
			continue
		}
		p.cands = append(p.cands, cand)
		if cand.NodePool == nil {
			continue
		}
		ps := p.pools[cand.NodePool.Name]
		if ps == nil {
			ps = &poolState{pool: cand.NodePool}
			p.pools[cand.NodePool.Name] = ps
		}
		ps.total++
		if isDeleting(cand) {
			ps.disrupting++
		}
	}
	return p
}

// expire deletes every NodeClaim past its expireAfter.
func (p *pass) expire(ctx context.Context) {
	for _, c := range p.cands {
		if isDeleting(c) {
			continue
		}
		d, ok := expireAfter(c)
		if !ok {
			continue
		}
		age := p.now.Sub(c.NodeClaim.CreationTimestamp.Time)
		if age < d {
			continue
		}
		p.disrupt(ctx, c, Decision{Reason: ReasonExpired, Action: ActionDelete,
			Message: fmt.Sprintf("expired: created %s ago, expireAfter is %s", age.Round(time.Second), d)})
	}
}

// expireAfter is the NodeClaim's expireAfter, or its NodePool template's
// when the claim does not say; false for Never.
func expireAfter(c *Candidate) (time.Duration, bool) {
	e := c.NodeClaim.Spec.ExpireAfter
	if e.Raw == "" && e.Duration == nil && c.NodePool != nil {
		e = c.NodePool.Spec.Template.Spec.ExpireAfter
	}
	if e.Duration == nil {
		return 0, false
	}
	return *e.Duration, true
}

// checkBlocked reports every remaining candidate that may not be disrupted.
func (p *pass) checkBlocked(pdbs []*policyv1.PodDisruptionBudget) {
	for _, c := range p.cands {
		if p.skip[c.NodeClaim.Name] {
			continue
		}
		if code, msg := BlockReason(c, pdbs); code != "" {
			p.block(c, code, msg)
		}
	}
}

// drift replaces drifted candidates: an empty one is deleted, one with pods
// gets a like-for-like replacement from the current template first.
func (p *pass) drift(ctx context.Context) {
	for _, c := range p.cands {
		if p.skip[c.NodeClaim.Name] {
			continue
		}
		why := DriftReason(c)
		if why == "" {
			continue
		}
		need := map[string]int{c.NodePool.Name: 1}
		if msg := p.reserve(need, ReasonDrifted); msg != "" {
			p.block(c, BlockedBudget, msg)
			continue
		}
		d := Decision{Reason: ReasonDrifted, Action: ActionDelete, Message: "drifted: " + why}
		if len(reschedulablePods(c)) > 0 {
			claim, err := driftReplacement(c)
			if err != nil {
				p.release(need)
				p.block(c, BlockedReplaceFailed, "no replacement: "+err.Error())
				continue
			}
			names, ok := p.replace(ctx, []*Candidate{c}, need, ReasonDrifted, claim)
			if !ok {
				continue
			}
			d.Action, d.Replacements = ActionReplace, names
		}
		p.disrupt(ctx, c, d)
	}
}

// emptiness deletes candidates without pods to move once consolidateAfter
// passed since their last pod event, under either consolidation policy.
func (p *pass) emptiness(ctx context.Context) {
	for _, c := range p.cands {
		if p.skip[c.NodeClaim.Name] || !consolidationDue(c, p.now) || len(reschedulablePods(c)) > 0 {
			continue
		}
		if msg := p.reserve(map[string]int{c.NodePool.Name: 1}, ReasonEmpty); msg != "" {
			p.block(c, BlockedBudget, msg)
			continue
		}
		p.disrupt(ctx, c, Decision{Reason: ReasonEmpty, Action: ActionDelete,
			Message: fmt.Sprintf("empty: no pods but DaemonSet pods since %s", LastPodEvent(c.NodeClaim).UTC().Format(time.RFC3339))})
	}
}

// consolidationDue reports whether consolidateAfter passed since the node's
// last pod event. Never disables consolidation; unset means 0s, the default.
func consolidationDue(c *Candidate, now time.Time) bool {
	ca := c.NodePool.Spec.Disruption.ConsolidateAfter
	var after time.Duration
	switch {
	case ca.Duration != nil:
		after = *ca.Duration
	case ca.Raw != "":
		return false // "Never"
	}
	return !now.Before(LastPodEvent(c.NodeClaim).Add(after))
}

// LastPodEvent is the NodeClaim's last pod event time, or when it became
// Initialized, or when it was created.
func LastPodEvent(nc *karpv1.NodeClaim) time.Time {
	if t := nc.Status.LastPodEventTime; !t.IsZero() {
		return t.Time
	}
	if cond := meta.FindStatusCondition(nc.Status.Conditions, karpv1.ConditionInitialized); cond != nil && !cond.LastTransitionTime.IsZero() {
		return cond.LastTransitionTime.Time
	}
	return nc.CreationTimestamp.Time
}

// reserve takes need[pool] nodes from each pool's budget for reason, all or
// nothing; it returns why when a budget does not allow it.
func (p *pass) reserve(need map[string]int, reason string) string {
	for name, n := range need {
		if msg := p.budgetCheck(name, reason, n); msg != "" {
			return msg
		}
	}
	for name, n := range need {
		p.pools[name].disrupting += n
	}
	return ""
}

// budgetCheck says why pool's budget does not allow n more disruptions for
// reason now, or "" when it does.
func (p *pass) budgetCheck(name, reason string, n int) string {
	ps := p.pools[name]
	if ps == nil {
		return fmt.Sprintf("NodePool %q has no nodes on record", name)
	}
	allowed, err := AllowedDisruptions(ps.pool.Spec.Disruption.Budgets, karpv1.DisruptionReason(reason), p.now, ps.total, ps.disrupting)
	if err != nil {
		p.invalidBudget(ps.pool, err)
		return fmt.Sprintf("NodePool %s has an invalid disruption budget: %v", name, err)
	}
	if allowed < n {
		return fmt.Sprintf("NodePool %s disruption budget allows %d more %s disruption(s) now (%d of %d nodes already disrupting); %d needed",
			name, allowed, reason, ps.disrupting, ps.total, n)
	}
	return ""
}

// release returns what reserve took, when the action failed.
func (p *pass) release(need map[string]int) {
	for name, n := range need {
		if ps := p.pools[name]; ps != nil {
			ps.disrupting -= n
		}
	}
}

func (p *pass) invalidBudget(np *karpv1.NodePool, err error) {
	if p.invalid[np.Name] {
		return
	}
	p.invalid[np.Name] = true
	p.c.Actuator.Event(np, "Warning", EventBudgetMisconfigured, "Disruption budget is invalid, no voluntary disruption until fixed: "+err.Error())
}

// disrupt deletes the candidate's NodeClaim and records the decision. A
// failed delete is reported as blocked.
func (p *pass) disrupt(ctx context.Context, c *Candidate, d Decision) {
	d.NodeClaim, d.Node, d.NodePool = c.NodeClaim.Name, nodeName(c), poolName(c)
	p.skip[c.NodeClaim.Name] = true
	if !p.taint(ctx, []*Candidate{c}, d.Reason) {
		return
	}
	if err := p.c.Actuator.Delete(ctx, c.NodeClaim.Name, d.Reason); err != nil {
		p.untaint(ctx, []*Candidate{c})
		p.event(c, "Warning", EventDeleteFailed, fmt.Sprintf("Failed to delete NodeClaim (%s): %v", d.Message, err))
		p.addBlocked(c, BlockedDeleteFailed, fmt.Sprintf("delete failed: %v", err))
		p.c.log().Warn("disruption delete failed", slog.String("nodeclaim", d.NodeClaim), slog.String("reason", d.Reason), slog.Any("error", err))
		return
	}
	if ps := p.pools[d.NodePool]; ps != nil && d.Reason == ReasonExpired {
		// Budgeted reasons reserved their slot already.
		ps.disrupting++
	}
	p.report.Decisions = append(p.report.Decisions, d)
	p.c.Metrics.decision(d.Reason, d.Action)
	p.event(c, "Normal", EventDisrupting, fmt.Sprintf("Disrupting NodeClaim: %s/%s: %s", d.Reason, d.Action, d.Message))
	p.c.log().Info("disrupting", slog.String("nodeclaim", d.NodeClaim), slog.String("node", d.Node),
		slog.String("reason", d.Reason), slog.String("action", d.Action), slog.String("message", d.Message))
}

// taint puts the disrupted taint on the candidates' nodes before anything
// else is done to them, so no new pod lands on a node about to go; nodes
// already tainted in this pass are skipped. When one fails, the taints put
// on are taken off again, every candidate is reported as blocked with a
// Warning event, and false is returned: nothing may be done to them.
func (p *pass) taint(ctx context.Context, cands []*Candidate, reason string) bool {
	var done []*Candidate
	for _, c := range cands {
		if c.Node == nil || p.tainted[c.NodeClaim.Name] {
			continue
		}
		if err := p.c.Actuator.Taint(ctx, c.Node.Name); err != nil {
			p.untaint(ctx, done)
			for _, c := range cands {
				p.skip[c.NodeClaim.Name] = true
				p.addBlocked(c, BlockedTaintFailed, fmt.Sprintf("taint failed, node kept: %v", err))
				p.event(c, "Warning", EventTaintFailed, fmt.Sprintf("Could not taint the node for %s disruption, node kept: %v", reason, err))
			}
			p.c.log().Warn("disruption taint failed", slog.String("node", c.Node.Name), slog.String("reason", reason), slog.Any("error", err))
			return false
		}
		p.tainted[c.NodeClaim.Name] = true
		done = append(done, c)
	}
	return true
}

// untaint takes the disrupted taint off the candidates' nodes, when their
// disruption was given up. A failure is logged and kept in the pass's
// errors.
func (p *pass) untaint(ctx context.Context, cands []*Candidate) {
	for _, c := range cands {
		if c.Node == nil || !p.tainted[c.NodeClaim.Name] {
			continue
		}
		if err := p.c.Actuator.Untaint(ctx, c.Node.Name); err != nil {
			p.errs = append(p.errs, fmt.Errorf("disruption: untaint node %s: %w", c.Node.Name, err))
			p.c.log().Warn("disruption untaint failed", slog.String("node", c.Node.Name), slog.Any("error", err))
			continue
		}
		delete(p.tainted, c.NodeClaim.Name)
	}
}

// block records a blocked candidate with an event.
func (p *pass) block(c *Candidate, code, msg string) {
	p.skip[c.NodeClaim.Name] = true
	p.addBlocked(c, code, msg)
	p.event(c, "Normal", EventBlocked, "Cannot disrupt NodeClaim: "+msg)
}

// RenoticeAfter is how long a lasting block reported by blockQuietly goes
// without its event being repeated.
const RenoticeAfter = time.Hour

// notice is a block announced with an event.
type notice struct {
	code, msg string
	at        time.Time
}

// blockQuietly records a blocked candidate as block does, every pass, but
// sends its event only when the block is new, says something else than
// the last one, or was last announced RenoticeAfter ago: a block that lasts
// (an unpriced instance type, an unconvertible DaemonSet) is not announced
// every pass.
func (p *pass) blockQuietly(c *Candidate, code, msg string) {
	name := c.NodeClaim.Name
	p.skip[name] = true
	p.quiet[name] = true
	p.addBlocked(c, code, msg)
	p.c.mu.Lock()
	last, ok := p.c.noticed[name]
	fresh := !ok || last.code != code || last.msg != msg || p.now.Sub(last.at) >= RenoticeAfter
	if fresh {
		if p.c.noticed == nil {
			p.c.noticed = map[string]notice{}
		}
		p.c.noticed[name] = notice{code: code, msg: msg, at: p.now}
	}
	p.c.mu.Unlock()
	if fresh {
		p.event(c, "Normal", EventBlocked, "Cannot disrupt NodeClaim: "+msg)
	}
}

// forgetNotices forgets the notices of NodeClaims not quietly blocked in
// the last pass, so a block that ends and comes back is announced again.
func (c *Controller) forgetNotices(quiet map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.noticed {
		if !quiet[name] {
			delete(c.noticed, name)
		}
	}
}

func (p *pass) addBlocked(c *Candidate, code, msg string) {
	p.report.Blocked = append(p.report.Blocked, Blocked{NodeClaim: c.NodeClaim.Name, Node: nodeName(c),
		NodePool: poolName(c), Reason: code, Message: msg})
	p.c.Metrics.blocked(code)
}

// event records an event on the NodeClaim and on its node.
func (p *pass) event(c *Candidate, eventType, reason, msg string) {
	p.c.Actuator.Event(c.NodeClaim, eventType, reason, msg)
	if c.Node != nil {
		p.c.Actuator.Event(c.Node, eventType, reason, msg)
	}
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}
