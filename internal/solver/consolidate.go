package solver

import (
	"context"
	"fmt"
	"sort"
)

// Consolidate plans removing nodes whose pods fit elsewhere, replacing
// nodes by a cheaper new NodeClaim, and merging several nodes onto one
// replacement (N nodes to one cheaper node).
//
// Empty candidates are deleted first. The other candidates (nodes with a
// NodePool and no karpenter.sh/do-not-disrupt) are then taken one at a
// time, least utilised first, in one shared placement of the whole
// cluster where their pods start on their own nodes; each decision sees
// the cluster as earlier actions left it:
//
//   - Delete: every pod of the node moves onto another node (or an earlier
//     replacement) with room for it at no extra price;
//   - merge: the pods that did not fit join the last replacement, which
//     may grow to a pricier type as long as that costs less than the node;
//     the node then joins that action (its Nodes);
//   - Replace: they go onto one new NodeClaim cheaper than the node.
//
// Moves follow the rules of repacking (repack.go): every target accepts
// the pod by first fit's own checks, and a pod keeps its domain for every
// non-hostname topology key it takes part in. A node none of this applies
// to is reported in Blocked with the reason.
// The actions together never evict more pods a PodDisruptionBudget selects
// than it allows, nor remove more nodes of a NodePool than
// Problem.DisruptionAllowance allows; nodes they would exceed are blocked
// with the PDB or budget named (disruption.go).
//
// When ctx ends first it stops within a few milliseconds of work and
// returns an error wrapping ctx.Err() (halt.go).
func Consolidate(ctx context.Context, p *Problem) (*ConsolidationPlan, error) {
	if err := ctx.Err(); err != nil {
		return nil, stoppedErr(err)
	}
	h := watch(ctx)
	defer h.release()
	if err := validateProblem(h, p); err != nil {
		return nil, err
	}
	if err := validateDisruption(p); err != nil {
		return nil, err
	}
	out := &ConsolidationPlan{}
	lim := newDisruptionLimits(p)
	gone := map[string]bool{}
	var busy []int
	for i := range p.Nodes {
		nd := &p.Nodes[i]
		if nd.NodePool != "" {
			out.CurrentCostPerHour += nd.PricePerHour
		}
		if kind, why := blockedReason(nd); why != "" {
			if nd.NodePool != "" {
				out.Blocked = append(out.Blocked, BlockedCandidate{Node: nd.Name, Reason: why, Kind: kind})
			}
			continue
		}
		if len(movablePods(nd)) > 0 {
			busy = append(busy, i)
			continue
		}
		need, kind, why := lim.need(nd.NodePool, nil)
		if why != "" {
			out.Blocked = append(out.Blocked, BlockedCandidate{Node: nd.Name, Reason: why, Kind: kind})
			continue
		}
		lim.take(need)
		gone[nd.Name] = true
		out.Actions = append(out.Actions, ConsolidationAction{Kind: "Delete", Nodes: []string{nd.Name},
			Bindings: map[PodRef]string{}, SavingsPerHour: nd.PricePerHour, Reason: "empty"})
	}
	c, err := newConsolidator(h, p, busy, gone)
	if err != nil {
		return nil, err
	}
	c.lim = lim
	for _, i := range c.order(busy) {
		if h.stopped() {
			break
		}
		c.considerWithin(&p.Nodes[i])
	}
	if err := h.err(); err != nil {
		return nil, err
	}
	out.Actions = append(out.Actions, c.finish()...)
	out.Blocked = append(out.Blocked, c.blocked...)
	for _, a := range out.Actions {
		out.SavingsPerHour += a.SavingsPerHour
	}
	out.NewCostPerHour = out.CurrentCostPerHour - out.SavingsPerHour
	return out, nil
}

// blockedReason says why node nd is no candidate at all (with the blocked
// kind), or "".
func blockedReason(nd *Node) (kind, why string) {
	if nd.NodePool == "" {
		return BlockedUnmanaged, "not managed by a NodePool"
	}
	if nd.Annotations[AnnotationDoNotDisrupt] == "true" {
		return BlockedDoNotDisrupt, "node has " + AnnotationDoNotDisrupt
	}
	for _, pod := range nd.Pods {
		if !pod.DaemonSet && pod.Annotations[AnnotationDoNotDisrupt] == "true" {
			return BlockedDoNotDisrupt, fmt.Sprintf("pod %s has %s", pod.Ref(), AnnotationDoNotDisrupt)
		}
	}
	return "", ""
}

func movablePods(nd *Node) []*Pod {
	var out []*Pod
	for _, pod := range nd.Pods {
		if !pod.DaemonSet {
			out = append(out, pod)
		}
	}
	return out
}

