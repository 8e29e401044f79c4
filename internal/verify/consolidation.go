package verify

import (
	"fmt"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Consolidation checks a consolidation plan against problem p. Its actions
// are applied in order, each to the cluster the earlier ones left: an action
// removes its nodes (their DaemonSet pods go with them), launches its
// Replacement if any, and moves every other pod of the removed nodes either
// to the node its Bindings name (a live existing node, an in-flight
// NodeClaim, or the replacement of an earlier action, named
// "replacement-for-<first node it replaced>") or, when the pod is listed in
// Replacement.Pods, to the replacement.
//
// It reports: unknown, repeated or already removed nodes; nodes whose
// removal karpenter.sh/do-not-disrupt (on the node or on one of its pods)
// forbids; pods left without a destination, given two, or sent to a
// removed, cordoned or unknown node; invalid replacements (as for planned
// claims in Plan); SavingsPerHour that is not the removed cost minus the
// added cost; and, in the resulting state, the node-local rules of Plan
// (resources with DaemonSet overhead, node selector and affinity, taints,
// volume topology, host ports) on every node that receives pods and every
// instance type option of every replacement, plus required pod
// anti-affinity of the moved pods. It also reports plans whose actions
// together evict more pods a PodDisruptionBudget selects than it allows,
// evict a pod more than one PDB selects (the Eviction API refuses it), or
// remove more nodes of a NodePool than Problem.DisruptionAllowance allows.
func Consolidation(p *solver.Problem, cp *solver.ConsolidationPlan) error {
	r := &report{}
	if p == nil || cp == nil {
		r.add(CheckAction, "nil problem or consolidation plan")
		return r.err()
	}
	cl := newCluster(r, p)
	for ai := range cp.Actions {
		cl.apply(ai, &cp.Actions[ai])
	}
	for _, b := range cp.Blocked {
		if b.Reason == "" {
			r.add(CheckAction, "blocked candidate %q has no reason", b.Node)
		}
	}
	cl.checkFinal()
	cl.checkBudgets()
	return r.err()
}

// live is a node of the cluster as a consolidation plan's actions change
// it: an existing node, an in-flight NodeClaim or a replacement.
type live struct {
	vn       *vnode       // the node in the final state
	opts     []*vnode     // the nodes whose local rules apply (options of a replacement)
	node     *solver.Node // nil for in-flight claims and replacements
	removed  bool
	cordoned bool
}

// moveTo places p on l, on every option of a replacement.
func (l *live) moveTo(p *solver.Pod) {
	for _, vn := range l.opts {
		vn.add(p, true)
	}
}

// cluster is the state a consolidation plan's actions are applied to, one
// after the other, with the problems found on the way.
type cluster struct {
	r      *report
	p      *solver.Problem
	byName map[string]*live
	order  []*live
	// evicted counts the pods each PDB (by index) selects that actions
	// evicted; removedBy counts removed nodes per NodePool.
	evicted   []int
	removedBy map[string]int
}

// newCluster is the cluster of problem p before any action.
func newCluster(r *report, p *solver.Problem) *cluster {
	cl := &cluster{r: r, p: p, byName: map[string]*live{}, evicted: make([]int, len(p.PodDisruptionBudgets)), removedBy: map[string]int{}}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		vn := existingNode(n)
		l := &live{vn: vn, opts: []*vnode{vn}, node: n, cordoned: n.Unschedulable}
		cl.byName[n.Name] = l
		cl.order = append(cl.order, l)
	}
	for i := range p.NodeClaims {
		c := &p.NodeClaims[i]
		vn := inFlightNode(p, c)
		l := &live{vn: vn, opts: []*vnode{vn}}
		if _, dup := cl.byName[c.Name]; !dup {
			cl.byName[c.Name] = l
		}
		cl.order = append(cl.order, l)
	}
	return cl
}

// apply checks action ai and applies it: it removes the action's nodes,
// launches its replacement and moves the removed nodes' pods.
func (cl *cluster) apply(ai int, a *solver.ConsolidationAction) {
	desc := fmt.Sprintf("action %d (%s %v)", ai, a.Kind, a.Nodes)
	checkActionKind(cl.r, a, desc)
	removedCost, moving, inAction := cl.remove(a, desc)
	repl, addedCost := cl.launchReplacement(ai, a, desc)
	if !priceEqual(removedCost-addedCost, a.SavingsPerHour) {
		cl.r.add(CheckAction, "%s: SavingsPerHour %v, but removed cost %v minus added cost %v is %v",
			desc, a.SavingsPerHour, removedCost, addedCost, removedCost-addedCost)
	}
	cl.move(a, desc, moving, inAction, repl)
}

