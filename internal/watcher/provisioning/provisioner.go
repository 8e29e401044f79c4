package provisioning

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Recorder records Kubernetes events (k8s.io/client-go/tools/events).
type Recorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Solver is the part of the solver's client provisioning uses.
type Solver interface {
	Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error)
}

// TypeSource lists instance types per class and forgets them after a
// capacity error.
type TypeSource interface {
	state.InstanceTypeSource
	Invalidate()
}

// LastSolve summarises the latest solve, for GetState.
type LastSolve struct {
	Time          time.Time
	Pods          int
	NodeClaims    int
	CostPerHour   float64
	LowerBound    float64
	Unschedulable int
	SolveSeconds  float64
	Attempts      int
	// Reasons maps each pod the plan could not place to why.
	Reasons map[string]string
	// Nominations maps each placed pod to its NodeClaim or node.
	Nominations map[string]string
}

// Provisioner solves batches of pending pods and creates NodeClaims.
type Provisioner struct {
	Client   client.Client
	Reader   client.Reader
	Solver   Solver
	Types    TypeSource
	Recorder Recorder
	Batcher  *Batcher
	// Informers are the manager's cache, watched for triggers.
	Informers cache.Informers
	Metrics   *metrics.Metrics
	Journal   *journal.Journal
	Log       *slog.Logger

	mu       sync.Mutex
	last     *LastSolve
	reported map[types.UID]string // last reason reported per pending pod
	targets  map[string]time.Time // node or NodeClaim name -> last nomination
}

// NominationWindow is how long a node or NodeClaim that pending pods were
// nominated to stays off-limits to disruption, so the pods can bind.
const NominationWindow = 20 * time.Second

// Nominated returns the names of nodes and NodeClaims that pods were
// nominated to within NominationWindow before now.
func (p *Provisioner) Nominated(now time.Time) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for name, at := range p.targets {
		if now.Sub(at) < NominationWindow {
			out[name] = true
		} else {
			delete(p.targets, name)
		}
	}
	return out
}

// Start runs batches until ctx ends; it implements manager.Runnable and
// runs only on the leader. It triggers on pod, NodePool, EC2NodeClass and
// NodeClaim changes from informers.
func (p *Provisioner) Start(ctx context.Context) error {
	if err := p.watch(ctx, p.Informers); err != nil {
		return err
	}
	p.Batcher.Trigger() // pods pending before the start
	for p.Batcher.Wait(ctx) {
		if _, err := p.Provision(ctx); err != nil && ctx.Err() == nil {
			p.Log.Error("provisioning batch failed", "err", err)
			time.AfterFunc(time.Second, p.Batcher.Trigger)
		}
	}
	return nil
}

func (p *Provisioner) watch(ctx context.Context, informers cache.Informers) error {
	onPod := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.triggerIfPending(obj) },
		UpdateFunc: func(_, obj any) { p.triggerIfPending(obj) },
	}
	onAny := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.Batcher.Trigger() },
		UpdateFunc: func(oldObj, newObj any) { p.triggerOnSpec(oldObj, newObj) },
		DeleteFunc: func(any) { p.Batcher.Trigger() },
	}
	for obj, h := range map[client.Object]toolscache.ResourceEventHandler{
		&corev1.Pod{}: onPod, &karpv1.NodePool{}: onAny, &awsv1.EC2NodeClass{}: onAny, &karpv1.NodeClaim{}: deleteOnly(p.Batcher),
	} {
		inf, err := informers.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("event handler for %T: %w", obj, err)
		}
	}
	return nil
}

func deleteOnly(b *Batcher) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(any) { b.Trigger() }}
}

func (p *Provisioner) triggerIfPending(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && state.Provisionable(pod) {
		p.Batcher.Trigger()
	}
}

func (p *Provisioner) triggerOnSpec(oldObj, newObj any) {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 || o.GetGeneration() != n.GetGeneration() {
		p.Batcher.Trigger()
		return
	}
	if nc, ok := newObj.(*awsv1.EC2NodeClass); ok && !equalReady(oldObj.(*awsv1.EC2NodeClass), nc) {
		p.Batcher.Trigger()
	}
}

func equalReady(a, b *awsv1.EC2NodeClass) bool {
	return len(a.Status.Subnets) == len(b.Status.Subnets) && len(a.Status.AMIs) == len(b.Status.AMIs)
}