// consolidator is the shared placement consolidation decides in: the
// movable pods of the busy candidates are its pending pods, committed to
// their own nodes to start with.
type consolidator struct {
	s       *solver
	nodeBin map[string]*bin
	price   map[string]float64
	actions []consAction
	blocked []BlockedCandidate
	// received names the nodes earlier actions move pods onto; replAt
	// gives the action index of each replacement claim.
	received map[string]bool
	replAt   map[*bin]int
	lim      *disruptionLimits
}

// consAction is an action under construction; repl is its replacement
// claim and replPods the pods that go there.
type consAction struct {
	act      ConsolidationAction
	repl     *bin
	replPods []PodRef
	removed  float64
}

func newConsolidator(h *halt, p *Problem, busy []int, gone map[string]bool) (*consolidator, error) {
	q := *p
	q.Nodes = make([]Node, len(p.Nodes))
	copy(q.Nodes, p.Nodes)
	q.Pods = nil
	var owner []string
	isBusy := map[int]bool{}
	for _, i := range busy {
		isBusy[i] = true
	}
	for i := range q.Nodes {
		nd := &q.Nodes[i]
		if gone[nd.Name] {
			nd.Unschedulable = true
		}
		if !isBusy[i] {
			continue
		}
		var keep []*Pod
		for _, pod := range nd.Pods {
			if pod.DaemonSet {
				keep = append(keep, pod)
				continue
			}
			q.Pods = append(q.Pods, pod)
			owner = append(owner, nd.Name)
		}
		nd.Pods = keep
	}
	s, err := newSolverFrom(h, &q, nil)
	if err != nil {
		return nil, err
	}
	c := &consolidator{s: s, nodeBin: map[string]*bin{}, price: map[string]float64{},
		received: map[string]bool{}, replAt: map[*bin]int{}}
	for _, b := range s.bins {
		if b.kind == binNode {
			c.nodeBin[b.name] = b
			c.price[b.name] = b.node.PricePerHour
		}
	}
	for idx, name := range owner {
		if h.stopped() {
			return nil, h.err()
		}
		s.commit(s.classOf(idx), c.nodeBin[name], idx)
	}
	s.measureRoom()
	return c, nil
}

// order sorts candidates by the share of cpu and memory used, least
// first, then dearest first, then by name.
func (c *consolidator) order(busy []int) []int {
	n := c.s.res.n()
	use := map[int]float64{}
	for _, i := range busy {
		nd := &c.s.p.Nodes[i]
		b := c.nodeBin[nd.Name]
		u := 0.0
		for _, r := range []int{resCPU, resMem} {
			if b.alloc[r] > 0 && r < n {
				u = max(u, float64(b.used[r])/float64(b.alloc[r]))
			}
		}
		use[i] = u
	}
	out := append([]int(nil), busy...)
	sort.SliceStable(out, func(a, b int) bool {
		x, y := &c.s.p.Nodes[out[a]], &c.s.p.Nodes[out[b]]
		if use[out[a]] != use[out[b]] {
			return use[out[a]] < use[out[b]]
		}
		if x.PricePerHour != y.PricePerHour {
			return x.PricePerHour > y.PricePerHour
		}
		return x.Name < y.Name
	})
	return out
}

// consTxn records what one decision changed, to undo it.
type consTxn struct {
	a      *bin
	aGone  bool // a was cordoned before
	snapA  binSnap
	pods   []int
	moves  []repackMove
	repl   *bin // a new claim this decision opened
	growOn *bin // the replacement it grew
	growSn binSnap
	onRepl []int // pods put on repl or growOn
}

// considerWithin decides about one busy candidate if the disruption limits
// left allow removing it with the pods it has now, and takes its needs
// from them when an action removes it.
func (c *consolidator) considerWithin(nd *Node) {
	a := c.nodeBin[nd.Name]
	pods := make([]*Pod, len(a.podIdx))
	for k, idx := range a.podIdx {
		pods[k] = c.s.p.Pods[idx]
	}
	need, kind, why := c.lim.need(nd.NodePool, pods)
	if why != "" {
		c.block(nd, kind, why)
		return
	}
	if c.consider(nd) {
		c.lim.take(need)
	}
}

