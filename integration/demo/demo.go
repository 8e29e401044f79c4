// Package demo shows Flotilla working on one machine: it starts the local
// cluster (etcd, kube-apiserver, kube-scheduler, kube-controller-manager and
// kwok from integration/controlplane, ec2sim with its node bridge, an SQS
// emulator, and the four services), applies the example NodePools and
// EC2NodeClass, and runs a script — a spike of pending pods, a Spot
// interruption, a scale-down that consolidation cleans up — with a live
// view of what Flotilla does, then prints a summary.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-io/flotilla/integration/cluster"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// ClusterName is the demo cluster's name: the one the examples' discovery
// tags and node role name, so that they apply unchanged.
const ClusterName = "my-cluster"

// Namespace holds the demo's workloads.
const Namespace = "demo"

// Options configure Run.
type Options struct {
	// Once runs the script and returns; otherwise Run keeps the cluster up
	// after the summary until ctx ends (Ctrl-C).
	Once bool
	// Out receives the live view and the summary.
	Out io.Writer
	// Spike is the number of replicas of the spike (default 40).
	Spike int32
	// Refresh is the live view's period (default 2s).
	Refresh time.Duration
	// StepTimeout bounds each step of the script (default 4 minutes).
	StepTimeout time.Duration
	// Cluster adjusts the local cluster's options.
	Cluster cluster.Options
}

// Step is one step of the script and how it went.
type Step struct {
	Name    string
	Took    time.Duration
	Err     error
	Outcome string
}

// Summary is what the script did.
type Summary struct {
	Steps []Step
	// PeakCost and FinalCost are the price of Flotilla's nodes at the
	// spike's peak and at the end, in $/h.
	PeakCost, FinalCost   float64
	PeakNodes, FinalNodes int
	// LargestSolve is the spike's largest provisioning solve, with its
	// cost and lower bound.
	LargestSolve *watcherv1.SolveSummary
}

// OK reports whether every step succeeded.
func (s *Summary) OK() bool {
	for _, st := range s.Steps {
		if st.Err != nil {
			return false
		}
	}
	return len(s.Steps) > 0
}

// demo is one run.
type demo struct {
	opts    Options
	c       cluster.Cluster
	crc     client.Client
	watcher watcherv1.WatcherServiceClient
	view    *view
	summary *Summary
}

// Run starts the local cluster, runs the script and reports it. The
// cluster is stopped before Run returns; with Once unset it first waits
// for ctx to end. The error is non-nil when the cluster could not start
// or a step failed.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	opts = withDefaults(opts)
	d := &demo{opts: opts, summary: &Summary{}}
	fmt.Fprintf(opts.Out, "Starting the local cluster %q (the first run builds the control plane from the Go module proxy: about 10 minutes)...\n", ClusterName)
	start := time.Now()
	c, err := cluster.Start(ctx, opts.Cluster) // non-nil even on error
	defer c.Stop()
	if err != nil {
		fmt.Fprintln(opts.Out, c.LogTails(20))
		return d.summary, fmt.Errorf("start the local cluster: %w", err)
	}
	d.c = c
	fmt.Fprintf(opts.Out, "Cluster up in %s: control plane, ec2sim, %s.\n", time.Since(start).Round(100*time.Millisecond), strings.Join(c.Services(), ", "))
	if c.InterruptionSkipped() != "" {
		fmt.Fprintf(opts.Out, "The interruption service is not running: %s.\n", c.InterruptionSkipped())
	}
	if err := d.connect(); err != nil {
		return d.summary, err
	}
	d.view = newView(opts.Out, d.watcher, opts.Refresh)
	d.printAccess()
	d.script(ctx)
	d.printSummary()
	if !opts.Once && ctx.Err() == nil {
		fmt.Fprintln(opts.Out, "\nThe cluster stays up (kubectl and grpcurl work, see above); Ctrl-C stops every process the demo started.")
		_, _ = d.view.live(ctx, nil) // returns when ctx ends
	}
	if !d.summary.OK() {
		return d.summary, errors.New("a step of the demo failed")
	}
	return d.summary, nil
}

