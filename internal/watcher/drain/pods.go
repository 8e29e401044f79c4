package drain

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Priority classes whose pods are drained after the others.
const (
	SystemClusterCritical = "system-cluster-critical"
	SystemNodeCritical    = "system-node-critical"
)

// IsTerminal reports whether the pod has finished (Succeeded or Failed).
func IsTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// IsMirror reports whether the pod is a kubelet's mirror of a static pod,
// which the API server cannot evict.
func IsMirror(p *corev1.Pod) bool {
	if _, ok := p.Annotations[MirrorPodAnnotationKey]; ok {
		return true
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "Node" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}

// IsDaemonSetPod reports whether a DaemonSet owns the pod.
func IsDaemonSetPod(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" && o.APIVersion == "apps/v1" {
			return true
		}
	}
	return false
}

// IsCritical reports whether the pod runs at a system-critical priority class.
func IsCritical(p *corev1.Pod) bool {
	return p.Spec.PriorityClassName == SystemClusterCritical || p.Spec.PriorityClassName == SystemNodeCritical
}

// HasDoNotDisrupt reports whether the pod carries karpenter.sh/do-not-disrupt: "true".
func HasDoNotDisrupt(p *corev1.Pod) bool {
	return p.Annotations[DoNotDisruptAnnotationKey] == "true"
}

// DisruptedTaint is the karpenter.sh/disrupted:NoSchedule taint.
func DisruptedTaint() corev1.Taint {
	return corev1.Taint{Key: DisruptedTaintKey, Effect: corev1.TaintEffectNoSchedule}
}

// ToleratesDisrupted reports whether the pod tolerates the
// karpenter.sh/disrupted:NoSchedule taint. Such pods could schedule right back
// onto the node, so Karpenter neither evicts nor waits for them.
func ToleratesDisrupted(p *corev1.Pod) bool {
	t := DisruptedTaint()
	for i := range p.Spec.Tolerations {
		if tolerates(&p.Spec.Tolerations[i], &t) {
			return true
		}
	}
	return false
}

// tolerates reports whether the toleration matches the taint, per the
// Kubernetes rules: an empty effect matches every effect, an empty key with
// operator Exists matches every key, Exists ignores the value and Equal (the
// default) compares it.
func tolerates(tol *corev1.Toleration, taint *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return tol.Key != "" && tol.Value == taint.Value
	default:
		return false
	}
}

// TaintDisrupted adds karpenter.sh/disrupted:NoSchedule to the node,
// idempotently. It patches with the taint list it read, guarded by the
// resourceVersion, so a concurrent change to the taints fails the call
// (retry it) rather than being lost.
func TaintDisrupted(ctx context.Context, c kubernetes.Interface, nodeName string) error {
	node, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("taint node %s: %w", nodeName, err)
	}
	want := DisruptedTaint()
	for _, t := range node.Spec.Taints {
		if t.Key == want.Key && t.Effect == want.Effect {
			return nil
		}
	}
	taints := append(append([]corev1.Taint(nil), node.Spec.Taints...), want)
	patch, err := taintPatch(node.ResourceVersion, taints)
	if err != nil {
		return fmt.Errorf("taint node %s: %w", nodeName, err)
	}
	if _, err := c.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("taint node %s: %w", nodeName, err)
	}
	return nil
}

// UntaintDisrupted removes karpenter.sh/disrupted:NoSchedule from the node,
// idempotently, when a disruption that put it there was given up; a node
// already gone is no error. It patches as TaintDisrupted does.
func UntaintDisrupted(ctx context.Context, c kubernetes.Interface, nodeName string) error {
	node, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("untaint node %s: %w", nodeName, err)
	}
	want := DisruptedTaint()
	taints := make([]corev1.Taint, 0, len(node.Spec.Taints))
	for _, t := range node.Spec.Taints {
		if t.Key != want.Key || t.Effect != want.Effect {
			taints = append(taints, t)
		}
	}
	if len(taints) == len(node.Spec.Taints) {
		return nil
	}
	patch, err := taintPatch(node.ResourceVersion, taints)
	if err != nil {
		return fmt.Errorf("untaint node %s: %w", nodeName, err)
	}
	if _, err := c.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("untaint node %s: %w", nodeName, err)
	}
	return nil
}
