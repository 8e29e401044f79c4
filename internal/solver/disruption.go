package solver

import (
	"fmt"
	"sort"
	"strings"
)

// disruptionLimits keeps what consolidation may still disrupt: evictions
// left per PodDisruptionBudget and node removals left per NodePool. Every
// action's needs are taken from it, so the actions of one plan together
// stay within every budget.
type disruptionLimits struct {
	pdbs    []PodDisruptionBudget
	byNS    map[string][]int // PDB indices by namespace
	pdbLeft []int
	// poolLeft has no entry for a NodePool without a cap; poolCap is the
	// caller's allowance.
	poolLeft map[string]int
	poolCap  map[string]int
}

func newDisruptionLimits(p *Problem) *disruptionLimits {
	d := &disruptionLimits{pdbs: p.PodDisruptionBudgets, byNS: map[string][]int{},
		pdbLeft: make([]int, len(p.PodDisruptionBudgets)), poolLeft: map[string]int{}, poolCap: p.DisruptionAllowance}
	for i := range p.PodDisruptionBudgets {
		b := &p.PodDisruptionBudgets[i]
		d.byNS[b.Namespace] = append(d.byNS[b.Namespace], i)
		d.pdbLeft[i] = b.DisruptionsAllowed
	}
	for name, n := range p.DisruptionAllowance {
		d.poolLeft[name] = n
	}
	return d
}

// validateDisruption checks the inputs only Consolidate reads.
func validateDisruption(p *Problem) error {
	for i := range p.PodDisruptionBudgets {
		b := &p.PodDisruptionBudgets[i]
		where := fmt.Sprintf("pod disruption budget %d (%s/%s)", i, b.Namespace, b.Name)
		if b.DisruptionsAllowed < 0 {
			return fmt.Errorf("%s: negative disruptions allowed %d: %w", where, b.DisruptionsAllowed, ErrInvalidProblem)
		}
		if err := validateSelector(b.Selector, where); err != nil {
			return err
		}
	}
	for name, n := range p.DisruptionAllowance {
		if n < 0 {
			return fmt.Errorf("nodepool %q: negative disruption allowance %d: %w", name, n, ErrInvalidProblem)
		}
	}
	return nil
}

// pdbsOf returns the indices of the PDBs that select pod.
func (d *disruptionLimits) pdbsOf(pod *Pod) []int {
	var out []int
	for _, i := range d.byNS[pod.Namespace] {
		if d.pdbs[i].Selector.Matches(pod.Labels) {
			out = append(out, i)
		}
	}
	return out
}

// disruptionNeed is what removing one node takes from the limits.
type disruptionNeed struct {
	pool string
	pdb  map[int]int // evictions per PDB index
}

// need computes what removing a node of pool whose movable pods are pods
// takes, or why the limits left do not allow it (with the blocked kind).
func (d *disruptionLimits) need(pool string, pods []*Pod) (disruptionNeed, string, string) {
	n := disruptionNeed{pool: pool, pdb: map[int]int{}}
	if left, capped := d.poolLeft[pool]; capped && left < 1 {
		return n, BlockedBudget, fmt.Sprintf("NodePool %s disruption budget allows no more node removals now (%d allowed, all taken by other actions)",
			pool, d.poolCap[pool])
	}
	for _, pod := range pods {
		idx := d.pdbsOf(pod)
		if len(idx) > 1 {
			return n, BlockedPDB, fmt.Sprintf("pod %s is covered by %d PodDisruptionBudgets (%s); the Eviction API refuses such pods",
				pod.Ref(), len(idx), d.names(idx))
		}
		for _, i := range idx {
			n.pdb[i]++
		}
	}
	for _, i := range sortedIdx(n.pdb) {
		if need := n.pdb[i]; need > d.pdbLeft[i] {
			b := &d.pdbs[i]
			return n, BlockedPDB, fmt.Sprintf("PodDisruptionBudget %s/%s allows %d more disruption(s) (%d in all); the node's pods need %d",
				b.Namespace, b.Name, d.pdbLeft[i], b.DisruptionsAllowed, need)
		}
	}
	return n, "", ""
}

// take records a removal the limits allowed.
func (d *disruptionLimits) take(n disruptionNeed) {
	if _, capped := d.poolLeft[n.pool]; capped {
		d.poolLeft[n.pool]--
	}
	for i, k := range n.pdb {
		d.pdbLeft[i] -= k
	}
}

func (d *disruptionLimits) names(idx []int) string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = d.pdbs[i].Namespace + "/" + d.pdbs[i].Name
	}
	return strings.Join(out, ", ")
}

func sortedIdx(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for i := range m {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}