func withDefaults(o Options) Options {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Spike == 0 {
		o.Spike = 40
	}
	if o.Refresh == 0 {
		o.Refresh = 2 * time.Second
	}
	if o.StepTimeout == 0 {
		o.StepTimeout = 4 * time.Minute
	}
	o.Cluster.Name = ClusterName
	if o.Cluster.ExtraArgs == nil {
		o.Cluster.ExtraArgs = map[string][]string{}
	}
	o.Cluster.ExtraArgs[cluster.EC2Sim] = append(o.Cluster.ExtraArgs[cluster.EC2Sim], "--iam-roles", "KarpenterNodeRole-"+ClusterName)
	o.Cluster.ExtraArgs[cluster.Watcher] = append(o.Cluster.ExtraArgs[cluster.Watcher], "--disruption-interval=2s")
	return o
}

func (d *demo) connect() error {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	crc, err := client.New(d.c.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	d.crc = crc
	conn, err := d.c.DialAs(cluster.Watcher, cluster.OperatorIdentity)
	if err != nil {
		return fmt.Errorf("dial the watcher: %w", err)
	}
	d.watcher = watcherv1.NewWatcherServiceClient(conn)
	return nil
}

func (d *demo) printAccess() {
	out := d.opts.Out
	fmt.Fprintf(out, "\n  kubectl --kubeconfig %s get nodepools,nodeclaims,nodes\n", d.c.Kubeconfig())
	// Every service takes only mutual TLS: the person at the keyboard gets
	// a certificate of their own, which may call the read-only methods.
	files, err := d.c.ClientTLS(cluster.OperatorIdentity)
	if err != nil {
		fmt.Fprintf(out, "  (no client certificate for grpcurl: %v)\n", err)
	} else {
		tlsArgs := fmt.Sprintf("-cacert %s -cert %s -key %s", files.CA, files.Cert, files.Key)
		for _, s := range d.c.Services() {
			fmt.Fprintf(out, "  grpcurl %s %s list    # %s\n", tlsArgs, d.c.Addr(s), s)
		}
		if slices.Contains(d.c.Services(), cluster.Watcher) {
			fmt.Fprintf(out, "  grpcurl %s %s flotilla.watcher.v1.WatcherService/GetState\n", tlsArgs, d.c.Addr(cluster.Watcher))
		}
	}
	fmt.Fprintf(out, "  logs: %s\n\n", d.c.LogDir())
}

// script runs the steps in order; a failed step ends the script.
func (d *demo) script(ctx context.Context) {
	steps := []struct {
		name string
		run  func(context.Context) (string, error)
	}{
		{"apply the example EC2NodeClass and NodePools", d.applyExamples},
		{"spike: pending pods get nodes", d.spike},
		{"Spot interruption: replace, drain, terminate", d.interruption},
		{"scale down: consolidation", d.scaleDown},
	}
	for _, st := range steps {
		fmt.Fprintf(d.opts.Out, "\n== %s\n", st.name)
		sctx, cancel := context.WithTimeout(ctx, d.opts.StepTimeout)
		begin := time.Now()
		outcome, err := st.run(sctx)
		cancel()
		step := Step{Name: st.name, Took: time.Since(begin), Err: err, Outcome: outcome}
		d.summary.Steps = append(d.summary.Steps, step)
		if err != nil {
			fmt.Fprintf(d.opts.Out, "FAILED after %s: %v\n", step.Took.Round(100*time.Millisecond), err)
			return
		}
		fmt.Fprintf(d.opts.Out, "done in %s: %s\n", step.Took.Round(100*time.Millisecond), outcome)
	}
}

// applyExamples applies examples/karpenter unchanged, except that the
// NodePools' disruption budgets are opened and consolidateAfter shortened
// so that the scale-down shows within the demo (the examples block
// voluntary disruption during weekday business hours).
func (d *demo) applyExamples(ctx context.Context) (string, error) {
	root := d.opts.Cluster.RepoRoot
	if root == "" {
		var err error
		if root, err = cluster.FindRepoRoot(); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(root, "examples", "karpenter")
	nc := &awsv1.EC2NodeClass{}
	if err := readYAML(filepath.Join(dir, "ec2nodeclass.yaml"), nc); err != nil {
		return "", err
	}
	if err := d.crc.Create(ctx, nc); err != nil {
		return "", fmt.Errorf("create EC2NodeClass %s: %w", nc.Name, err)
	}
	var pools []string
	for _, f := range []string{"generalcompute.yaml", "gpu.yaml", "team.yaml"} {
		np := &karpv1.NodePool{}
		if err := readYAML(filepath.Join(dir, f), np); err != nil {
			return "", err
		}
		after := 10 * time.Second
		np.Spec.Disruption.ConsolidateAfter = karpv1.NillableDuration{Duration: &after}
		np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "100%"}}
		if err := d.crc.Create(ctx, np); err != nil {
			return "", fmt.Errorf("create NodePool %s: %w", np.Name, err)
		}
		pools = append(pools, np.Name)
	}
	err := poll(ctx, func() (bool, error) {
		got := &awsv1.EC2NodeClass{}
		if err := d.crc.Get(ctx, client.ObjectKey{Name: nc.Name}, got); err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == karpv1.ConditionReady && c.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, errors.New("EC2NodeClass not Ready")
	})
	if err != nil {
		return "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := d.crc.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	ami := nc.Spec.AMISelectorTerms[0].Alias
	return fmt.Sprintf("EC2NodeClass %s (AMI pinned to %s) Ready; NodePools %s", nc.Name, ami, strings.Join(pools, ", ")), nil
}

// spike creates a Deployment of Spike replicas and a 3-replica Spot-only
// worker with a PodDisruptionBudget, and waits until every pod runs.
func (d *demo) spike(ctx context.Context) (string, error) {
	if err := d.deployment(ctx, "web", d.opts.Spike, "500m", "1Gi", nil); err != nil {
		return "", err
	}
	if err := d.deployment(ctx, "worker", 3, "250m", "512Mi", map[string]string{karpv1.CapacityTypeLabelKey: "spot"}); err != nil {
		return "", err
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: Namespace},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}}},
	}
	if err := d.crc.Create(ctx, pdb); err != nil {
		return "", fmt.Errorf("create PodDisruptionBudget: %w", err)
	}
	want := int(d.opts.Spike) + 3
	// The spike may be solved in more than one batch: keep the largest.
	var largest *watcherv1.SolveSummary
	st, err := d.view.live(ctx, func(st *watcherv1.GetStateResponse) (bool, error) {
		if ls := st.GetLastSolve(); ls.GetPods() > largest.GetPods() {
			largest = ls
		}
		running, err := d.running(ctx, "")
		return running == want && len(st.GetPendingPods()) == 0, err
	})
	if err != nil {
		return "", err
	}
	d.summary.PeakCost, d.summary.PeakNodes = st.GetCostPerHour(), len(st.GetNodeClaims())
	d.summary.LargestSolve = largest
	return fmt.Sprintf("%d pods Running on %d nodes, $%.3f/h (largest solve: %d pods → %d NodeClaims at $%.3f/h, lower bound $%.3f/h)",
		want, len(st.GetNodeClaims()), st.GetCostPerHour(), largest.GetPods(), largest.GetNodeClaims(), largest.GetCostPerHour(),
		largest.GetLowerBoundPerHour()), nil
}

