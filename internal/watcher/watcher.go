// Package watcher assembles Flotilla's Kubernetes controller on a
// controller-runtime manager: provisioning (pending pods to NodeClaims),
// NodeClaim lifecycle (launch, registration, initialization, garbage
// collection, NodePool and EC2NodeClass status), termination (drain, then
// terminate), disruption (emptiness, consolidation, drift, expiration) and
// the WatcherService gRPC API.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disrupt"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/lifecycle"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/service"
	"github.com/flotilla-io/flotilla/internal/watcher/termination"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Scheme returns a scheme with the built-in kinds (core, policy, storage,
// apps, coordination, ...) and karpenter.sh/v1 and karpenter.k8s.aws/v1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(karpv1.AddToScheme(s))
	utilruntime.Must(awsv1.AddToScheme(s))
	return s
}

// Config configures the watcher.
type Config struct {
	ClusterName         string
	Solver              solverv1.SolverServiceClient
	Launcher            launcherv1.LauncherServiceClient
	BatchIdle           time.Duration
	BatchMax            time.Duration
	LaunchTimeout       time.Duration
	RegistrationTimeout time.Duration
	DisruptionInterval  time.Duration
	// GCInterval and GCGrace drive garbage collection of leaked instances;
	// zero means 1m and 2m.
	GCInterval, GCGrace time.Duration
	// DisruptMinGrace is the least time a Disrupt leaves for evictions
	// before pods may be deleted; zero means 30s.
	DisruptMinGrace time.Duration
	// ReplaceTimeout bounds how long a disruption waits for its
	// replacements to become Initialized before rolling back; zero means
	// disruption.DefaultReplaceTimeout (10m).
	ReplaceTimeout time.Duration
	// InstanceTypeTTL is how long the instance types of a class are reused;
	// zero means 30s.
	InstanceTypeTTL time.Duration
	Metrics         *metrics.Metrics
	DrainMetrics    *drain.Metrics
	DisruptMetrics  *disruption.Metrics
	Log             *slog.Logger
}

// Watcher is the assembled controller.
type Watcher struct {
	Provisioner *provisioning.Provisioner
	Service     *service.Service
	Journal     *journal.Journal
}