// checkActionKind reports an unknown kind, a Delete with a replacement, a
// Replace without one, and an action that removes nothing.
func checkActionKind(r *report, a *solver.ConsolidationAction, desc string) {
	switch a.Kind {
	case "Delete":
		if a.Replacement != nil {
			r.add(CheckAction, "%s: a Delete has a Replacement", desc)
		}
	case "Replace":
		if a.Replacement == nil {
			r.add(CheckAction, "%s: a Replace has no Replacement", desc)
		}
	default:
		r.add(CheckAction, "%s: unknown kind %q", desc, a.Kind)
	}
	if len(a.Nodes) == 0 {
		r.add(CheckAction, "%s removes no node", desc)
	}
}

// remove removes the action's nodes, reporting those that cannot be
// removed. It returns the price of the nodes removed, their pods that must
// move (all but DaemonSet pods) and the names of the nodes removed.
func (cl *cluster) remove(a *solver.ConsolidationAction, desc string) (removedCost float64, moving []*vpod, inAction map[string]bool) {
	inAction = map[string]bool{}
	for _, name := range a.Nodes {
		l, ok := cl.byName[name]
		switch {
		case !ok || l.node == nil:
			cl.r.add(CheckAction, "%s removes %q, which is not an existing node", desc, name)
			continue
		case inAction[name]:
			cl.r.add(CheckAction, "%s lists node %q twice", desc, name)
			continue
		case l.removed:
			cl.r.add(CheckAction, "%s removes node %q, which an earlier action removed", desc, name)
			continue
		}
		inAction[name] = true
		l.removed = true
		removedCost += l.node.PricePerHour
		cl.removedBy[l.node.NodePool]++
		if l.node.Annotations[solver.AnnotationDoNotDisrupt] == "true" {
			cl.r.add(CheckDisruption, "%s removes node %q, which is annotated %s", desc, name, solver.AnnotationDoNotDisrupt)
		}
		for _, vp := range l.vn.pods {
			if vp.pod.Annotations[solver.AnnotationDoNotDisrupt] == "true" {
				cl.r.add(CheckDisruption, "%s removes node %q, whose pod %s is annotated %s", desc, name, vp.pod.Ref(), solver.AnnotationDoNotDisrupt)
			}
			if !vp.pod.DaemonSet {
				moving = append(moving, vp)
				cl.evict(desc, vp.pod)
			}
		}
	}
	return removedCost, moving, inAction
}

// launchReplacement checks and launches the action's replacement, if any,
// naming it "replacement-for-<node>" for each node it replaces that has
// no replacement of that name yet. It returns the replacement (nil
// without one) and its price.
func (cl *cluster) launchReplacement(ai int, a *solver.ConsolidationAction, desc string) (repl *live, addedCost float64) {
	if a.Replacement == nil {
		return nil, 0
	}
	opts, launched := claimCheck(cl.r, cl.p, a.Replacement, desc+" replacement",
		fmt.Sprintf("verify-replacement-%d", ai))
	if launched == nil && len(opts) > 0 {
		launched = opts[0]
	}
	repl = &live{vn: launched, opts: opts}
	cl.order = append(cl.order, repl)
	for _, name := range a.Nodes {
		if _, taken := cl.byName["replacement-for-"+name]; !taken {
			cl.byName["replacement-for-"+name] = repl
		}
	}
	return repl, a.Replacement.PricePerHour
}

