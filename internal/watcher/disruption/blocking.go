package disruption

import (
	"fmt"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// BlockReason says why the candidate may not be voluntarily disrupted now, as
// a short code (see the Blocked* constants) and a message; both are empty
// when nothing blocks it. Checked in order: its NodePool is gone, it is
// already being deleted, it is not Initialized, the node or NodeClaim is
// annotated karpenter.sh/do-not-disrupt, a running pod is, or a
// PodDisruptionBudget covering one of its pods allows no disruption.
func BlockReason(c *Candidate, pdbs []*policyv1.PodDisruptionBudget) (string, string) {
	nc := c.NodeClaim
	switch {
	case c.NodePool == nil:
		return BlockedNodePoolMissing, fmt.Sprintf("NodePool %q does not exist", nc.Labels[karpv1.NodePoolLabelKey])
	case isDeleting(c):
		return BlockedDeleting, "the node is already being deleted"
	case !isInitialized(nc):
		return BlockedNotInitialized, "the NodeClaim is not Initialized yet"
	case nc.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true":
		return BlockedDoNotDisrupt, "the NodeClaim has the " + karpv1.DoNotDisruptAnnotationKey + " annotation"
	case c.Node != nil && c.Node.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true":
		return BlockedDoNotDisrupt, "the node has the " + karpv1.DoNotDisruptAnnotationKey + " annotation"
	}
	for _, p := range c.Pods {
		if isActive(p) && drain.HasDoNotDisrupt(p) {
			return BlockedDoNotDisrupt, fmt.Sprintf("pod %s/%s has the %s annotation", p.Namespace, p.Name, karpv1.DoNotDisruptAnnotationKey)
		}
	}
	if msg := pdbBlock(c.Pods, pdbs); msg != "" {
		return BlockedPDB, msg
	}
	return "", ""
}

// pdbBlock names the first pod that an eviction would fail for: covered by a
// PodDisruptionBudget that allows no disruption now, or by more than one
// budget (which the Eviction API refuses).
func pdbBlock(pods []*corev1.Pod, pdbs []*policyv1.PodDisruptionBudget) string {
	for _, p := range pods {
		if !evictable(p) {
			continue
		}
		var matched []*policyv1.PodDisruptionBudget
		for _, b := range pdbs {
			if selects(b, p) {
				matched = append(matched, b)
			}
		}
		switch {
		case len(matched) > 1:
			return fmt.Sprintf("pod %s/%s is covered by %d PodDisruptionBudgets (%s, %s); the Eviction API refuses such pods",
				p.Namespace, p.Name, len(matched), matched[0].Name, matched[1].Name)
		case len(matched) == 1 && matched[0].Status.DisruptionsAllowed <= 0:
			return fmt.Sprintf("PodDisruptionBudget %s/%s allows no disruption of pod %s", matched[0].Namespace, matched[0].Name, p.Name)
		}
	}
	return ""
}

// selects reports whether the budget covers the pod: same namespace and a
// selector that matches (a nil selector matches nothing, an empty one every
// pod of the namespace).
func selects(b *policyv1.PodDisruptionBudget, p *corev1.Pod) bool {
	if b == nil || b.Namespace != p.Namespace || b.Spec.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(p.Labels))
}

// isActive reports whether the pod runs: not terminal, not terminating.
func isActive(p *corev1.Pod) bool {
	return p != nil && !drain.IsTerminal(p) && p.DeletionTimestamp == nil
}

// evictable reports whether draining the node would evict the pod.
func evictable(p *corev1.Pod) bool {
	return isActive(p) && !drain.IsMirror(p) && !drain.ToleratesDisrupted(p)
}

// reschedulable reports whether the pod must move elsewhere when its node
// goes: an active pod that no DaemonSet or kubelet owns.
func reschedulable(p *corev1.Pod) bool {
	return isActive(p) && !drain.IsDaemonSetPod(p) && !drain.IsMirror(p)
}

// reschedulablePods returns the candidate's pods that must move elsewhere.
func reschedulablePods(c *Candidate) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.Pods {
		if reschedulable(p) {
			out = append(out, p)
		}
	}
	return out
}

func isDeleting(c *Candidate) bool {
	return c.NodeClaim.DeletionTimestamp != nil || (c.Node != nil && c.Node.DeletionTimestamp != nil)
}

func isInitialized(nc *karpv1.NodeClaim) bool {
	return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionInitialized)
}

func poolName(c *Candidate) string {
	if c.NodePool != nil {
		return c.NodePool.Name
	}
	return c.NodeClaim.Labels[karpv1.NodePoolLabelKey]
}

func nodeName(c *Candidate) string {
	if c.Node != nil {
		return c.Node.Name
	}
	return c.NodeClaim.Status.NodeName
}
