package disruption

import (
	"testing"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The solver gets the PodDisruptionBudgets and each NodePool's allowance of
// Underutilized disruptions, so all its actions together stay within them.
func TestConsolidateRequestCarriesDisruptionLimits(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "2"}}
	})
	class := newClass()
	exprs := pdb("expr", 3, "web")
	exprs.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}}}}
	cl := &fakeCluster{
		cands: []Candidate{
			newCandidate("n1", pool, class, busy("n1")),
			newCandidate("n2", pool, class, busy("n2")),
			newCandidate("n3", pool, class, busy("n3")),
		},
		pdbs: []*policyv1.PodDisruptionBudget{pdb("web-pdb", 1, "web"), exprs},
	}
	s := &fakeSolver{}
	if _, _, err := run(t, cl, s); err != nil {
		t.Fatal(err)
	}
	got := s.req.GetPodDisruptionBudgets()
	if len(got) != 2 || got[0].GetNamespace() != "default" || got[0].GetName() != "web-pdb" || got[0].GetDisruptionsAllowed() != 1 ||
		got[0].GetSelector().GetMatchLabels()["app"] != "web" {
		t.Fatalf("PodDisruptionBudgets = %v", got)
	}
	if e := got[1].GetSelector().GetMatchExpressions(); len(e) != 1 || e[0].GetOperator() != "In" || len(e[0].GetValues()) != 2 || got[1].GetDisruptionsAllowed() != 3 {
		t.Fatalf("selector expressions = %v", got[1])
	}
	al := s.req.GetDisruptionAllowances()
	if len(al) != 1 || al[0].GetNodePool() != "default" || al[0].GetMaxNodes() != 2 {
		t.Fatalf("DisruptionAllowances = %v", al)
	}
}

func TestSolverBlockCodes(t *testing.T) {
	for kind, want := range map[string]string{"PDB": BlockedPDB, "Budget": BlockedBudget, "DoNotDisrupt": BlockedDoNotDisrupt,
		"NoCheaperFit": BlockedSolver, "": BlockedSolver} {
		if got := solverBlockCode(kind); got != want {
			t.Errorf("solverBlockCode(%q) = %q, want %q", kind, got, want)
		}
	}
}
