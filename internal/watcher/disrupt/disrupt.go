// Package disrupt runs the disruption controller (internal/watcher/
// disruption) on a ticker, on the leader, implementing its Cluster from the
// cache and its Actuator with NodeClaims: replacements are created and
// awaited until Initialized, candidates are deleted (termination drains
// them).
package disrupt

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1 "k8s.io/api/policy/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Runner runs disruption passes every Interval.
type Runner struct {
	Controller *disruption.Controller
	Interval   time.Duration
	Journal    *journal.Journal
	Log        *slog.Logger
}

// Start runs passes until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			rep, err := r.Controller.Run(ctx)
			if err != nil && ctx.Err() == nil {
				r.Log.Error("disruption pass", "err", err)
			}
			for _, d := range rep.Decisions {
				r.Journal.Add(d.Reason, "nodeclaim/"+d.NodeClaim, d.Action+": "+d.Message)
			}
		}
	}
}

// Cluster reads candidates and the rest from the cache.
type Cluster struct {
	Reader client.Reader
	Types  state.InstanceTypeSource
	// Nominated, when set, names the nodes and NodeClaims pending pods were
	// just nominated to; they are no candidates until the pods bind.
	Nominated func(now time.Time) map[string]bool
}

// Candidates returns every launched NodeClaim with its node, pool, class,
// pods and price. A candidate is priced from its EC2NodeClass's instance
// types; one whose class's types could not be listed, or whose instance
// type, zone and capacity type no offering prices, is Unpriced, with why.
func (c *Cluster) Candidates(ctx context.Context) ([]disruption.Candidate, error) {
	snap, err := state.Load(ctx, c.Reader)
	if err != nil {
		return nil, err
	}
	byClass, failed, err := c.listTypes(ctx, snap)
	if err != nil {
		return nil, err
	}
	merged := mergeTypes(byClass)
	nominated := map[string]bool{}
	if c.Nominated != nil {
		nominated = c.Nominated(time.Now())
	}
	var out []disruption.Candidate
	for _, nc := range snap.NodeClaims {
		if !meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionLaunched) || nominated[nc.Name] ||
			(nc.Status.NodeName != "" && nominated[nc.Status.NodeName]) {
			continue
		}
		cand := disruption.Candidate{NodeClaim: nc, Node: snap.NodeFor(nc), NodePool: snap.NodePool(nc.Labels[karpv1.NodePoolLabelKey])}
		if cand.NodePool != nil {
			cand.NodeClass = snap.NodeClassOf(cand.NodePool)
		}
		if cand.Node != nil {
			cand.Pods = snap.PodsOn(cand.Node.Name)
		}
		price(&cand, byClass, failed, merged)
		out = append(out, cand)
	}
	return out, nil
}

// price sets the candidate's price from its class's instance types (all
// classes' when its class is unknown), or says why it has none.
func price(cand *disruption.Candidate, byClass map[string][]*typesv1.InstanceType, failed map[string]error, merged map[string]*typesv1.InstanceType) {
	types := merged
	if cl := cand.NodeClass; cl != nil {
		if err := failed[cl.Name]; err != nil {
			cand.UnpricedReason = disruption.BlockedTypesUnlisted
			cand.Unpriced = fmt.Sprintf("the instance types of EC2NodeClass %s could not be listed, so the node's price is unknown: %v", cl.Name, err)
			return
		}
		types = index(byClass[cl.Name])
	}
	l := cand.NodeClaim.Labels
	it, zone, ct := l[corev1.LabelInstanceTypeStable], l[corev1.LabelTopologyZone], l[karpv1.CapacityTypeLabelKey]
	cand.PricePerHour = state.Price(types, it, zone, ct)
	if cand.PricePerHour <= 0 {
		cand.PricePerHour = 0
		cand.UnpricedReason = disruption.BlockedUnpriced
		cand.Unpriced = fmt.Sprintf("no offering prices instance type %q in zone %q, capacity type %q, so the node's price is unknown", it, zone, ct)
	}
}

// listTypes lists every class's instance types; failed holds the classes
// whose list failed, with the error. Only the end of ctx is an error.
func (c *Cluster) listTypes(ctx context.Context, snap *state.Snapshot) (map[string][]*typesv1.InstanceType, map[string]error, error) {
	byClass, failed := map[string][]*typesv1.InstanceType{}, map[string]error{}
	for _, nc := range snap.NodeClasses {
		list, err := c.Types.InstanceTypes(ctx, nc)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, err
			}
			failed[nc.Name] = err
			continue
		}
		byClass[nc.Name] = list
	}
	return byClass, failed, nil
}