func (d *demo) deployment(ctx context.Context, name string, replicas int32, cpu, memory string, selector map[string]string) error {
	labels := map[string]string{"app": name}
	zero := int64(0)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: &zero,
				NodeSelector:                  selector,
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
				}}},
			}},
		},
	}
	if err := d.crc.Create(ctx, dep); err != nil {
		return fmt.Errorf("create Deployment %s: %w", name, err)
	}
	return nil
}

// running counts the Running pods of the demo namespace with app=name ("" for all).
func (d *demo) running(ctx context.Context, name string) (int, error) {
	pods, err := d.pods(ctx, name)
	n := 0
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n, err
}

func (d *demo) pods(ctx context.Context, name string) ([]corev1.Pod, error) {
	var l corev1.PodList
	opts := []client.ListOption{client.InNamespace(Namespace)}
	if name != "" {
		opts = append(opts, client.MatchingLabels{"app": name})
	}
	if err := d.crc.List(ctx, &l, opts...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// scaleDown scales the spike down and waits until consolidation removed
// nodes and the cost fell.
func (d *demo) scaleDown(ctx context.Context) (string, error) {
	const keep = 6
	dep := &appsv1.Deployment{}
	if err := d.crc.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: "web"}, dep); err != nil {
		return "", err
	}
	replicas := int32(keep)
	dep.Spec.Replicas = &replicas
	if err := d.crc.Update(ctx, dep); err != nil {
		return "", fmt.Errorf("scale web: %w", err)
	}
	before, err := d.watcher.GetState(ctx, &watcherv1.GetStateRequest{})
	if err != nil {
		return "", err
	}
	startNodes, startCost := len(before.GetNodeClaims()), before.GetCostPerHour()
	stableSince, last := time.Now(), -1
	st, err := d.view.live(ctx, func(st *watcherv1.GetStateResponse) (bool, error) {
		n := len(st.GetNodeClaims())
		if n != last {
			stableSince, last = time.Now(), n
		}
		running, err := d.running(ctx, "")
		// Settled: fewer nodes than before, every pod running, and no
		// change for 15 s.
		return n < startNodes && running == keep+3 && len(st.GetPendingPods()) == 0 && time.Since(stableSince) > 15*time.Second, err
	})
	if err != nil {
		return "", err
	}
	d.summary.FinalCost, d.summary.FinalNodes = st.GetCostPerHour(), len(st.GetNodeClaims())
	return fmt.Sprintf("web scaled %d→%d: %d → %d nodes, $%.3f/h → $%.3f/h; %s", d.opts.Spike, keep, startNodes, len(st.GetNodeClaims()),
		startCost, st.GetCostPerHour(), decisions(st, "Underutilized", "Empty")), nil
}

