package state

import (
	corev1 "k8s.io/api/core/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// ApplyRegistration gives node what registering it to claim gives it: the
// claim's labels and the registered label, the claim's taints and (this
// once) its startup taints unless the node opts out of taint sync, and no
// unregistered taint. The lifecycle controller patches a node with it, and
// planning applies it to a node that has not registered yet, as Karpenter's
// cluster state does (a StateNode reads labels and taints from its
// NodeClaim until the node carries karpenter.sh/registered): the node
// exists a moment before it is registered, and without the claim's labels
// it looks unusable to the pods it was launched for.
func ApplyRegistration(node *corev1.Node, claim *karpv1.NodeClaim) {
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for k, v := range ClaimLabels(claim) {
		node.Labels[k] = v
	}
	node.Labels[karpv1.NodeRegisteredLabelKey] = "true"
	if node.Labels[karpv1.NodeDoNotSyncTaintsLabelKey] != "true" {
		node.Spec.Taints = mergeTaints(node.Spec.Taints, claim.Spec.Taints)
		node.Spec.Taints = mergeTaints(node.Spec.Taints, claim.Spec.StartupTaints)
	}
	node.Spec.Taints = withoutTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey)
}

// Registered reports whether the node of a NodeClaim has been registered.
func Registered(node *corev1.Node) bool {
	return node.Labels[karpv1.NodeRegisteredLabelKey] == "true"
}

// asPlanned is the node as planning sees it while its NodeClaim starts:
// until it registers, with the labels and taints registration gives it;
// until it is initialized, with any resource it does not report yet taken
// from the claim's allocatable (Karpenter's StateNode does the same).
func asPlanned(node *corev1.Node, claim *karpv1.NodeClaim) *corev1.Node {
	out := node.DeepCopy()
	if !Registered(node) {
		ApplyRegistration(out, claim)
	}
	if node.Labels[karpv1.NodeInitializedLabelKey] != "true" {
		if out.Status.Allocatable == nil {
			out.Status.Allocatable = corev1.ResourceList{}
		}
		for name, q := range claim.Status.Allocatable {
			if have, ok := out.Status.Allocatable[name]; !ok || have.IsZero() {
				out.Status.Allocatable[name] = q.DeepCopy()
			}
		}
	}
	return out
}

func withoutTaint(ts []corev1.Taint, key string) []corev1.Taint {
	out := ts[:0:0]
	for _, t := range ts {
		if t.Key != key {
			out = append(out, t)
		}
	}
	return out
}

// mergeTaints adds the taints of add that ts lacks (by key and effect).
func mergeTaints(ts, add []corev1.Taint) []corev1.Taint {
	for _, a := range add {
		found := false
		for _, t := range ts {
			if t.Key == a.Key && t.Effect == a.Effect {
				found = true
				break
			}
		}
		if !found {
			ts = append(ts, a)
		}
	}
	return ts
}
