package lifecycle

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
)

// register binds the node to the claim: the claim's labels and taints (and,
// this once, its startup taints) go onto the node, the unregistered taint
// comes off, the node gets the termination finalizer and the registered
// label; the claim records the node's name and Registered.
func (c *Controller) register(ctx context.Context, claim *karpv1.NodeClaim, node *corev1.Node) error {
	patch := client.MergeFrom(node.DeepCopy())
	state.ApplyRegistration(node, claim)
	controllerutil.AddFinalizer(node, karpv1.TerminationFinalizer)
	if err := c.Client.Patch(ctx, node, patch); err != nil {
		return fmt.Errorf("register node %s: %w", node.Name, err)
	}
	spatch := client.MergeFrom(claim.DeepCopy())
	claim.Status.NodeName = node.Name
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: karpv1.ConditionRegistered, Status: metav1.ConditionTrue, Reason: "Registered", ObservedGeneration: claim.Generation,
	})
	if err := c.Client.Status().Patch(ctx, claim, spatch); err != nil {
		return fmt.Errorf("status of %s: %w", claim.Name, err)
	}
	c.Recorder.Eventf(claim, nil, corev1.EventTypeNormal, EventRegistered, "Register", "Status condition transitioned, Type: Registered, Status: True, node %s", node.Name)
	c.Log.Info("registered", "nodeclaim", claim.Name, "node", node.Name)
	return nil
}

// initialize marks the claim Initialized once the node is Ready, has no
// startup or unregistered taint left, and offers every extended resource
// the claim requested.
func (c *Controller) initialize(ctx context.Context, claim *karpv1.NodeClaim, node *corev1.Node) (reconcile.Result, error) {
	if why := notInitialized(claim, node); why != "" {
		spatch := client.MergeFrom(claim.DeepCopy())
		changed := meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
			Type: karpv1.ConditionInitialized, Status: metav1.ConditionUnknown, Reason: "NotInitialized", Message: why, ObservedGeneration: claim.Generation,
		})
		if changed {
			if err := c.Client.Status().Patch(ctx, claim, spatch); err != nil {
				return reconcile.Result{}, fmt.Errorf("status of %s: %w", claim.Name, err)
			}
		}
		return reconcile.Result{RequeueAfter: initializeRecheck}, nil
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Labels[karpv1.NodeInitializedLabelKey] = "true"
	if err := c.Client.Patch(ctx, node, patch); err != nil {
		return reconcile.Result{}, fmt.Errorf("label node %s: %w", node.Name, err)
	}
	spatch := client.MergeFrom(claim.DeepCopy())
	for _, t := range []string{karpv1.ConditionInitialized, karpv1.ConditionReady} {
		meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: t, ObservedGeneration: claim.Generation})
	}
	if len(node.Status.Allocatable) > 0 {
		claim.Status.Allocatable = node.Status.Allocatable
	}
	if len(node.Status.Capacity) > 0 {
		claim.Status.Capacity = node.Status.Capacity
	}
	if err := c.Client.Status().Patch(ctx, claim, spatch); err != nil {
		return reconcile.Result{}, fmt.Errorf("status of %s: %w", claim.Name, err)
	}
	c.Recorder.Eventf(claim, nil, corev1.EventTypeNormal, EventInitialized, "Initialize", "Status condition transitioned, Type: Initialized, Status: True, node %s", node.Name)
	c.Log.Info("initialized", "nodeclaim", claim.Name, "node", node.Name, "since_creation", c.now().Sub(claim.CreationTimestamp.Time).String())
	return reconcile.Result{}, nil
}

const initializeRecheck = 10 * time.Second

// notInitialized says why the node is not initialized yet, or "".
func notInitialized(claim *karpv1.NodeClaim, node *corev1.Node) string {
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return "node is not Ready"
	}
	if hasTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey) {
		return "node still has the unregistered taint"
	}
	// Ready is not enough: until the node lifecycle controller lifts
	// not-ready (seconds later), pods cannot schedule there, and a
	// replacement must not count as ready for the pods it takes over.
	for _, key := range state.EphemeralTaintKeys {
		if hasTaint(node.Spec.Taints, key) {
			return "ephemeral taint " + key + " is still on the node"
		}
	}
	for _, t := range claim.Spec.StartupTaints {
		if hasTaint(node.Spec.Taints, t.Key) {
			return "startup taint " + t.Key + " is still on the node"
		}
	}
	for name, q := range claim.Spec.Resources.Requests {
		if !extended(name) || q.IsZero() {
			continue
		}
		if have, ok := node.Status.Allocatable[name]; !ok || have.Cmp(resource.Quantity{}) <= 0 {
			return "extended resource " + string(name) + " is not registered yet"
		}
	}
	return ""
}

// extended says whether a resource is an extended one (not cpu, memory,
// pods or storage), which a device plugin registers after startup.
func extended(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage, corev1.ResourceStorage:
		return false
	}
	return true
}

func hasTaint(ts []corev1.Taint, key string) bool {
	for _, t := range ts {
		if t.Key == key {
			return true
		}
	}
	return false
}

func parse(m map[string]string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range m {
		if q, err := resource.ParseQuantity(v); err == nil {
			out[corev1.ResourceName(k)] = q
		}
	}
	return out
}