// Last returns the latest solve, or nil before the first.
func (p *Provisioner) Last() *LastSolve {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Provision runs one batch: it solves the pending pods and creates the
// plan's NodeClaims. It returns the names of the NodeClaims created.
func (p *Provisioner) Provision(ctx context.Context) ([]string, error) {
	start := time.Now()
	snap, err := state.Load(ctx, p.Reader)
	if err != nil {
		return nil, err
	}
	pending := snap.Pending()
	p.Metrics.Batch(len(pending))
	p.prune(pending)
	if len(pending) == 0 {
		return nil, nil
	}
	req, err := snap.Request(ctx, p.Types, pending, state.Options{})
	if err != nil {
		return nil, err
	}
	p.reportSkipped(req)
	if len(req.Solve.Pods) == 0 {
		return nil, nil
	}
	solveStart := time.Now()
	resp, err := p.Solver.Solve(ctx, req.Solve)
	p.Metrics.Solve("Solve", err, time.Since(solveStart).Seconds())
	if err != nil {
		return nil, fmt.Errorf("solve %d pods: %w", len(req.Solve.Pods), err)
	}
	created, err := p.apply(ctx, snap, req, resp)
	p.Log.Info("provisioning batch", "pending", len(pending), "nodeclaims", len(created),
		"unschedulable", len(resp.GetPlan().GetUnschedulable()), "cost_per_hour", resp.GetPlan().GetCostPerHour(),
		"solve_seconds", resp.GetSolveSeconds(), "batch_seconds", time.Since(start).Seconds())
	return created, err
}

// apply creates the planned NodeClaims and records nominations and
// unschedulable pods.
func (p *Provisioner) apply(ctx context.Context, snap *state.Snapshot, req *state.Request, resp *solverv1.SolveResponse) ([]string, error) {
	plan := resp.GetPlan()
	last := &LastSolve{
		Time: time.Now(), Pods: len(req.Solve.Pods), NodeClaims: len(plan.GetNodeClaims()), CostPerHour: plan.GetCostPerHour(),
		LowerBound: resp.GetLowerBoundPerHour(), Unschedulable: len(plan.GetUnschedulable()), SolveSeconds: resp.GetSolveSeconds(), Attempts: 1,
		Reasons: map[string]string{}, Nominations: map[string]string{},
	}
	var created []string
	var errs []error
	for _, planned := range plan.GetNodeClaims() {
		np := snap.NodePool(planned.GetNodePool())
		if np == nil {
			errs = append(errs, fmt.Errorf("plan names unknown nodepool %q", planned.GetNodePool()))
			continue
		}
		claim, err := NodeClaim(planned, np, snap.NodeClassOf(np))
		if err == nil {
			err = Create(ctx, p.Client, claim)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		created = append(created, claim.Name)
		p.Metrics.Created(np.Name, "provisioning")
		p.Journal.Add("Provision", "nodeclaim/"+claim.Name, fmt.Sprintf("%d pods, %s $%.4f/h, options %d",
			len(planned.GetPods()), planned.GetInstanceType(), planned.GetPricePerHour(), len(planned.GetInstanceTypeOptions())))
		for _, key := range planned.GetPods() {
			p.nominate(req, key, "nodeclaim/"+claim.Name, last)
		}
	}
	for target, names := range plan.GetExistingNodeBindings() {
		kind := "node/"
		if snap.Node(target) == nil {
			kind = "nodeclaim/"
		}
		for _, key := range names.GetPods() {
			p.nominate(req, key, kind+target, last)
		}
	}
	for _, u := range plan.GetUnschedulable() {
		last.Reasons[u.GetPod()] = u.GetReason()
		if pod := req.PodsByKey[u.GetPod()]; pod != nil {
			p.reportOnce(pod, "no NodePool can take the pod: "+u.GetReason())
		}
	}
	p.mu.Lock()
	p.last = last
	p.mu.Unlock()
	if len(errs) > 0 {
		return created, fmt.Errorf("%d of %d nodeclaims not created: %w", len(errs), len(plan.GetNodeClaims()), errs[0])
	}
	return created, nil
}

// nominate records a Nominated event on the pod, once per target.
func (p *Provisioner) nominate(req *state.Request, key, target string, last *LastSolve) {
	last.Nominations[key] = target
	p.mu.Lock()
	if p.targets == nil {
		p.targets = map[string]time.Time{}
	}
	p.targets[target[strings.Index(target, "/")+1:]] = time.Now()
	p.mu.Unlock()
	pod := req.PodsByKey[key]
	if pod == nil {
		return
	}
	p.mu.Lock()
	if p.reported == nil {
		p.reported = map[types.UID]string{}
	}
	seen := p.reported[pod.UID] == "nominated:"+target
	p.reported[pod.UID] = "nominated:" + target
	p.mu.Unlock()
	if !seen {
		p.Recorder.Eventf(pod, nil, corev1.EventTypeNormal, "Nominated", "Provision", "Pod should schedule on: %s", target)
	}
}

// reportOnce records a FailedScheduling warning on the pod unless the same
// message was already recorded for it.
func (p *Provisioner) reportOnce(pod *corev1.Pod, message string) {
	p.mu.Lock()
	if p.reported == nil {
		p.reported = map[types.UID]string{}
	}
	seen := p.reported[pod.UID] == message
	p.reported[pod.UID] = message
	p.mu.Unlock()
	if !seen {
		p.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Provision", "%s", message)
		p.Journal.Add("Blocked", "pod/"+state.Key(pod), message)
	}
}

func (p *Provisioner) reportSkipped(req *state.Request) {
	for _, s := range req.Skipped {
		p.Log.Warn("left out of the solve", "kind", s.Kind, "name", s.Name, "reason", s.Reason)
	}
	for _, s := range req.Skipped {
		if s.Pod != nil && s.Pod.Spec.NodeName == "" {
			p.reportOnce(s.Pod, "the pod cannot be planned: "+s.Reason)
		}
	}
}

// prune forgets what was reported for pods no longer pending.
func (p *Provisioner) prune(pending []*corev1.Pod) {
	keep := make(map[types.UID]bool, len(pending))
	for _, pod := range pending {
		keep[pod.UID] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for uid := range p.reported {
		if !keep[uid] {
			delete(p.reported, uid)
		}
	}
}