// move sends each moving pod to the replacement or to the node its binding
// names, reporting pods without a valid destination and bindings or
// Replacement.Pods entries for pods that are not moving.
func (cl *cluster) move(a *solver.ConsolidationAction, desc string, moving []*vpod, inAction map[string]bool, repl *live) {
	r := cl.r
	toRepl := map[solver.PodRef]bool{}
	if a.Replacement != nil {
		for _, ref := range a.Replacement.Pods {
			toRepl[ref] = true
		}
	}
	movingRefs := map[solver.PodRef]bool{}
	for _, vp := range moving {
		ref := vp.pod.Ref()
		movingRefs[ref] = true
		target, bound := a.Bindings[ref]
		switch {
		case bound && toRepl[ref]:
			r.add(CheckAction, "%s both binds pod %s to %q and lists it in Replacement.Pods", desc, ref, target)
		case toRepl[ref]:
			if repl.vn == nil {
				r.add(CheckAction, "%s moves pod %s to a replacement that cannot launch", desc, ref)
				continue
			}
			repl.moveTo(vp.pod)
		case !bound:
			r.add(CheckAction, "%s leaves pod %s of %s without a destination", desc, ref, vp.node.desc)
		default:
			cl.moveBound(desc, vp.pod, target, inAction, repl)
		}
	}
	for _, ref := range sortedRefs(a.Bindings) {
		if !movingRefs[ref] {
			r.add(CheckAction, "%s binds pod %s, which is not a movable pod of the removed nodes", desc, ref)
		}
	}
	for ref := range toRepl {
		if !movingRefs[ref] {
			r.add(CheckAction, "%s lists pod %s in Replacement.Pods, but it is not a movable pod of the removed nodes", desc, ref)
		}
	}
}

// moveBound moves pod p to the node target its binding names, unless that
// node cannot take it.
func (cl *cluster) moveBound(desc string, p *solver.Pod, target string, inAction map[string]bool, repl *live) {
	ref := p.Ref()
	l, ok := cl.byName[target]
	switch {
	case !ok || inAction[target]:
		cl.r.add(CheckAction, "%s moves pod %s to %q, which is not a live node", desc, ref, target)
	case l.removed:
		cl.r.add(CheckAction, "%s moves pod %s to removed node %q", desc, ref, target)
	case l.cordoned:
		cl.r.add(CheckAction, "%s moves pod %s to cordoned node %q", desc, ref, target)
	case l == repl:
		cl.r.add(CheckAction, "%s binds pod %s to its own replacement by name; list it in Replacement.Pods", desc, ref)
	case l.vn == nil:
		cl.r.add(CheckAction, "%s moves pod %s to %q, which cannot launch", desc, ref, target)
	default:
		l.moveTo(p)
	}
}

// checkFinal runs the node-local rules on every node left and on every
// option of every replacement, and checks the required pod anti-affinity
// of the moved pods.
func (cl *cluster) checkFinal() {
	st := &state{p: cl.p}
	for _, l := range cl.order {
		if l.removed {
			continue
		}
		if l.vn != nil {
			st.nodes = append(st.nodes, l.vn)
		}
		st.local = append(st.local, l.opts...)
	}
	st.checkLocal(cl.r)
	st.checkInterPod(cl.r, false, false)
}

func sortedRefs(m map[solver.PodRef]string) []solver.PodRef {
	out := make([]solver.PodRef, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].String() < out[j-1].String(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// evict counts the eviction of pod p against the PDBs that select it.
func (cl *cluster) evict(desc string, p *solver.Pod) {
	var names []string
	for i := range cl.p.PodDisruptionBudgets {
		b := &cl.p.PodDisruptionBudgets[i]
		if b.Namespace == p.Namespace && b.Selector.Matches(p.Labels) {
			cl.evicted[i]++
			names = append(names, b.Namespace+"/"+b.Name)
		}
	}
	if len(names) > 1 {
		cl.r.add(CheckDisruption, "%s evicts pod %s, which PodDisruptionBudgets %v all select", desc, p.Ref(), names)
	}
}

// checkBudgets reports PDBs and NodePool allowances the actions exceed.
func (cl *cluster) checkBudgets() {
	for i := range cl.p.PodDisruptionBudgets {
		b := &cl.p.PodDisruptionBudgets[i]
		if cl.evicted[i] > b.DisruptionsAllowed {
			cl.r.add(CheckDisruption, "the actions evict %d pods of PodDisruptionBudget %s/%s, which allows %d",
				cl.evicted[i], b.Namespace, b.Name, b.DisruptionsAllowed)
		}
	}
	for pool, n := range cl.removedBy {
		if allowed, capped := cl.p.DisruptionAllowance[pool]; capped && n > allowed {
			cl.r.add(CheckDisruption, "the actions remove %d nodes of NodePool %q, whose disruption allowance is %d", n, pool, allowed)
		}
	}
}
