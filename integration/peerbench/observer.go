package peerbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// NodeClaimResource is karpenter.sh/v1 NodeClaims, which both sides own.
var NodeClaimResource = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}

// Well-known labels the observer prices a Node by.
const (
	labelInstanceType = corev1.LabelInstanceTypeStable
	labelZone         = corev1.LabelTopologyZone
	labelCapacityType = "karpenter.sh/capacity-type"
	disruptedTaint    = "karpenter.sh/disrupted"
)

type nodeRec struct {
	name, offering  string
	price           float64
	created, gone   time.Time
	priced          bool
	disrupted, dead bool // tainted karpenter.sh/disrupted, or being deleted
}

type podRec struct {
	created, scheduled time.Time
	node               string
	deleting           bool // its deletion was seen
}

// Sample is the cluster at one instant.
type Sample struct {
	At      time.Duration // since the observer started
	Nodes   int
	Pending int // pods without a PodScheduled=True condition
	Dollars float64
}

// Observer watches one API server — Nodes, Pods and karpenter.sh
// NodeClaims — and nothing else, so both autoscalers are measured by the
// same code. Start it before the workload and Stop it when done.
type Observer struct {
	cat   *Catalog
	start time.Time

	mu              sync.Mutex
	nodes           map[types.UID]*nodeRec
	pods            map[types.UID]*podRec
	claimsCreated   int
	claimsDeleted   int
	evictions       int
	unknownOffering map[string]bool
	samples         []Sample

	stop chan struct{}
	done sync.WaitGroup
}

// NewObserver makes an observer that prices nodes from cat.
func NewObserver(cat *Catalog) *Observer {
	return &Observer{cat: cat, nodes: map[types.UID]*nodeRec{}, pods: map[types.UID]*podRec{}, unknownOffering: map[string]bool{}, stop: make(chan struct{})}
}

// Start begins watching and sampling every interval; it returns once the
// informers' caches are in sync.
func (o *Observer) Start(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, interval time.Duration) error {
	o.start = time.Now()
	f := informers.NewSharedInformerFactory(kube, 0)
	nodes := f.Core().V1().Nodes().Informer()
	pods := f.Core().V1().Pods().Informer()
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	claims := df.ForResource(NodeClaimResource).Informer()
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{nodes, cache.ResourceEventHandlerFuncs{AddFunc: o.node, UpdateFunc: func(_, n any) { o.node(n) }, DeleteFunc: o.nodeGone}},
		{pods, cache.ResourceEventHandlerFuncs{AddFunc: o.pod, UpdateFunc: func(_, p any) { o.pod(p) }, DeleteFunc: func(any) {}}},
		{claims, cache.ResourceEventHandlerFuncs{AddFunc: func(any) { o.count(&o.claimsCreated) }, DeleteFunc: func(any) { o.count(&o.claimsDeleted) }}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return err
		}
	}
	f.Start(o.stop)
	df.Start(o.stop)
	for _, inf := range []cache.SharedIndexInformer{nodes, pods, claims} {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return fmt.Errorf("observer: caches not synced: %w", ctx.Err())
		}
	}
	o.done.Add(1)
	go func() {
		defer o.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-t.C:
				o.sample()
			}
		}
	}()
	return nil
}

// Stop ends watching. It is safe to call more than once.
func (o *Observer) Stop() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	o.done.Wait()
}

func (o *Observer) count(n *int) {
	o.mu.Lock()
	*n++
	o.mu.Unlock()
}

func (o *Observer) node(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.nodes[n.UID]
	if r == nil {
		r = &nodeRec{name: n.Name, created: n.CreationTimestamp.Time}
		o.nodes[n.UID] = r
	}
	if !r.priced {
		it, z, ct := n.Labels[labelInstanceType], n.Labels[labelZone], n.Labels[labelCapacityType]
		if it != "" && z != "" && ct != "" {
			r.offering = it + "/" + z + "/" + ct
			p, ok := o.cat.Price(it, z, ct)
			if ok {
				r.price, r.priced = p, true
			} else {
				o.unknownOffering[r.offering] = true
			}
		}
	}
	r.dead = n.DeletionTimestamp != nil
	r.disrupted = slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == disruptedTaint })
}

func (o *Observer) nodeGone(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	o.node(n)
	o.mu.Lock()
	o.nodes[n.UID].gone = time.Now()
	o.mu.Unlock()
}

