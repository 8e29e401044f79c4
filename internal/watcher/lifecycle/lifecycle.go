// Package lifecycle runs NodeClaims from creation to Initialized: it
// launches their instance through the launcher, registers the node that
// joins with the instance's provider id (labels and taints synced, the
// unregistered taint removed) and marks the NodeClaim Initialized once the
// node is ready. It also garbage-collects instances without a NodeClaim and
// keeps NodePool and EC2NodeClass status current.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Field indexes the controllers rely on (registered by the watcher).
const (
	IndexNodeProviderID  = "spec.providerID"
	IndexClaimProviderID = "status.providerID"
	IndexPodNodeName     = "spec.nodeName"
)

// Event reasons.
const (
	EventLaunchFailed    = "LaunchFailed"
	EventInsufficientCap = "InsufficientCapacityError"
	// EventQuotaExceeded is an insufficient-capacity error an account
	// quota caused (the launcher's ErrorInfo names it): retrying will not
	// help until someone raises the quota.
	EventQuotaExceeded       = "QuotaExceeded"
	EventLaunchTimeout       = "LaunchTimeout"
	EventRegistrationTimeout = "RegistrationTimeout"
	EventRegistered          = "Registered"
	EventInitialized         = "Initialized"
)

// Controller reconciles NodeClaims that are not being deleted.
type Controller struct {
	Client              client.Client
	Launcher            launcherv1.LauncherServiceClient
	Types               *nodeclass.Types
	Recorder            provisioning.Recorder
	LaunchTimeout       time.Duration
	RegistrationTimeout time.Duration
	// OnCapacityError runs after a NodeClaim was deleted for lack of
	// capacity, to re-solve its pods without the offerings.
	OnCapacityError func()
	Metrics         *metrics.Metrics
	Journal         *journal.Journal
	Log             *slog.Logger
	Now             func() time.Time
}

// SetupWithManager registers the controller: NodeClaims, and nodes mapped
// to their NodeClaim by provider id.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("nodeclaim.lifecycle").
		For(&karpv1.NodeClaim{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(c.claimsOfNode)).
		Complete(c)
}

func (c *Controller) claimsOfNode(ctx context.Context, obj client.Object) []reconcile.Request {
	n, ok := obj.(*corev1.Node)
	if !ok || n.Spec.ProviderID == "" {
		return nil
	}
	var claims karpv1.NodeClaimList
	if err := c.Client.List(ctx, &claims, client.MatchingFields{IndexClaimProviderID: n.Spec.ProviderID}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(claims.Items))
	for _, cl := range claims.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&cl)})
	}
	return out
}

func (c *Controller) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Reconcile moves one NodeClaim along Launched, Registered, Initialized.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	claim := &karpv1.NodeClaim{}
	if err := c.Client.Get(ctx, req.NamespacedName, claim); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if claim.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	if !controllerutil.ContainsFinalizer(claim, karpv1.TerminationFinalizer) {
		patch := client.MergeFrom(claim.DeepCopy())
		controllerutil.AddFinalizer(claim, karpv1.TerminationFinalizer)
		if err := c.Client.Patch(ctx, claim, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}
	if !meta.IsStatusConditionTrue(claim.Status.Conditions, karpv1.ConditionLaunched) {
		return c.launch(ctx, claim)
	}
	if err := c.restamp(ctx, claim); err != nil {
		return reconcile.Result{}, err
	}
	node, err := c.nodeOf(ctx, claim)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !meta.IsStatusConditionTrue(claim.Status.Conditions, karpv1.ConditionRegistered) {
		if node == nil {
			return c.awaitRegistration(ctx, claim)
		}
		if err := c.register(ctx, claim, node); err != nil {
			return reconcile.Result{}, err
		}
	}
	if node == nil || meta.IsStatusConditionTrue(claim.Status.Conditions, karpv1.ConditionInitialized) {
		return reconcile.Result{}, nil
	}
	return c.initialize(ctx, claim, node)
}