// consider decides about one busy candidate; it reports whether an action
// removes the node.
func (c *consolidator) consider(nd *Node) bool {
	s := c.s
	a := c.nodeBin[nd.Name]
	pods := append([]int(nil), a.podIdx...)
	for _, idx := range pods {
		if _, ok := s.moveKeys(s.classOf(idx)); !ok {
			c.block(nd, BlockedPodAffinity, fmt.Sprintf("pod %s takes part in hostname pod affinity or instance type topology and is not moved", s.p.Pods[idx].Ref()))
			return false
		}
	}
	t := &consTxn{a: a, aGone: a.deleted, snapA: s.snap(a), pods: pods}
	for _, idx := range pods {
		cl := s.classOf(idx)
		s.uncount(a, cl.selectedBy, cl.owns)
		subVec(a.used, cl.req)
	}
	a.deleted = true
	var left []int
	for _, idx := range sortBySize(s, pods) {
		if b, sn := s.moveOut(s.classOf(idx), idx, a); b != nil {
			t.moves = append(t.moves, repackMove{idx: idx, to: b, snap: sn})
		} else {
			left = append(left, idx)
		}
	}
	if len(left) == 0 {
		c.record(nd, t, "Delete", "pods fit on other nodes")
		return true
	}
	for _, k := range c.mergeTargets(nd, t) {
		if c.merge(k, nd, t, left) {
			return true
		}
	}
	why := fmt.Sprintf("pods do not fit elsewhere: %s: no other node has room for it at its price", s.p.Pods[left[0]].Ref())
	if c.replace(nd, t, left) {
		return true
	}
	c.undo(t)
	c.block(nd, BlockedNoCheaperFit, why+"; no cheaper replacement")
	return false
}

