package solver

import (
	"fmt"
	"sort"
)

// Consolidate plans removing nodes whose pods fit elsewhere, and replacing
// a node by a cheaper one when its pods fit on a single new NodeClaim.
// Empty nodes go first, then candidates one at a time, cheapest node
// first; each decision sees the cluster as earlier actions left it. Pods
// moved to a replacement are listed in Replacement.Pods; Bindings maps the
// pods moved to existing nodes.
func Consolidate(p *Problem) (*ConsolidationPlan, error) {
	if err := validateProblem(p); err != nil {
		return nil, err
	}
	w := newWorkCluster(p)
	out := &ConsolidationPlan{}
	var cands []int
	for i := range w.nodes {
		nd := &w.nodes[i]
		if why := blockedReason(nd); why != "" {
			if nd.NodePool != "" {
				out.Blocked = append(out.Blocked, BlockedCandidate{Node: nd.Name, Reason: why})
			}
			continue
		}
		cands = append(cands, i)
	}
	// Empty nodes cost nothing to remove.
	var busy []int
	for _, i := range cands {
		nd := &w.nodes[i]
		if len(movablePods(nd)) > 0 {
			busy = append(busy, i)
			continue
		}
		w.gone[nd.Name] = true
		out.Actions = append(out.Actions, ConsolidationAction{Kind: "Delete", Nodes: []string{nd.Name},
			Bindings: map[PodRef]string{}, SavingsPerHour: nd.PricePerHour, Reason: "empty"})
	}
	sort.SliceStable(busy, func(a, b int) bool {
		x, y := &w.nodes[busy[a]], &w.nodes[busy[b]]
		if x.PricePerHour != y.PricePerHour {
			return x.PricePerHour < y.PricePerHour
		}
		return x.Name < y.Name
	})
	for _, i := range busy {
		act, why, err := w.tryRemove(i)
		if err != nil {
			return nil, err
		}
		if act != nil {
			out.Actions = append(out.Actions, *act)
		} else {
			out.Blocked = append(out.Blocked, BlockedCandidate{Node: w.nodes[i].Name, Reason: why})
		}
	}
	return out, nil
}

func blockedReason(nd *Node) string {
	if nd.NodePool == "" {
		return "not managed by a NodePool"
	}
	if nd.Annotations[AnnotationDoNotDisrupt] == "true" {
		return "node has " + AnnotationDoNotDisrupt
	}
	for _, pod := range nd.Pods {
		if !pod.DaemonSet && pod.Annotations[AnnotationDoNotDisrupt] == "true" {
			return fmt.Sprintf("pod %s has %s", pod.Ref(), AnnotationDoNotDisrupt)
		}
	}
	return ""
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

// workCluster is the cluster as the consolidation actions so far leave it.
type workCluster struct {
	p      *Problem
	nodes  []Node
	claims []NodeClaim
	gone   map[string]bool
}

func newWorkCluster(p *Problem) *workCluster {
	w := &workCluster{p: p, gone: map[string]bool{}, claims: append([]NodeClaim(nil), p.NodeClaims...)}
	w.nodes = make([]Node, len(p.Nodes))
	copy(w.nodes, p.Nodes)
	for i := range w.nodes {
		w.nodes[i].Pods = append([]*Pod(nil), p.Nodes[i].Pods...)
	}
	return w
}

// trial builds the problem of rescheduling node i's movable pods onto the
// rest of the cluster.
func (w *workCluster) trial(i int) *Problem {
	q := *w.p
	q.Pods = movablePods(&w.nodes[i])
	q.Nodes = nil
	for j := range w.nodes {
		if j != i && !w.gone[w.nodes[j].Name] {
			q.Nodes = append(q.Nodes, w.nodes[j])
		}
	}
	q.NodeClaims = w.claims
	return &q
}

// tryRemove deletes node i if its pods fit elsewhere, or replaces it when
// they fit with one cheaper new claim; otherwise it says why not.
func (w *workCluster) tryRemove(i int) (*ConsolidationAction, string, error) {
	nd := &w.nodes[i]
	q := w.trial(i)
	s, err := newSolver(q)
	if err != nil {
		return nil, "", err
	}
	s.maxNewClaims = 0
	s.placeAll()
	if len(s.unscheduled) == 0 {
		act := &ConsolidationAction{Kind: "Delete", Nodes: []string{nd.Name}, Bindings: map[PodRef]string{},
			SavingsPerHour: nd.PricePerHour, Reason: "pods fit on other nodes"}
		w.apply(s, act, nd)
		return act, "", nil
	}
	first := firstUnscheduled(s)
	why := fmt.Sprintf("pods do not fit elsewhere: %s: %s", q.Pods[first].Ref(), s.unscheduled[first])

	r, err := newSolver(q)
	if err != nil {
		return nil, "", err
	}
	r.maxNewClaims = 1
	r.placeAll()
	if len(r.unscheduled) > 0 {
		return nil, why, nil
	}
	pl := r.plan()
	if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].PricePerHour >= nd.PricePerHour {
		return nil, why + "; no cheaper replacement", nil
	}
	repl := pl.NodeClaims[0]
	act := &ConsolidationAction{Kind: "Replace", Nodes: []string{nd.Name}, Replacement: &repl,
		Bindings: map[PodRef]string{}, SavingsPerHour: nd.PricePerHour - repl.PricePerHour,
		Reason: fmt.Sprintf("pods fit on a cheaper %s", repl.InstanceType)}
	w.apply(r, act, nd)
	return act, "", nil
}

