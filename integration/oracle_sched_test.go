package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-base/config/v1alpha1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	plfeature "k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/interpodaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeports"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeunschedulable"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/podtopologyspread"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/tainttoleration"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedmetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
)

// oracleFilters are the kube-scheduler plugins the oracle runs, at both
// PreFilter and Filter, in the default profile's order.
var oracleFilters = []string{
	nodeunschedulable.Name,
	noderesources.Name,
	nodeports.Name,
	nodeaffinity.Name,
	tainttoleration.Name,
	interpodaffinity.Name,
	podtopologyspread.Name,
}

// swapLister is the framework's snapshot lister; the oracle points it at
// each case's snapshot in turn, so that one framework serves every case.
type swapLister struct {
	fwk.SharedLister
}

// schedOracle is one kube-scheduler framework with the filter plugins of
// oracleFilters, configured with the default profile's plugin arguments,
// over a snapshot the caller sets. It is not safe for concurrent use.
type schedOracle struct {
	fw     framework.Framework
	lister *swapLister
	cancel context.CancelFunc
}

// defaultPluginArgs returns kube-scheduler's default arguments for every
// plugin that takes some, exactly as a KubeSchedulerConfiguration with no
// fields set is defaulted.
func defaultPluginArgs() (map[string]runtime.Object, error) {
	versioned := configv1.KubeSchedulerConfiguration{DebuggingConfiguration: *v1alpha1.NewRecommendedDebuggingConfiguration()}
	scheme.Scheme.Default(&versioned)
	var cfg config.KubeSchedulerConfiguration
	if err := scheme.Scheme.Convert(&versioned, &cfg, nil); err != nil {
		return nil, fmt.Errorf("default scheduler configuration: %w", err)
	}
	if len(cfg.Profiles) == 0 {
		return nil, errors.New("default scheduler configuration has no profile")
	}
	out := map[string]runtime.Object{}
	for _, pc := range cfg.Profiles[0].PluginConfig {
		out[pc.Name] = pc.Args
	}
	return out, nil
}

// newSchedOracle builds the framework. Namespaces (with their labels) feed
// the informer the InterPodAffinity plugin resolves namespace selectors
// with.
func newSchedOracle(namespaces map[string]map[string]string) (*schedOracle, error) {
	ctx, cancel := context.WithCancel(context.Background())
	o, err := buildSchedOracle(ctx, namespaces)
	if err != nil {
		cancel()
		return nil, err
	}
	o.cancel = cancel
	return o, nil
}

func buildSchedOracle(ctx context.Context, namespaces map[string]map[string]string) (*schedOracle, error) {
	// The framework records into the scheduler's metrics, which must exist
	// (registering is idempotent).
	schedmetrics.Register()
	fts := plfeature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	registry := frameworkruntime.Registry{
		queuesort.Name:         queuesort.New,
		defaultbinder.Name:     defaultbinder.New,
		nodeunschedulable.Name: frameworkruntime.FactoryAdapter(fts, nodeunschedulable.New),
		noderesources.Name:     frameworkruntime.FactoryAdapter(fts, noderesources.NewFit),
		nodeports.Name:         frameworkruntime.FactoryAdapter(fts, nodeports.New),
		nodeaffinity.Name:      frameworkruntime.FactoryAdapter(fts, nodeaffinity.New),
		tainttoleration.Name:   frameworkruntime.FactoryAdapter(fts, tainttoleration.New),
		interpodaffinity.Name:  frameworkruntime.FactoryAdapter(fts, interpodaffinity.New),
		podtopologyspread.Name: frameworkruntime.FactoryAdapter(fts, podtopologyspread.New),
	}
	args, err := defaultPluginArgs()
	if err != nil {
		return nil, err
	}
	profile := &config.KubeSchedulerProfile{
		SchedulerName: "flotilla-oracle",
		Plugins: &config.Plugins{
			QueueSort: config.PluginSet{Enabled: []config.Plugin{{Name: queuesort.Name}}},
			Bind:      config.PluginSet{Enabled: []config.Plugin{{Name: defaultbinder.Name}}},
		},
	}
	for _, name := range oracleFilters {
		profile.Plugins.PreFilter.Enabled = append(profile.Plugins.PreFilter.Enabled, config.Plugin{Name: name})
		profile.Plugins.Filter.Enabled = append(profile.Plugins.Filter.Enabled, config.Plugin{Name: name})
		if a, ok := args[name]; ok {
			profile.PluginConfig = append(profile.PluginConfig, config.PluginConfig{Name: name, Args: a})
		}
	}
	var objs []runtime.Object
	for _, name := range sortedKeys(namespaces) {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: namespaces[name]}})
	}
	informerFactory := informers.NewSharedInformerFactory(fake.NewClientset(objs...), 0)
	lister := &swapLister{SharedLister: cache.NewEmptySnapshot()}
	fw, err := frameworkruntime.NewFramework(ctx, registry, profile,
		frameworkruntime.WithSnapshotSharedLister(lister),
		frameworkruntime.WithInformerFactory(informerFactory),
		frameworkruntime.WithParallelism(1),
		frameworkruntime.WithLogger(klog.Background()),
	)
	if err != nil {
		return nil, fmt.Errorf("scheduler framework: %w", err)
	}
	informerFactory.Start(ctx.Done())
	for typ, synced := range informerFactory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return nil, fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	return &schedOracle{fw: fw, lister: lister}, nil
}

// Close stops the framework's background goroutines.
func (o *schedOracle) Close() { o.cancel() }

// rejection is the scheduler's verdict against one pod on one node.
type rejection struct {
	Plugin  string
	Code    string
	Reasons []string
}

func (r *rejection) String() string {
	return fmt.Sprintf("%s: %s: %s", r.Plugin, r.Code, strings.Join(r.Reasons, "; "))
}

// check runs PreFilter and then Filter for pod against node in the
// current snapshot, as one scheduling cycle would, and returns nil when
// the pod may bind there.
func (o *schedOracle) check(ctx context.Context, snap *cache.Snapshot, pod *corev1.Pod, node string) *rejection {
	o.lister.SharedLister = snap
	state := framework.NewCycleState()
	result, status, _ := o.fw.RunPreFilterPlugins(ctx, state, pod)
	if !status.IsSuccess() {
		return statusRejection(status, "PreFilter")
	}
	if !result.AllNodes() && !result.NodeNames.Has(node) {
		return &rejection{Plugin: "PreFilter", Code: "NodeNotInPreFilterResult", Reasons: []string{fmt.Sprintf("PreFilter narrowed the nodes to %v", sets.List(result.NodeNames))}}
	}
	info, err := snap.NodeInfos().Get(node)
	if err != nil {
		return &rejection{Plugin: "Snapshot", Code: "Error", Reasons: []string{err.Error()}}
	}
	if status := o.fw.RunFilterPlugins(ctx, state, pod, info); !status.IsSuccess() {
		return statusRejection(status, "Filter")
	}
	return nil
}

func statusRejection(s *fwk.Status, point string) *rejection {
	plugin := s.Plugin()
	if plugin == "" {
		plugin = point
	}
	reasons := s.Reasons()
	if err := s.AsError(); err != nil && len(reasons) == 0 {
		reasons = []string{err.Error()}
	}
	return &rejection{Plugin: point + "/" + plugin, Code: s.Code().String(), Reasons: reasons}
}