func sortBySize(s *solver, pods []int) []int {
	out := append([]int(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool {
		x, y := s.classOf(out[i]).req, s.classOf(out[j]).req
		if x[resCPU] != y[resCPU] {
			return x[resCPU] > y[resCPU]
		}
		return x[resMem] > y[resMem]
	})
	return out
}

// maxMergeTries bounds the earlier replacements a node tries to join.
const maxMergeTries = 8

// mergeTargets lists, latest first, the actions with a replacement that
// node nd may join. The checker applies actions in order, so the node
// joins action k only if no action moved pods onto it (they would arrive
// after it is gone) and none of its pods moved onto a replacement of an
// action after k (not launched yet when k runs).
func (c *consolidator) mergeTargets(nd *Node, t *consTxn) []int {
	if c.received[nd.Name] {
		return nil
	}
	latest := -1
	for _, m := range t.moves {
		if k, ok := c.replAt[m.to]; ok {
			latest = max(latest, k)
		}
	}
	var out []int
	for k := len(c.actions) - 1; k >= 0 && k >= latest && len(out) < maxMergeTries; k-- {
		if c.actions[k].repl != nil {
			out = append(out, k)
		}
	}
	return out
}

// merge puts the pods left over onto action k's replacement, letting it
// grow by less than the node costs; the node joins the action.
func (c *consolidator) merge(k int, nd *Node, t *consTxn, left []int) bool {
	s := c.s
	ca := &c.actions[k]
	r := ca.repl
	before := r.claim.opts[0].price
	t.growOn, t.growSn = r, s.snap(r)
	if !c.placeOn(r, t, left, nd.PricePerHour) {
		c.undoRepl(t)
		return false
	}
	if r.claim.opts[0].price-before >= nd.PricePerHour*(1-1e-9) {
		c.undoRepl(t)
		return false
	}
	ca.act.Nodes = append(ca.act.Nodes, nd.Name)
	ca.removed += nd.PricePerHour
	ca.act.Reason = fmt.Sprintf("%d nodes fit on one %s", len(ca.act.Nodes), s.its[r.claim.opts[0].it].name)
	for _, m := range t.moves {
		if m.to == r {
			ca.replPods = append(ca.replPods, s.p.Pods[m.idx].Ref())
		} else {
			ca.act.Bindings[s.p.Pods[m.idx].Ref()] = m.to.name
			c.received[m.to.name] = true
		}
	}
	for _, idx := range t.onRepl {
		ca.replPods = append(ca.replPods, s.p.Pods[idx].Ref())
	}
	s.measureFree(r)
	return true
}

// replace opens one new claim for the pods left over and keeps it when it
// is cheaper than the node.
func (c *consolidator) replace(nd *Node, t *consTxn, left []int) bool {
	s := c.s
	first := left[0]
	cl := s.classOf(first)
	s.maxNewClaims = s.newClaims + 1
	defer func() { s.maxNewClaims = -1 }()
	var r *bin
	for _, lv := range cl.levels {
		why := reasons{}
		if r = s.openClaim(cl, lv, first, 1, &why); r != nil {
			break
		}
	}
	if r == nil {
		return false
	}
	t.repl = r
	t.onRepl = append(t.onRepl, first)
	if !s.sameDomains(cl, cl.moveKeys, t.a, r) || !c.placeOn(r, t, left[1:], nd.PricePerHour) ||
		r.claim.opts[0].price >= nd.PricePerHour*(1-1e-9) {
		c.undoRepl(t)
		return false
	}
	r.name = "replacement-for-" + nd.Name
	ca := consAction{act: ConsolidationAction{Kind: "Replace", Nodes: []string{nd.Name}, Bindings: map[PodRef]string{},
		Reason: fmt.Sprintf("pods fit on a cheaper %s", s.its[r.claim.opts[0].it].name)}, repl: r, removed: nd.PricePerHour}
	c.addBindings(&ca.act, t)
	for _, idx := range t.onRepl {
		ca.replPods = append(ca.replPods, s.p.Pods[idx].Ref())
	}
	c.actions = append(c.actions, ca)
	c.replAt[r] = len(c.actions) - 1
	s.measureFree(r)
	z := r.labels[LabelZone]
	s.binsByZone[z] = append(s.binsByZone[z], r)
	if z != "" {
		s.binsByZone[""] = append(s.binsByZone[""], r)
	}
	return true
}

// placeOn puts pods on claim r, which may grow by at most limit.
func (c *consolidator) placeOn(r *bin, t *consTxn, pods []int, limit float64) bool {
	s := c.s
	s.growing, s.growLimit = true, limit
	defer func() { s.growing = false }()
	for _, idx := range pods {
		cl := s.classOf(idx)
		if !s.sameDomains(cl, cl.moveKeys, t.a, r) {
			return false
		}
		placed := false
		for _, lv := range cl.levels {
			if res, _ := s.canPlace(cl, lv, r); res == accept {
				s.commit(cl, r, idx)
				t.onRepl = append(t.onRepl, idx)
				placed = true
				break
			}
		}
		if !placed {
			return false
		}
	}
	return true
}

// undoRepl takes the pods a decision put on a replacement off again.
func (c *consolidator) undoRepl(t *consTxn) {
	s := c.s
	for _, idx := range t.onRepl {
		cl := s.classOf(idx)
		target := t.repl
		if target == nil {
			target = t.growOn
		}
		s.uncount(target, cl.selectedBy, cl.owns)
	}
	t.onRepl = nil
	if t.growOn != nil {
		s.restore(&t.growSn)
		s.measureFree(t.growOn)
		t.growOn = nil
	}
	if t.repl != nil {
		s.releaseClaim(t.repl)
		t.repl.deleted = true
		t.repl.pending, t.repl.podIdx = nil, nil
		t.repl = nil
	}
}

// undo rolls a failed decision back: moves, then the node itself.
func (c *consolidator) undo(t *consTxn) {
	s := c.s
	for i := len(t.moves) - 1; i >= 0; i-- {
		m := &t.moves[i]
		cl := s.classOf(m.idx)
		s.uncount(m.to, cl.selectedBy, cl.owns)
		s.restore(&m.snap)
		s.measureFree(m.to)
	}
	s.restore(&t.snapA)
	t.a.deleted = t.aGone
	for _, idx := range t.pods {
		cl := s.classOf(idx)
		s.count(t.a, cl.selectedBy, cl.owns)
		s.placedOn[idx] = t.a
	}
}

// record turns a decision without a new claim into a Delete action.
func (c *consolidator) record(nd *Node, t *consTxn, kind, reason string) {
	ca := consAction{act: ConsolidationAction{Kind: kind, Nodes: []string{nd.Name}, Bindings: map[PodRef]string{}, Reason: reason},
		removed: nd.PricePerHour}
	c.addBindings(&ca.act, t)
	c.actions = append(c.actions, ca)
}

func (c *consolidator) addBindings(a *ConsolidationAction, t *consTxn) {
	for _, m := range t.moves {
		a.Bindings[c.s.p.Pods[m.idx].Ref()] = m.to.name
		c.received[m.to.name] = true
	}
}

func (c *consolidator) block(nd *Node, kind, why string) {
	c.blocked = append(c.blocked, BlockedCandidate{Node: nd.Name, Reason: why, Kind: kind})
}

// finish turns the actions into the plan's, with their replacements and
// savings (removed cost minus the replacement's final price).
func (c *consolidator) finish() []ConsolidationAction {
	out := make([]ConsolidationAction, 0, len(c.actions))
	for i := range c.actions {
		ca := &c.actions[i]
		a := ca.act
		a.SavingsPerHour = ca.removed
		if ca.repl != nil {
			nc := c.s.finishClaim(ca.repl)
			nc.Pods = ca.replPods
			a.Replacement = &nc
			a.SavingsPerHour -= nc.PricePerHour
		}
		out = append(out, a)
	}
	return out
}