// decisions summarises the recent decisions of the given kinds (the
// watcher records disruption decisions under their reason).
func decisions(st *watcherv1.GetStateResponse, kinds ...string) string {
	var msgs []string
	for _, dec := range st.GetRecentDecisions() {
		if slices.Contains(kinds, dec.GetKind()) {
			msgs = append(msgs, dec.GetKind()+" "+dec.GetObject()+": "+dec.GetMessage())
		}
	}
	if len(msgs) == 0 {
		return "no " + strings.Join(kinds, "/") + " decision recorded"
	}
	sort.Strings(msgs)
	if len(msgs) > 3 {
		msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
	}
	return strings.Join(msgs, "; ")
}

func (d *demo) printSummary() {
	out, s := d.opts.Out, d.summary
	fmt.Fprintln(out, "\n== Summary")
	for _, st := range s.Steps {
		status := "ok"
		if st.Err != nil {
			status = "FAILED: " + st.Err.Error()
		}
		fmt.Fprintf(out, "  %-48s %8s  %s\n", st.Name, st.Took.Round(100*time.Millisecond), status)
	}
	if s.PeakNodes > 0 {
		fmt.Fprintf(out, "  peak: %d nodes at $%.3f/h\n", s.PeakNodes, s.PeakCost)
	}
	if ls := s.LargestSolve; ls.GetPods() > 0 {
		fmt.Fprintf(out, "  largest solve: %d pods → %d NodeClaims at $%.3f/h, lower bound $%.3f/h (%.2f×), %.0f ms\n", ls.GetPods(), ls.GetNodeClaims(),
			ls.GetCostPerHour(), ls.GetLowerBoundPerHour(), ls.GetCostPerHour()/max(ls.GetLowerBoundPerHour(), 1e-9), ls.GetSolveSeconds()*1000)
	}
	if s.FinalNodes > 0 {
		fmt.Fprintf(out, "  after consolidation: %d nodes at $%.3f/h\n", s.FinalNodes, s.FinalCost)
	}
	if s.OK() {
		fmt.Fprintln(out, "  every step succeeded")
	}
}

func readYAML(path string, obj any) error {
	b, err := os.ReadFile(path) //nolint:gosec // the checkout's examples
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// poll calls cond every 500ms until it is true or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ptr[T any](v T) *T { return &v }