// nodeOf returns the node registered with the claim's provider id, or nil.
func (c *Controller) nodeOf(ctx context.Context, claim *karpv1.NodeClaim) (*corev1.Node, error) {
	return NodeOf(ctx, c.Client, claim)
}

// NodeOf returns the node registered with a NodeClaim's provider id, or nil.
func NodeOf(ctx context.Context, r client.Reader, claim *karpv1.NodeClaim) (*corev1.Node, error) {
	if claim.Status.ProviderID == "" {
		return nil, nil
	}
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.MatchingFields{IndexNodeProviderID: claim.Status.ProviderID}); err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", claim.Name, err)
	}
	if len(nodes.Items) == 0 {
		return nil, nil
	}
	return &nodes.Items[0], nil
}

// launch launches the claim's instance and records it in the claim.
func (c *Controller) launch(ctx context.Context, claim *karpv1.NodeClaim) (reconcile.Result, error) {
	if age := c.now().Sub(claim.CreationTimestamp.Time); age > c.LaunchTimeout {
		return reconcile.Result{}, c.deleteFor(ctx, claim, EventLaunchTimeout, fmt.Sprintf("not launched within %s", c.LaunchTimeout))
	}
	class, err := c.classOf(ctx, claim)
	if err != nil {
		return c.launchFailed(ctx, claim, "NodeClassNotReady", err)
	}
	req, err := c.launchRequest(claim, class)
	if err != nil {
		return c.launchFailed(ctx, claim, "InvalidNodeClaim", err)
	}
	resp, err := c.Launcher.Launch(ctx, req)
	// Only a launch that found no capacity gives the claim up; a launcher
	// too busy to take the call (also ResourceExhausted, reason
	// OVERLOADED) is retried like any other failure.
	if status.Code(err) == codes.ResourceExhausted && server.ErrorReason(err) == apierr.ReasonInsufficientCapacity {
		c.Metrics.Launch("insufficient_capacity")
		c.markUnavailable(claim, err)
		reason, msg := EventInsufficientCap, status.Convert(err).Message()
		var perr error
		if quota := server.ErrorMetadata(err)[apierr.MetadataQuota]; quota != "" {
			reason, msg = EventQuotaExceeded, fmt.Sprintf("EC2 account quota exceeded (%s); raise it in Service Quotas: %s", quota, msg)
			perr = c.setLaunched(ctx, claim, EventQuotaExceeded, msg)
		}
		derr := c.deleteFor(ctx, claim, reason, msg)
		if c.OnCapacityError != nil {
			c.OnCapacityError()
		}
		return reconcile.Result{}, errors.Join(perr, derr)
	}
	if err != nil {
		c.Metrics.Launch("error")
		return c.launchFailed(ctx, claim, "LaunchFailed", err)
	}
	c.Metrics.Launch("launched")
	err = c.recordLaunch(ctx, claim, class, resp.GetInstance())
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, c.terminateOrphan(ctx, claim, resp.GetInstance())
	}
	return reconcile.Result{}, err
}

// markUnavailable holds the offerings the launcher found without capacity
// (its ErrorInfo names them) unavailable in the cached instance types, so
// the next plan avoids just those. An error that does not name them
// readably forgets every cached list instead, the launcher's own lists
// leaving them out.
func (c *Controller) markUnavailable(claim *karpv1.NodeClaim, err error) {
	if c.Types == nil {
		return
	}
	offerings, perr := nodeclass.ParseOfferings(server.ErrorMetadata(err)[apierr.MetadataOfferings])
	if perr != nil {
		c.Log.Warn("insufficient capacity without readable offerings: forgetting every cached instance type", "nodeclaim", claim.Name, "err", perr)
		c.Types.Invalidate()
		return
	}
	c.Types.MarkUnavailable(offerings)
}

