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
// anti-affinity of the moved pods.
func Consolidation(p *solver.Problem, cp *solver.ConsolidationPlan) error {
	r := &report{}
	if p == nil || cp == nil {
		r.add(CheckAction, "nil problem or consolidation plan")
		return r.err()
	}
	type live struct {
		vn       *vnode       // the node in the final state
		opts     []*vnode     // the nodes whose local rules apply (options of a replacement)
		node     *solver.Node // nil for in-flight claims and replacements
		removed  bool
		cordoned bool
	}
	moveTo := func(l *live, p *solver.Pod) {
		for _, vn := range l.opts {
			vn.add(p, true)
		}
	}
	byName := map[string]*live{}
	var order []*live
	for i := range p.Nodes {
		n := &p.Nodes[i]
		vn := existingNode(n)
		l := &live{vn: vn, opts: []*vnode{vn}, node: n, cordoned: n.Unschedulable}
		byName[n.Name] = l
		order = append(order, l)
	}
	for i := range p.NodeClaims {
		c := &p.NodeClaims[i]
		vn := inFlightNode(p, c)
		l := &live{vn: vn, opts: []*vnode{vn}}
		if _, dup := byName[c.Name]; !dup {
			byName[c.Name] = l
		}
		order = append(order, l)
	}

	for ai := range cp.Actions {
		a := &cp.Actions[ai]
		desc := fmt.Sprintf("action %d (%s %v)", ai, a.Kind, a.Nodes)
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

		removedCost := 0.0
		var moving []*vpod
		inAction := map[string]bool{}
		for _, name := range a.Nodes {
			l, ok := byName[name]
			switch {
			case !ok || l.node == nil:
				r.add(CheckAction, "%s removes %q, which is not an existing node", desc, name)
				continue
			case inAction[name]:
				r.add(CheckAction, "%s lists node %q twice", desc, name)
				continue
			case l.removed:
				r.add(CheckAction, "%s removes node %q, which an earlier action removed", desc, name)
				continue
			}
			inAction[name] = true
			l.removed = true
			removedCost += l.node.PricePerHour
			if l.node.Annotations[solver.AnnotationDoNotDisrupt] == "true" {
				r.add(CheckDisruption, "%s removes node %q, which is annotated %s", desc, name, solver.AnnotationDoNotDisrupt)
			}
			for _, vp := range l.vn.pods {
				if vp.pod.Annotations[solver.AnnotationDoNotDisrupt] == "true" {
					r.add(CheckDisruption, "%s removes node %q, whose pod %s is annotated %s", desc, name, vp.pod.Ref(), solver.AnnotationDoNotDisrupt)
				}
				if !vp.pod.DaemonSet {
					moving = append(moving, vp)
				}
			}
		}

		var repl *live
		addedCost := 0.0
		if a.Replacement != nil {
			addedCost = a.Replacement.PricePerHour
			opts, launched := claimCheck(r, p, a.Replacement, desc+" replacement",
				fmt.Sprintf("verify-replacement-%d", ai))
			if launched == nil && len(opts) > 0 {
				launched = opts[0]
			}
			repl = &live{vn: launched, opts: opts}
			order = append(order, repl)
			for _, name := range a.Nodes {
				if _, taken := byName["replacement-for-"+name]; !taken {
					byName["replacement-for-"+name] = repl
				}
			}
		}
		if !priceEqual(removedCost-addedCost, a.SavingsPerHour) {
			r.add(CheckAction, "%s: SavingsPerHour %v, but removed cost %v minus added cost %v is %v",
				desc, a.SavingsPerHour, removedCost, addedCost, removedCost-addedCost)
		}

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
				continue
			case toRepl[ref]:
				if repl.vn == nil {
					r.add(CheckAction, "%s moves pod %s to a replacement that cannot launch", desc, ref)
					continue
				}
				moveTo(repl, vp.pod)
				continue
			case !bound:
				r.add(CheckAction, "%s leaves pod %s of %s without a destination", desc, ref, vp.node.desc)
				continue
			}
			l, ok := byName[target]
			switch {
			case !ok || inAction[target]:
				r.add(CheckAction, "%s moves pod %s to %q, which is not a live node", desc, ref, target)
			case l.removed:
				r.add(CheckAction, "%s moves pod %s to removed node %q", desc, ref, target)
			case l.cordoned:
				r.add(CheckAction, "%s moves pod %s to cordoned node %q", desc, ref, target)
			case l == repl:
				r.add(CheckAction, "%s binds pod %s to its own replacement by name; list it in Replacement.Pods", desc, ref)
			case l.vn == nil:
				r.add(CheckAction, "%s moves pod %s to %q, which cannot launch", desc, ref, target)
			default:
				moveTo(l, vp.pod)
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

	for _, b := range cp.Blocked {
		if b.Reason == "" {
			r.add(CheckAction, "blocked candidate %q has no reason", b.Node)
		}
	}

	st := &state{p: p}
	for _, l := range order {
		if l.removed {
			continue
		}
		if l.vn != nil {
			st.nodes = append(st.nodes, l.vn)
		}
		st.local = append(st.local, l.opts...)
	}
	st.checkLocal(r)
	st.checkInterPod(r, false, false)
	return r.err()
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
