// Package termination finishes NodeClaims being deleted: it taints the node
// karpenter.sh/disrupted:NoSchedule, drains it pass by pass (drain.Drainer)
// until done or until the NodeClaim's terminationGracePeriod forces it,
// terminates the instance through the launcher, deletes the node and
// removes the finalizers. A node a user deletes terminates its NodeClaim.
package termination

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/lifecycle"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// DeadlineAnnotationKey is an annotation that, set on a NodeClaim (RFC
// 3339), bounds its drain as a terminationGracePeriod would, even without
// one: the WatcherService's Disrupt sets it to the interruption deadline.
// Until then pods leave only through the Eviction API; after it, what is left
// is deleted. The deadline never counts earlier than the NodeClaim's deletion
// plus the minimum grace (see ForceAfter), whatever the annotation says.
const DeadlineAnnotationKey = "flotilla.io/drain-deadline"

// DefaultMinGrace is the least time a Disrupt deadline leaves for evictions
// (the watcher's --disrupt-min-grace).
const DefaultMinGrace = 30 * time.Second

// drainRecheck is how often a drain pass is repeated while pods remain.
const drainRecheck = 2 * time.Second

// Controller terminates deleted NodeClaims.
type Controller struct {
	Client    client.Client
	Clientset kubernetes.Interface
	Drainer   *drain.Drainer
	Launcher  launcherv1.LauncherServiceClient
	Recorder  provisioning.Recorder
	Metrics   *metrics.Metrics
	Journal   *journal.Journal
	Log       *slog.Logger
	// MinGrace is the least time after a NodeClaim's deletion during which
	// its pods are only evicted, whatever its DeadlineAnnotationKey says;
	// 0 means DefaultMinGrace.
	MinGrace time.Duration
}

// SetupWithManager registers the NodeClaim termination controller and the
// node deletion controller.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).Named("nodeclaim.termination").For(&karpv1.NodeClaim{}).Complete(c); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("node.termination").For(&corev1.Node{}).
		Complete(reconcile.Func(c.reconcileNode))
}

// Reconcile makes one termination step for a deleted NodeClaim.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	claim := &karpv1.NodeClaim{}
	if err := c.Client.Get(ctx, req.NamespacedName, claim); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if claim.DeletionTimestamp == nil || !controllerutil.ContainsFinalizer(claim, karpv1.TerminationFinalizer) {
		return reconcile.Result{}, nil
	}
	node, err := c.node(ctx, claim)
	if err != nil {
		return reconcile.Result{}, err
	}
	if node != nil {
		done, err := c.drain(ctx, claim, node)
		if err != nil || !done {
			return reconcile.Result{RequeueAfter: drainRecheck}, err
		}
	}
	if err := c.terminate(ctx, claim); err != nil {
		return reconcile.Result{}, err
	}
	if node != nil {
		if err := c.deleteNode(ctx, node); err != nil {
			return reconcile.Result{}, err
		}
	}
	patch := client.MergeFrom(claim.DeepCopy())
	controllerutil.RemoveFinalizer(claim, karpv1.TerminationFinalizer)
	if err := c.Client.Patch(ctx, claim, patch); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("remove finalizer of %s: %w", claim.Name, err)
	}
	c.Metrics.Terminated(claim.Labels[karpv1.NodePoolLabelKey])
	c.Journal.Add("Terminate", "nodeclaim/"+claim.Name, "drained and terminated "+claim.Status.ProviderID)
	c.Log.Info("terminated", "nodeclaim", claim.Name, "node", claim.Status.NodeName, "provider_id", claim.Status.ProviderID)
	return reconcile.Result{}, nil
}

// node finds the claim's node by provider id, or by the name it recorded.
func (c *Controller) node(ctx context.Context, claim *karpv1.NodeClaim) (*corev1.Node, error) {
	node, err := lifecycle.NodeOf(ctx, c.Client, claim)
	if err != nil || node != nil || claim.Status.NodeName == "" {
		return node, err
	}
	n := &corev1.Node{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: claim.Status.NodeName}, n); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return n, nil
}

// drain taints the node and makes one drain pass; it reports whether the
// node is empty.
func (c *Controller) drain(ctx context.Context, claim *karpv1.NodeClaim, node *corev1.Node) (bool, error) {
	if err := drain.TaintDisrupted(ctx, c.Clientset, node.Name); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.MatchingFields{lifecycle.IndexPodNodeName: node.Name}); err != nil {
		return false, fmt.Errorf("pods of %s: %w", node.Name, err)
	}
	list := make([]*corev1.Pod, 0, len(pods.Items))
	for i := range pods.Items {
		list = append(list, &pods.Items[i])
	}
	res, err := c.Drainer.Drain(ctx, node, list, ForceAfter(claim, c.minGrace()))
	if err != nil {
		return false, fmt.Errorf("drain %s: %w", node.Name, err)
	}
	cond := metav1.Condition{Type: karpv1.ConditionDrained, Status: metav1.ConditionTrue, Reason: "Drained", ObservedGeneration: claim.Generation}
	if !res.Done {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Draining", blockedText(res)
	}
	patch := client.MergeFrom(claim.DeepCopy())
	if meta.SetStatusCondition(&claim.Status.Conditions, cond) {
		if err := c.Client.Status().Patch(ctx, claim, patch); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("status of %s: %w", claim.Name, err)
		}
	}
	return res.Done, nil
}