// terminateOrphan terminates an instance launched for a NodeClaim that was
// deleted (and let go by termination, which saw no instance yet) while the
// launch ran; otherwise it would run, unowned, until garbage collection.
func (c *Controller) terminateOrphan(ctx context.Context, claim *karpv1.NodeClaim, inst *launcherv1.Instance) error {
	c.Log.Info("nodeclaim deleted during its launch: terminating the instance", "nodeclaim", claim.Name, "instance", inst.GetId())
	if _, err := c.Launcher.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: inst.GetId(), NodeClaim: claim.Name}); err != nil {
		return fmt.Errorf("terminate %s of deleted nodeclaim %s: %w", inst.GetId(), claim.Name, err)
	}
	c.Journal.Add("Terminate", "instance/"+inst.GetId(), "its NodeClaim "+claim.Name+" was deleted during the launch")
	return nil
}

func (c *Controller) classOf(ctx context.Context, claim *karpv1.NodeClaim) (*awsv1.EC2NodeClass, error) {
	ref := claim.Spec.NodeClassRef
	if ref == nil {
		return nil, errors.New("the NodeClaim has no nodeClassRef")
	}
	class := &awsv1.EC2NodeClass{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, class); err != nil {
		return nil, fmt.Errorf("EC2NodeClass %s: %w", ref.Name, err)
	}
	return class, nil
}

// launchRequest turns the claim into the launcher's request; the launcher
// reads the EC2NodeClass named from the API server itself. The node
// registers with the claim's taints, startup taints and the unregistered
// taint, as a kubelet started from the launch's user data would.
func (c *Controller) launchRequest(claim *karpv1.NodeClaim, class *awsv1.EC2NodeClass) (*launcherv1.LaunchRequest, error) {
	req := &launcherv1.LaunchRequest{
		NodeClaim: claim.Name, NodePool: claim.Labels[karpv1.NodePoolLabelKey],
		NodeClassName: class.Name, Labels: state.ClaimLabels(claim), NodeClaimUid: string(claim.UID),
	}
	for _, r := range claim.Spec.Requirements {
		tr := &typesv1.Requirement{Key: r.Key, Operator: string(r.Operator), Values: r.Values}
		if r.MinValues != nil {
			tr.MinValues = int32(*r.MinValues) //nolint:gosec // validated 1..50 by the CRD
		}
		req.Requirements = append(req.Requirements, tr)
		if r.Key == corev1.LabelInstanceTypeStable && r.Operator == corev1.NodeSelectorOpIn {
			req.InstanceTypeOptions = r.Values
		}
	}
	taints := append(append([]corev1.Taint{}, claim.Spec.Taints...), claim.Spec.StartupTaints...)
	taints = append(taints, karpv1.UnregisteredNoExecuteTaint())
	tt, err := kubeyaml.Taints(taints)
	if err != nil {
		return nil, err
	}
	req.Taints = tt
	return req, nil
}

func (c *Controller) launchFailed(ctx context.Context, claim *karpv1.NodeClaim, reason string, cause error) (reconcile.Result, error) {
	c.Recorder.Eventf(claim, nil, corev1.EventTypeWarning, EventLaunchFailed, "Launch", "%s", cause.Error())
	if err := c.setLaunched(ctx, claim, reason, cause.Error()); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, fmt.Errorf("launch %s: %w", claim.Name, cause)
}

// setLaunched writes the Launched=False condition with reason and message;
// a claim already gone is no error.
func (c *Controller) setLaunched(ctx context.Context, claim *karpv1.NodeClaim, reason, message string) error {
	patch := client.MergeFrom(claim.DeepCopy())
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: karpv1.ConditionLaunched, Status: metav1.ConditionFalse, Reason: reason, Message: truncate(message),
		ObservedGeneration: claim.Generation,
	})
	if err := c.Client.Status().Patch(ctx, claim, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("status of %s: %w", claim.Name, err)
	}
	return nil
}

