package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	launchclass "github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// NodePoolStatus keeps each NodePool's status current: resources and node
// count of its live NodeClaims, and the ValidationSucceeded,
// NodeClassReady and Ready conditions; it also exports usage, limits and
// cost per hour as metrics.
type NodePoolStatus struct {
	Client   client.Client
	Types    *nodeclass.Types
	Recorder provisioning.Recorder
	Metrics  *metrics.Metrics
}

// SetupWithManager registers the controller.
func (s *NodePoolStatus) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("nodepool.status").
		For(&karpv1.NodePool{}).
		Watches(&karpv1.NodeClaim{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if p := o.GetLabels()[karpv1.NodePoolLabelKey]; p != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: p}}}
			}
			return nil
		})).
		Watches(&awsv1.EC2NodeClass{}, handler.EnqueueRequestsFromMapFunc(s.poolsOfClass)).
		Complete(s)
}

func (s *NodePoolStatus) poolsOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	var pools karpv1.NodePoolList
	if err := s.Client.List(ctx, &pools); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, p := range pools.Items {
		if ref := p.Spec.Template.Spec.NodeClassRef; ref != nil && ref.Name == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p.Name}})
		}
	}
	return out
}

// Reconcile updates one NodePool's status.
func (s *NodePoolStatus) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	np := &karpv1.NodePool{}
	if err := s.Client.Get(ctx, req.NamespacedName, np); err != nil {
		if client.IgnoreNotFound(err) == nil {
			s.Metrics.ForgetNodePool(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var claims karpv1.NodeClaimList
	if err := s.Client.List(ctx, &claims, client.MatchingLabels{karpv1.NodePoolLabelKey: np.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("nodeclaims of %s: %w", np.Name, err)
	}
	class := &awsv1.EC2NodeClass{}
	classErr := fmt.Errorf("the NodePool has no nodeClassRef")
	if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil {
		classErr = s.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, class)
	}
	types := map[string]*typesv1.InstanceType{}
	if classErr == nil && s.Types != nil {
		if list, err := s.Types.InstanceTypes(ctx, class); err == nil {
			for _, t := range list {
				types[t.GetName()] = t
			}
		}
	}
	patch := client.MergeFrom(np.DeepCopy())
	resources, nodes, cost := usage(claims.Items, types)
	// As Karpenter, status.resources also counts the nodes (the NODES
	// printer column reads it).
	resources[corev1.ResourceName("nodes")] = *resource.NewQuantity(nodes, resource.DecimalSI)
	np.Status.Resources = resources
	np.Status.Nodes = &nodes
	if classErr == nil {
		np.Status.NodeClassObservedGeneration = class.Generation
	}
	s.setConditions(np, class, classErr)
	if err := s.Client.Status().Patch(ctx, np, patch); err != nil {
		return reconcile.Result{}, fmt.Errorf("status of nodepool %s: %w", np.Name, err)
	}
	s.Metrics.NodePool(np.Name, floats(resources), floats(corev1.ResourceList(np.Spec.Limits)), cost)
	return reconcile.Result{}, nil
}

func (s *NodePoolStatus) setConditions(np *karpv1.NodePool, class *awsv1.EC2NodeClass, classErr error) {
	set := func(typ string, ok bool, reason, msg string) {
		c := metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: typ, ObservedGeneration: np.Generation}
		if !ok {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, msg
		}
		meta.SetStatusCondition(&np.Status.Conditions, c)
	}
	_, verr := kubeyaml.NodePool(np)
	valid := verr == nil
	set(karpv1.ConditionValidationSucceeded, valid, "ValidationFailed", errText(verr))
	classReady := classErr == nil && nodeclass.IsReady(class)
	msg := errText(classErr)
	if classErr == nil && !classReady {
		msg = "EC2NodeClass " + class.Name + " is not Ready"
	}
	set(karpv1.ConditionNodeClassReady, classReady, "NodeClassNotReady", msg)
	if !valid {
		msg = "validation failed"
	}
	unhonored := kubeyaml.UnhonoredFields(np)
	set(karpv1.ConditionFieldsHonored, len(unhonored) == 0, "FieldsNotHonored", truncate(strings.Join(unhonored, "; ")))
	was := meta.IsStatusConditionTrue(np.Status.Conditions, karpv1.ConditionReady)
	set(karpv1.ConditionReady, valid && classReady, "NotReady", msg)
	if was && (!valid || !classReady) && s.Recorder != nil {
		s.Recorder.Eventf(np, nil, corev1.EventTypeWarning, "NotReady", "Validate", "%s", msg)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return truncate(err.Error())
}

// usage sums the capacity, count and price of live claims.
func usage(claims []karpv1.NodeClaim, types map[string]*typesv1.InstanceType) (corev1.ResourceList, int64, float64) {
	total := corev1.ResourceList{}
	var n int64
	cost := 0.0
	for i := range claims {
		c := &claims[i]
		if c.DeletionTimestamp != nil {
			continue
		}
		n++
		for name, q := range state.ClaimCapacity(c, types) {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
		cost += state.Price(types, c.Labels[corev1.LabelInstanceTypeStable], c.Labels[corev1.LabelTopologyZone], c.Labels[karpv1.CapacityTypeLabelKey])
	}
	return total, n, cost
}

func floats(rl corev1.ResourceList) map[string]float64 {
	out := map[string]float64{}
	for k, q := range rl {
		out[string(k)] = q.AsApproximateFloat64()
	}
	return out
}

// staleResolutionRetry is how soon a class is resolved again after the
// launcher answered about an older generation of it.
const staleResolutionRetry = time.Second

// NodeClassStatus resolves each EC2NodeClass through the launcher (by
// name: the launcher reads the class from the API server) and writes its
// subnets, security groups, AMIs, instance profile and conditions; a class
// that does not resolve is not Ready and gets an event.
type NodeClassStatus struct {
	Client   client.Client
	Launcher launcherv1.LauncherServiceClient
	Recorder provisioning.Recorder
	// Refresh is how often a class is resolved again.
	Refresh time.Duration
	Log     *slog.Logger
}

// SetupWithManager registers the controller.
func (s *NodeClassStatus) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("ec2nodeclass.status").For(&awsv1.EC2NodeClass{}).Complete(s)
}

// Reconcile resolves one class.
func (s *NodeClassStatus) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	nc := &awsv1.EC2NodeClass{}
	if err := s.Client.Get(ctx, req.NamespacedName, nc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if nc.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	patch := client.MergeFrom(nc.DeepCopy())
	was := nodeclass.IsReady(nc)
	resp, err := s.Launcher.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: nc.Name})
	if g := resp.GetNodeClassGeneration(); err == nil && g > 0 && g < nc.Generation {
		// The launcher's copy of the class lags this one: its answer is
		// about the older spec, so it is not written; ask again shortly.
		s.Log.Debug("launcher resolved an older ec2nodeclass generation", "class", nc.Name,
			"resolved", resp.GetNodeClassGeneration(), "generation", nc.Generation)
		return reconcile.Result{RequeueAfter: staleResolutionRetry}, nil
	}
	unhonored := launchclass.UnhonoredFields(nc)
	honored := metav1.Condition{Type: karpv1.ConditionFieldsHonored, Status: metav1.ConditionTrue, Reason: karpv1.ConditionFieldsHonored, ObservedGeneration: nc.Generation}
	if len(unhonored) > 0 {
		honored.Status, honored.Reason, honored.Message = metav1.ConditionFalse, "FieldsNotHonored", truncate(strings.Join(unhonored, "; "))
	}
	meta.SetStatusCondition(&nc.Status.Conditions, honored)
	ready := false
	msg := ""
	if err != nil {
		msg = truncate(err.Error())
		nodeclass.SetReady(nc, false, msg)
	} else {
		ready = nodeclass.ApplyResolution(nc, resp)
		if c := meta.FindStatusCondition(nc.Status.Conditions, karpv1.ConditionReady); c != nil {
			msg = c.Message
		}
	}
	if perr := s.Client.Status().Patch(ctx, nc, patch); perr != nil {
		return reconcile.Result{}, fmt.Errorf("status of ec2nodeclass %s: %w", nc.Name, perr)
	}
	if !ready && (was || err != nil) {
		s.Recorder.Eventf(nc, nil, corev1.EventTypeWarning, "NodeClassNotReady", "Resolve", "%s", msg)
	}
	if !ready {
		s.Log.Warn("ec2nodeclass not ready", "class", nc.Name, "message", msg)
		return reconcile.Result{RequeueAfter: time.Minute}, nil
	}
	return reconcile.Result{RequeueAfter: s.Refresh}, nil
}