func (o *Observer) pod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.pods[p.UID]
	if r == nil {
		r = &podRec{created: p.CreationTimestamp.Time}
		o.pods[p.UID] = r
	}
	if r.scheduled.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
				r.scheduled = c.LastTransitionTime.Time
			}
		}
	}
	if p.Spec.NodeName != "" {
		r.node = p.Spec.NodeName
	}
	// An eviction: the pod starts terminating while its node is being
	// disrupted (tainted karpenter.sh/disrupted, as both autoscalers do
	// before draining), deleted or gone. Scale-downs delete pods on healthy
	// nodes. Decided once, when the deletion is first seen.
	if p.DeletionTimestamp != nil && !r.deleting {
		r.deleting = true
		// Node names may be reused (ec2sim names by private IP): the
		// live Node of that name wins over a gone one.
		var on *nodeRec
		for _, n := range o.nodes {
			if r.node != "" && n.name == r.node && (on == nil || !on.gone.IsZero()) {
				on = n
			}
		}
		if on != nil && (on.disrupted || on.dead || !on.gone.IsZero()) {
			o.evictions++
		}
	}
}

func (o *Observer) sample() {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Sample{At: now.Sub(o.start)}
	for _, n := range o.nodes {
		if n.gone.IsZero() {
			s.Nodes++
			s.Dollars += n.price
		}
	}
	for _, p := range o.pods {
		if p.scheduled.IsZero() {
			s.Pending++
		}
	}
	o.samples = append(o.samples, s)
}

// Nodes is the number of Nodes that exist now.
func (o *Observer) Nodes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, r := range o.nodes {
		if r.gone.IsZero() {
			n++
		}
	}
	return n
}

// Result is what the observer measured.
type Result struct {
	Duration time.Duration
	// DollarHours is every node's offering price × the time it existed
	// (creation to the Node's deletion, or the end).
	DollarHours float64
	// NodesPeak and NodesEnd are the most Nodes at once and at the end;
	// NodesLaunched counts every Node seen.
	NodesPeak, NodesEnd, NodesLaunched int
	// CostEnd is the $/hour of the Nodes at the end.
	CostEnd float64
	// Pods counts pods seen; Unscheduled those never scheduled.
	Pods, Unscheduled int
	// PendingP50, P99 and Max are over the scheduled pods: creation to
	// PodScheduled=True (both of one-second resolution).
	PendingP50, PendingP99, PendingMax time.Duration
	Evictions                          int
	ClaimsCreated, ClaimsDeleted       int
	// UnknownOfferings lists Node offerings the catalog does not price (charged $0).
	UnknownOfferings []string
	Samples          []Sample
}

// Result summarises what was observed until now.
func (o *Observer) Result() Result {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	r := Result{Duration: now.Sub(o.start), Evictions: o.evictions, ClaimsCreated: o.claimsCreated, ClaimsDeleted: o.claimsDeleted}
	for _, n := range o.nodes {
		end := n.gone
		if end.IsZero() {
			end = now
			r.NodesEnd++
			r.CostEnd += n.price
		}
		r.NodesLaunched++
		r.DollarHours += n.price * end.Sub(n.created).Hours()
	}
	var waits []time.Duration
	for _, p := range o.pods {
		r.Pods++
		if p.scheduled.IsZero() {
			r.Unscheduled++
			continue
		}
		waits = append(waits, max(0, p.scheduled.Sub(p.created)))
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		r.PendingP50 = waits[len(waits)*50/100]
		r.PendingP99 = waits[min(len(waits)-1, len(waits)*99/100)]
		r.PendingMax = waits[len(waits)-1]
	}
	for _, s := range o.samples {
		r.NodesPeak = max(r.NodesPeak, s.Nodes)
	}
	for k := range o.unknownOffering {
		r.UnknownOfferings = append(r.UnknownOfferings, k)
	}
	slices.Sort(r.UnknownOfferings)
	r.Samples = slices.Clone(o.samples)
	return r
}

// ProcStats are a controller's CPU seconds (user + system) and peak
// resident memory, read from /proc while its processes still run.
type ProcStats struct {
	CPUSeconds float64
	// PeakRSSBytes sums VmHWM over the processes.
	PeakRSSBytes int64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// ReadProc sums CPU time and peak RSS of the processes pids.
func ReadProc(pids ...int) (ProcStats, error) {
	var s ProcStats
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, err
		}
		// Fields after the command name (which may hold spaces) in ")".
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
		}
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
		}
		s.CPUSeconds += float64(utime+stime) / clockTicks
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return s, err
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					return s, fmt.Errorf("/proc/%d/status VmHWM %q: %w", pid, v, err)
				}
				s.PeakRSSBytes += kb << 10
			}
		}
	}
	return s, nil
}