func firstUnscheduled(s *solver) int {
	first := -1
	for i := range s.unscheduled {
		if first < 0 || i < first {
			first = i
		}
	}
	return first
}

// apply records the moves of a trial in the work cluster and the action.
func (w *workCluster) apply(s *solver, act *ConsolidationAction, nd *Node) {
	w.gone[nd.Name] = true
	byName := map[string]int{}
	for j := range w.nodes {
		byName[w.nodes[j].Name] = j
	}
	claimByName := map[string]int{}
	for j := range w.claims {
		claimByName[w.claims[j].Name] = j
	}
	for _, b := range s.bins {
		for _, podIdx := range b.podIdx {
			pod := s.p.Pods[podIdx]
			switch b.kind {
			case binNode:
				act.Bindings[pod.Ref()] = b.name
				j := byName[b.name]
				w.nodes[j].Pods = append(w.nodes[j].Pods, pod)
			case binInFlight:
				act.Bindings[pod.Ref()] = b.name
				j := claimByName[b.name]
				w.claims[j].Pods = append(append([]*Pod(nil), w.claims[j].Pods...), pod)
			}
		}
		if b.kind == binNew && act.Replacement != nil {
			var pods []*Pod
			for _, podIdx := range b.podIdx {
				pods = append(pods, s.p.Pods[podIdx])
			}
			rp := act.Replacement
			w.claims = append(w.claims, NodeClaim{Name: "replacement-for-" + nd.Name, NodePool: rp.NodePool,
				InstanceType: rp.InstanceType, Zone: rp.Zone, CapacityType: rp.CapacityType,
				PricePerHour: rp.PricePerHour, Labels: rp.Labels, Taints: rp.Taints,
				Allocatable: s.smallestAllocatable(b), Pods: pods})
		}
	}
}

// smallestAllocatable is, per resource, the least any option of claim b
// offers after its own DaemonSet overhead: a replacement may launch as any
// of its options, so later actions can only count on that much. (The work
// cluster may subtract DaemonSet overhead once more; that only makes later
// actions more careful.)
func (s *solver) smallestAllocatable(b *bin) Resources {
	cl := b.claim
	n := s.res.n()
	least := append([]int64{}, cl.pool.availOf(int(cl.opts[0].it), int(cl.opts[0].off), n)...)
	for _, o := range cl.opts[1:] {
		for i, v := range cl.pool.availOf(int(o.it), int(o.off), n) {
			least[i] = min(least[i], v)
		}
	}
	return s.res.resources(least)
}
