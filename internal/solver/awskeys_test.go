package solver

import "testing"

// A NodePool requirement on a karpenter.k8s.aws key that no instance type
// carries (capacity-reservation-id here) is a filter, as in Karpenter, not
// a custom label: nothing matches, so the pod is unschedulable, and no node
// is planned with a label that would claim a reservation it does not use.
// A custom key's requirement still becomes a label.
func TestAWSDomainKeysAreNeverCustomLabels(t *testing.T) {
	p := basicProblem(mkPods("p", 1, 1000, nil)...)
	p.NodePools = []NodePool{{Name: "reserved", Requirements: []Requirement{
		{Key: "karpenter.k8s.aws/capacity-reservation-id", Operator: OpIn, Values: []string{"cr-0123456789abcdef0"}},
	}}}
	pl := mustSolve(t, p)
	if len(pl.NodeClaims) != 0 || len(pl.Unschedulable) != 1 {
		t.Fatalf("%d claims, %d unschedulable; want the pod unschedulable", len(pl.NodeClaims), len(pl.Unschedulable))
	}
	p.NodePools = []NodePool{{Name: "team", Requirements: []Requirement{{Key: "example.com/team", Operator: OpIn, Values: []string{"a"}}}}}
	pl = mustSolve(t, p)
	if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Labels["example.com/team"] != "a" {
		t.Fatalf("a custom key's requirement did not become a label: %+v", pl.NodeClaims)
	}
}