func (c *Config) defaults() error {
	if c.ClusterName == "" {
		return errors.New("cluster name is required")
	}
	if c.Solver == nil || c.Launcher == nil {
		return errors.New("solver and launcher clients are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BatchIdle, time.Second)
	def(&c.BatchMax, 10*time.Second)
	def(&c.LaunchTimeout, 5*time.Minute)
	def(&c.RegistrationTimeout, 15*time.Minute)
	def(&c.DisruptionInterval, 10*time.Second)
	def(&c.GCInterval, time.Minute)
	def(&c.GCGrace, 2*time.Minute)
	def(&c.InstanceTypeTTL, 30*time.Second)
	def(&c.DisruptMinGrace, termination.DefaultMinGrace)
	def(&c.ReplaceTimeout, disruption.DefaultReplaceTimeout)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Setup registers the indexes, controllers and runnables on mgr, whose
// scheme must come from Scheme.
func Setup(ctx context.Context, mgr manager.Manager, cfg Config) (*Watcher, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := indexes(ctx, mgr); err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	rec := mgr.GetEventRecorder("flotilla-watcher")
	j := journal.New(200, nil)
	types := &nodeclass.Types{Launcher: cfg.Launcher, ByName: true, TTL: cfg.InstanceTypeTTL}
	kube := mgr.GetClient()
	batcher := provisioning.NewBatcher(cfg.BatchIdle, cfg.BatchMax)
	prov := &provisioning.Provisioner{
		Client: kube, Reader: kube, Solver: solverClient{c: cfg.Solver}, Types: types, Recorder: rec, Batcher: batcher,
		Informers: mgr.GetCache(), Metrics: cfg.Metrics, Journal: j, Log: cfg.Log.With("controller", "provisioning"),
	}
	life := &lifecycle.Controller{
		Client: kube, Launcher: cfg.Launcher, Types: types, Recorder: rec,
		LaunchTimeout: cfg.LaunchTimeout, RegistrationTimeout: cfg.RegistrationTimeout, OnCapacityError: batcher.Trigger,
		Metrics: cfg.Metrics, Journal: j, Log: cfg.Log.With("controller", "nodeclaim.lifecycle"),
	}
	term := &termination.Controller{
		Client: kube, Clientset: clientset, Launcher: cfg.Launcher, Recorder: rec, Metrics: cfg.Metrics, Journal: j,
		Drainer: &drain.Drainer{Client: clientset, Log: cfg.Log.With("controller", "drain"), Metrics: cfg.DrainMetrics},
		Log:     cfg.Log.With("controller", "nodeclaim.termination"), MinGrace: cfg.DisruptMinGrace,
	}
	gc := &lifecycle.GarbageCollector{
		Client: kube, Launcher: cfg.Launcher, Recorder: rec, Interval: cfg.GCInterval,
		Grace: cfg.GCGrace, Journal: j, Log: cfg.Log.With("controller", "garbagecollection"),
	}
	runner := &disrupt.Runner{
		Controller: &disruption.Controller{
			Cluster:  &disrupt.Cluster{Reader: kube, Types: types, Nominated: prov.Nominated},
			Actuator: &disrupt.Actuator{Client: kube, Clientset: clientset, Reader: kube, Recorder: rec, Metrics: cfg.Metrics, Poll: time.Second},
			Solver:   solverClient{c: cfg.Solver, metrics: cfg.Metrics}, Log: cfg.Log.With("controller", "disruption"), Metrics: cfg.DisruptMetrics,
			ReplaceTimeout: cfg.ReplaceTimeout,
		},
		Interval: cfg.DisruptionInterval, Journal: j, Log: cfg.Log.With("controller", "disruption"),
	}
	for _, setup := range []interface{ SetupWithManager(manager.Manager) error }{
		life, term,
		&lifecycle.PodEvents{Client: kube, Dedupe: 5 * time.Second},
		&lifecycle.NodePoolStatus{Client: kube, Types: types, Recorder: rec, Metrics: cfg.Metrics},
		&lifecycle.NodeClassStatus{Client: kube, Launcher: cfg.Launcher, Recorder: rec, Refresh: 5 * time.Minute, Log: cfg.Log.With("controller", "ec2nodeclass.status")},
	} {
		if err := setup.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("controller %T: %w", setup, err)
		}
	}
	for _, r := range []manager.Runnable{prov, gc, runner} {
		if err := mgr.Add(r); err != nil {
			return nil, fmt.Errorf("runnable %T: %w", r, err)
		}
	}
	svc := &service.Service{
		Client: kube, Reader: kube, Clientset: clientset, Solver: solverClient{c: cfg.Solver}, Types: types, Provisioner: prov, Recorder: rec,
		Journal: j, Metrics: cfg.Metrics, Log: cfg.Log.With("component", "service"), Elected: mgr.Elected(), Ctx: ctx,
		MinGrace: cfg.DisruptMinGrace,
	}
	// On the leader, finish the disruptions a previous watcher accepted.
	if err := mgr.Add(manager.RunnableFunc(svc.Resume)); err != nil {
		return nil, fmt.Errorf("resume disruptions: %w", err)
	}
	return &Watcher{Provisioner: prov, Service: svc, Journal: j}, nil
}

// solverClient drops the gRPC call options, for the Solver interfaces, and
// times Consolidate calls (the provisioner times its own Solve calls).
type solverClient struct {
	c       solverv1.SolverServiceClient
	metrics *metrics.Metrics
}

func (s solverClient) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	return s.c.Solve(ctx, req)
}

func (s solverClient) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	start := time.Now()
	resp, err := s.c.Consolidate(ctx, req)
	s.metrics.Solve("Consolidate", err, time.Since(start).Seconds())
	return resp, err
}

// indexes registers the field indexes the controllers look objects up by.
func indexes(ctx context.Context, mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &corev1.Node{}, lifecycle.IndexNodeProviderID, func(o client.Object) []string {
		if id := o.(*corev1.Node).Spec.ProviderID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("node index: %w", err)
	}
	if err := idx.IndexField(ctx, &karpv1.NodeClaim{}, lifecycle.IndexClaimProviderID, func(o client.Object) []string {
		if id := o.(*karpv1.NodeClaim).Status.ProviderID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("nodeclaim index: %w", err)
	}
	if err := idx.IndexField(ctx, &corev1.Pod{}, lifecycle.IndexPodNodeName, func(o client.Object) []string {
		if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("pod index: %w", err)
	}
	return nil
}