func blockedText(res drain.Result) string {
	if len(res.Blocked) == 0 {
		return fmt.Sprintf("%d pods evicted, waiting for them to leave", len(res.Evicted))
	}
	parts := make([]string, 0, 3)
	for i, b := range res.Blocked {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(res.Blocked)-3))
			break
		}
		parts = append(parts, b.Pod+": "+b.Reason)
	}
	return "blocked: " + strings.Join(parts, "; ")
}

func (c *Controller) minGrace() time.Duration {
	if c.MinGrace > 0 {
		return c.MinGrace
	}
	return DefaultMinGrace
}

// ForceAfter is when the pods left on a deleting claim's node are deleted
// instead of evicted (PodDisruptionBudgets and do-not-disrupt no longer hold
// them): the deletion time plus the NodePool's terminationGracePeriod, or the
// Disrupt deadline, whichever is earlier; nil when neither applies or the
// claim is not being deleted.
//
// The Disrupt deadline counts no earlier than the deletion time plus
// minGrace: a deadline already past (a late request, a watcher resumed after
// a restart, an annotation written by hand) still leaves minGrace of
// eviction-only drain, as a terminationGracePeriod of minGrace would in
// Karpenter. An unreadable deadline is ignored.
func ForceAfter(claim *karpv1.NodeClaim, minGrace time.Duration) *time.Time {
	if claim.DeletionTimestamp == nil {
		return nil
	}
	deleted := claim.DeletionTimestamp.Time
	var at *time.Time
	if tgp := claim.Spec.TerminationGracePeriod; tgp != nil {
		t := deleted.Add(tgp.Duration)
		at = &t
	}
	if v := claim.Annotations[DeadlineAnnotationKey]; v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			t = later(t, deleted.Add(minGrace))
			if at == nil || t.Before(*at) {
				at = &t
			}
		}
	}
	return at
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// terminate terminates the claim's instance, if it has one.
func (c *Controller) terminate(ctx context.Context, claim *karpv1.NodeClaim) error {
	id := state.InstanceID(claim.Status.ProviderID)
	if id == "" {
		return nil
	}
	if _, err := c.Launcher.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: id, NodeClaim: claim.Name}); err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	patch := client.MergeFrom(claim.DeepCopy())
	if meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: karpv1.ConditionInstanceTerminating, Status: metav1.ConditionTrue, Reason: "InstanceTerminating", ObservedGeneration: claim.Generation,
	}) {
		if err := c.Client.Status().Patch(ctx, claim, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("status of %s: %w", claim.Name, err)
		}
	}
	return nil
}

// deleteNode removes the node's finalizer and deletes it.
func (c *Controller) deleteNode(ctx context.Context, node *corev1.Node) error {
	if controllerutil.ContainsFinalizer(node, karpv1.TerminationFinalizer) {
		patch := client.MergeFrom(node.DeepCopy())
		controllerutil.RemoveFinalizer(node, karpv1.TerminationFinalizer)
		if err := c.Client.Patch(ctx, node, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove finalizer of node %s: %w", node.Name, err)
		}
	}
	if err := c.Client.Delete(ctx, node); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", node.Name, err)
	}
	return nil
}

// reconcileNode handles a node being deleted while it holds our finalizer:
// its NodeClaim is deleted (and terminates it), or, without a NodeClaim,
// the finalizer is released.
func (c *Controller) reconcileNode(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	node := &corev1.Node{}
	if err := c.Client.Get(ctx, req.NamespacedName, node); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if node.DeletionTimestamp == nil || !controllerutil.ContainsFinalizer(node, karpv1.TerminationFinalizer) {
		return reconcile.Result{}, nil
	}
	var claims karpv1.NodeClaimList
	if node.Spec.ProviderID != "" {
		if err := c.Client.List(ctx, &claims, client.MatchingFields{lifecycle.IndexClaimProviderID: node.Spec.ProviderID}); err != nil {
			return reconcile.Result{}, fmt.Errorf("nodeclaims of node %s: %w", node.Name, err)
		}
	}
	if len(claims.Items) == 0 {
		patch := client.MergeFrom(node.DeepCopy())
		controllerutil.RemoveFinalizer(node, karpv1.TerminationFinalizer)
		return reconcile.Result{}, client.IgnoreNotFound(c.Client.Patch(ctx, node, patch))
	}
	for i := range claims.Items {
		cl := &claims.Items[i]
		if cl.DeletionTimestamp != nil {
			continue
		}
		c.Journal.Add("Terminate", "nodeclaim/"+cl.Name, "its node "+node.Name+" was deleted")
		if err := c.Client.Delete(ctx, cl); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("delete nodeclaim %s: %w", cl.Name, err)
		}
	}
	return reconcile.Result{}, nil
}