// index indexes types by name.
func index(types []*typesv1.InstanceType) map[string]*typesv1.InstanceType {
	out := make(map[string]*typesv1.InstanceType, len(types))
	for _, t := range types {
		out[t.GetName()] = t
	}
	return out
}

// mergeTypes indexes every class's types by name, the first class (by
// name) winning.
func mergeTypes(byClass map[string][]*typesv1.InstanceType) map[string]*typesv1.InstanceType {
	out := map[string]*typesv1.InstanceType{}
	for _, class := range slices.Sorted(maps.Keys(byClass)) {
		for _, t := range byClass[class] {
			if _, ok := out[t.GetName()]; !ok {
				out[t.GetName()] = t
			}
		}
	}
	return out
}

// PDBs lists the PodDisruptionBudgets.
func (c *Cluster) PDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error) {
	var l policyv1.PodDisruptionBudgetList
	if err := c.Reader.List(ctx, &l); err != nil {
		return nil, fmt.Errorf("list pdbs: %w", err)
	}
	out := make([]*policyv1.PodDisruptionBudget, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out, nil
}

// InstanceTypes lists the instance types of every EC2NodeClass that could
// be listed.
func (c *Cluster) InstanceTypes(ctx context.Context) ([]*typesv1.InstanceType, error) {
	snap, err := state.Load(ctx, c.Reader)
	if err != nil {
		return nil, err
	}
	byClass, _, err := c.listTypes(ctx, snap)
	if err != nil {
		return nil, err
	}
	idx := mergeTypes(byClass)
	out := make([]*typesv1.InstanceType, 0, len(idx))
	for _, name := range slices.Sorted(maps.Keys(idx)) {
		out = append(out, idx[name])
	}
	return out, nil
}

// DaemonSets converts the DaemonSets; those that do not convert are
// returned apart, with the error.
func (c *Cluster) DaemonSets(ctx context.Context) ([]*typesv1.DaemonSet, []disruption.UnconvertedDaemonSet, error) {
	snap, err := state.Load(ctx, c.Reader)
	if err != nil {
		return nil, nil, err
	}
	conv := kubeyaml.NewConverter(snap.PVCs, snap.PVs, snap.StorageClasses)
	var out []*typesv1.DaemonSet
	var failed []disruption.UnconvertedDaemonSet
	for _, d := range snap.DaemonSets {
		td, err := conv.DaemonSet(d)
		if err != nil {
			failed = append(failed, disruption.UnconvertedDaemonSet{Name: d.Namespace + "/" + d.Name, Err: err})
			continue
		}
		out = append(out, td)
	}
	return out, failed, nil
}

// Actuator carries decisions out with NodeClaims.
type Actuator struct {
	Client client.Client
	// Clientset taints and untaints nodes.
	Clientset kubernetes.Interface
	Reader    client.Reader
	Recorder  provisioning.Recorder
	Metrics   *metrics.Metrics
	// Poll is how often replacements are checked for Initialized.
	Poll time.Duration
}

// Replace creates the replacements and waits until all are Initialized;
// on ctx's end it deletes the ones it created and returns the error.
func (a *Actuator) Replace(ctx context.Context, claims []*typesv1.NodeClaim, reason string) ([]string, error) {
	names, err := CreateReplacements(ctx, a.Client, claims, reason, a.Metrics)
	if err != nil {
		return names, err
	}
	if err := WaitInitialized(ctx, a.Reader, names, a.Poll); err != nil {
		for _, n := range names {
			_ = a.Client.Delete(context.WithoutCancel(ctx), &karpv1.NodeClaim{ObjectMeta: objectMeta(n)})
		}
		return nil, err
	}
	return names, nil
}

// Taint puts karpenter.sh/disrupted:NoSchedule on the node.
func (a *Actuator) Taint(ctx context.Context, node string) error {
	return drain.TaintDisrupted(ctx, a.Clientset, node)
}

// Untaint takes karpenter.sh/disrupted:NoSchedule off the node.
func (a *Actuator) Untaint(ctx context.Context, node string) error {
	return drain.UntaintDisrupted(ctx, a.Clientset, node)
}

// Delete deletes the NodeClaim; termination drains it.
func (a *Actuator) Delete(ctx context.Context, name, reason string) error {
	a.Metrics.Disrupted(reason)
	if err := a.Client.Delete(ctx, &karpv1.NodeClaim{ObjectMeta: objectMeta(name)}); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// Event records an event on obj.
func (a *Actuator) Event(obj runtime.Object, eventType, reason, message string) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	a.Recorder.Eventf(o, nil, eventType, reason, "Disrupt", "%s", message)
}
