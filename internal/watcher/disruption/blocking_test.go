package disruption

import (
	"strings"
	"testing"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBlockReason(t *testing.T) {
	deleted := metav1.NewTime(t0)
	cases := []struct {
		name     string
		mod      func(c *Candidate)
		pdbs     []*policyv1.PodDisruptionBudget
		wantCode string
		wantMsg  string
	}{
		{name: "free", mod: withPods(newPod("web"))},
		{name: "pool missing", wantCode: BlockedNodePoolMissing, wantMsg: `NodePool "default" does not exist`,
			mod: func(c *Candidate) { c.NodePool = nil }},
		{name: "nodeclaim deleting", wantCode: BlockedDeleting, mod: func(c *Candidate) { c.NodeClaim.DeletionTimestamp = &deleted }},
		{name: "node deleting", wantCode: BlockedDeleting, mod: func(c *Candidate) { c.Node.DeletionTimestamp = &deleted }},
		{name: "not initialized", wantCode: BlockedNotInitialized, mod: func(c *Candidate) { c.NodeClaim.Status.Conditions = nil }},
		{name: "nodeclaim annotation", wantCode: BlockedDoNotDisrupt, wantMsg: "NodeClaim has the karpenter.sh/do-not-disrupt",
			mod: func(c *Candidate) { c.NodeClaim.Annotations[karpv1.DoNotDisruptAnnotationKey] = "true" }},
		{name: "node annotation", wantCode: BlockedDoNotDisrupt, wantMsg: "node has the",
			mod: func(c *Candidate) { c.Node.Annotations = map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"} }},
		{name: "pod annotation", wantCode: BlockedDoNotDisrupt, wantMsg: "pod default/batch has",
			mod: withPods(newPod("web"), newPod("batch", doNotDisruptPod))},
		{name: "finished pod annotation ignored",
			mod: withPods(newPod("batch", doNotDisruptPod, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }))},
		{name: "pdb allows none", wantCode: BlockedPDB, wantMsg: "PodDisruptionBudget default/web-pdb allows no disruption of pod web",
			mod: withPods(newPod("web")), pdbs: []*policyv1.PodDisruptionBudget{pdb("web-pdb", 0, "web")}},
		{name: "pdb allows one", mod: withPods(newPod("web")), pdbs: []*policyv1.PodDisruptionBudget{pdb("web-pdb", 1, "web")}},
		{name: "pdb other app", mod: withPods(newPod("web")), pdbs: []*policyv1.PodDisruptionBudget{pdb("db-pdb", 0, "db")}},
		{name: "pdb other namespace", mod: withPods(newPod("web")), pdbs: []*policyv1.PodDisruptionBudget{
			func() *policyv1.PodDisruptionBudget { b := pdb("web-pdb", 0, "web"); b.Namespace = "other"; return b }()}},
		{name: "two pdbs", wantCode: BlockedPDB, wantMsg: "covered by 2 PodDisruptionBudgets",
			mod: withPods(newPod("web")), pdbs: []*policyv1.PodDisruptionBudget{pdb("a", 1, "web"), pdb("b", 1, "web")}},
		{name: "pdb ignores pods tolerating disrupted taint",
			mod: withPods(newPod("web", func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
			})), pdbs: []*policyv1.PodDisruptionBudget{pdb("web-pdb", 0, "web")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCandidate("n1", newPool("default"), newClass())
			tc.mod(&c)
			code, msg := BlockReason(&c, tc.pdbs)
			if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("BlockReason = %q %q, want %q %q", code, msg, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestConsolidationDue(t *testing.T) {
	c := newCandidate("n1", newPool("default"), newClass())
	if !consolidationDue(&c, t0) {
		t.Fatal("10 minutes since the last pod event, consolidateAfter 30s: due")
	}
	c.NodePool.Spec.Disruption.ConsolidateAfter = dur(time.Hour)
	if consolidationDue(&c, t0) {
		t.Fatal("consolidateAfter 1h: not due")
	}
	c.NodePool.Spec.Disruption.ConsolidateAfter = karpv1.NillableDuration{Raw: karpv1.Never}
	if consolidationDue(&c, t0.Add(1000*time.Hour)) {
		t.Fatal("Never: never due")
	}
	c.NodePool.Spec.Disruption.ConsolidateAfter = dur(45 * time.Minute)
	c.NodeClaim.Status.LastPodEventTime = metav1.Time{}
	if consolidationDue(&c, t0.Add(-6*time.Minute)) || !consolidationDue(&c, t0.Add(-5*time.Minute)) {
		t.Fatal("without a pod event, the Initialized time counts")
	}
}
