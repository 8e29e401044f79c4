package lifecycle

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// PodEvents stamps a NodeClaim's status.lastPodEventTime when a pod is
// bound to its node, leaves it, finishes or starts terminating: the time
// consolidateAfter counts from. Stamps closer than Dedupe are merged.
type PodEvents struct {
	Client client.Client
	Dedupe time.Duration
	Now    func() time.Time
}

// SetupWithManager registers the controller, keyed by node name.
func (p *PodEvents) SetupWithManager(mgr ctrl.Manager) error {
	toNode := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if pod, ok := o.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: pod.Spec.NodeName}}}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).Named("nodeclaim.podevents").
		Watches(&corev1.Pod{}, toNode, builder.WithPredicates(podEventPredicate())).
		Complete(p)
}

func podEventPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return true },
		DeleteFunc: func(e event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.Pod)
			n, ok2 := e.ObjectNew.(*corev1.Pod)
			if !ok1 || !ok2 {
				return false
			}
			return o.Spec.NodeName != n.Spec.NodeName || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
				terminal(o) != terminal(n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// Reconcile stamps the NodeClaim of the node named by req.
func (p *PodEvents) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	node := &corev1.Node{}
	if err := p.Client.Get(ctx, req.NamespacedName, node); err != nil || node.Spec.ProviderID == "" {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var claims karpv1.NodeClaimList
	if err := p.Client.List(ctx, &claims, client.MatchingFields{IndexClaimProviderID: node.Spec.ProviderID}); err != nil {
		return reconcile.Result{}, fmt.Errorf("nodeclaims of node %s: %w", node.Name, err)
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	for i := range claims.Items {
		c := &claims.Items[i]
		if c.DeletionTimestamp != nil || now.Sub(c.Status.LastPodEventTime.Time) < p.Dedupe {
			continue
		}
		patch := client.MergeFrom(c.DeepCopy())
		c.Status.LastPodEventTime = metav1.NewTime(now)
		if err := p.Client.Status().Patch(ctx, c, patch); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
	}
	return reconcile.Result{}, nil
}