// recordLaunch writes the instance into the claim: the instance type, zone
// and capacity type labels (and the type's well-known labels), then the
// provider id, capacity and the Launched condition.
func (c *Controller) recordLaunch(ctx context.Context, claim *karpv1.NodeClaim, class *awsv1.EC2NodeClass, inst *launcherv1.Instance) error {
	it := c.instanceType(ctx, class, inst.GetInstanceType())
	patch := client.MergeFrom(claim.DeepCopy())
	if claim.Labels == nil {
		claim.Labels = map[string]string{}
	}
	if it != nil {
		for k, v := range it.GetLabels() {
			claim.Labels[k] = v
		}
	}
	claim.Labels[corev1.LabelInstanceTypeStable] = inst.GetInstanceType()
	claim.Labels[corev1.LabelTopologyZone] = inst.GetZone()
	claim.Labels[karpv1.CapacityTypeLabelKey] = inst.GetCapacityType()
	if err := c.Client.Patch(ctx, claim, patch); err != nil {
		return fmt.Errorf("labels of %s: %w", claim.Name, err)
	}
	spatch := client.MergeFrom(claim.DeepCopy())
	claim.Status.ProviderID = inst.GetProviderId()
	if it != nil {
		claim.Status.Capacity = parse(it.GetCapacity())
		claim.Status.Allocatable = parse(it.GetAllocatable())
	}
	if len(class.Status.AMIs) > 0 {
		claim.Status.ImageID = class.Status.AMIs[0].ID
	}
	meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{
		Type: karpv1.ConditionLaunched, Status: metav1.ConditionTrue, Reason: "Launched", ObservedGeneration: claim.Generation,
	})
	setUnknown(claim, karpv1.ConditionRegistered, "AwaitingRegistration")
	setUnknown(claim, karpv1.ConditionInitialized, "AwaitingRegistration")
	if err := c.Client.Status().Patch(ctx, claim, spatch); err != nil {
		return fmt.Errorf("status of %s: %w", claim.Name, err)
	}
	c.Log.Info("launched", "nodeclaim", claim.Name, "instance", inst.GetId(), "type", inst.GetInstanceType(), "zone", inst.GetZone(), "capacity_type", inst.GetCapacityType())
	return nil
}

func setUnknown(claim *karpv1.NodeClaim, typ, reason string) {
	if meta.FindStatusCondition(claim.Status.Conditions, typ) == nil {
		meta.SetStatusCondition(&claim.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionUnknown, Reason: reason, ObservedGeneration: claim.Generation})
	}
}

// instanceType finds the launched type among the class's types, or nil.
func (c *Controller) instanceType(ctx context.Context, class *awsv1.EC2NodeClass, name string) *typesv1.InstanceType {
	if c.Types == nil {
		return nil
	}
	types, err := c.Types.InstanceTypes(ctx, class)
	if err != nil {
		c.Log.Warn("instance types for capacity", "class", class.Name, "err", err)
		return nil
	}
	for _, t := range types {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

// awaitRegistration deletes a claim whose node did not join in time, and
// otherwise checks again when the registration timeout would pass.
func (c *Controller) awaitRegistration(ctx context.Context, claim *karpv1.NodeClaim) (reconcile.Result, error) {
	launched := claim.CreationTimestamp.Time
	if cond := meta.FindStatusCondition(claim.Status.Conditions, karpv1.ConditionLaunched); cond != nil {
		launched = cond.LastTransitionTime.Time
	}
	left := launched.Add(c.RegistrationTimeout).Sub(c.now())
	if left <= 0 {
		return reconcile.Result{}, c.deleteFor(ctx, claim, EventRegistrationTimeout, fmt.Sprintf("no node registered within %s", c.RegistrationTimeout))
	}
	return reconcile.Result{RequeueAfter: left}, nil
}

// deleteFor deletes the claim with an event; termination takes over.
func (c *Controller) deleteFor(ctx context.Context, claim *karpv1.NodeClaim, reason, message string) error {
	c.Recorder.Eventf(claim, nil, corev1.EventTypeWarning, reason, "Delete", "%s", message)
	c.Journal.Add(reason, "nodeclaim/"+claim.Name, message)
	c.Metrics.Disrupted(reason)
	c.Log.Info("deleting nodeclaim", "nodeclaim", claim.Name, "reason", reason, "message", message)
	if err := c.Client.Delete(ctx, claim); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", claim.Name, err)
	}
	return nil
}

func truncate(s string) string {
	const limit = 1024
	if len(s) > limit {
		return s[:limit]
	}
	return s
}
