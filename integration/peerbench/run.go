package peerbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/integration/controlplane"
)

// Sides.
const (
	Flotilla  = "flotilla"
	Karpenter = "karpenter"
)

// Aligned settings: both sides get the same batch windows, the same
// NodePool (disruption budget, consolidateAfter) and the same client rates.
const (
	BatchIdle       = "1s"
	BatchMax        = "10s"
	ConsolidateWait = "30s"
	clusterName     = "my-cluster"
)

// nodePool is the one NodePool both sides get; only nodeClassRef differs.
const nodePool = `apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      nodeClassRef: {group: %s, kind: %s, name: default}
      requirements:
        - {key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}
        - {key: kubernetes.io/os, operator: In, values: [linux]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
      expireAfter: Never
  limits:
    cpu: "100000"
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: ` + ConsolidateWait + `
    budgets:
      - nodes: "100%%"
`

const ec2NodeClass = `apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: default
spec:
  role: KarpenterNodeRole-` + clusterName + `
  amiSelectorTerms:
    - alias: al2023@v20240807
  subnetSelectorTerms:
    - tags: {karpenter.sh/discovery: ` + clusterName + `}
  securityGroupSelectorTerms:
    - tags: {karpenter.sh/discovery: ` + clusterName + `}
`

const kwokNodeClass = `apiVersion: karpenter.kwok.sh/v1alpha1
kind: KWOKNodeClass
metadata:
  name: default
spec: {}
`

// Options configure Run.
type Options struct {
	RepoRoot string
	Catalog  *Catalog
	// Pods is the spike's size; Seed the karpenter-mix seed.
	Pods int
	Seed int64
	// ScaleUpTimeout bounds the wait for every spike pod to be scheduled;
	// SettleTimeout the wait for consolidation after scaling to 20%, which
	// ends early once the node count has not changed for Settled.
	ScaleUpTimeout, SettleTimeout, Settled time.Duration
	// WorkDir receives the catalogs and logs (kept).
	WorkDir string
	Log     io.Writer
}

// Outcome is one side's run.
type Outcome struct {
	Side string
	Result
	Proc ProcStats
	// ScaleUp is spike creation until every pod was scheduled; Settle the
	// scale-down until the node count last changed.
	ScaleUp, Settle time.Duration
	ScaledPods      int
}

// env is a running side: its API server and controller processes.
type env struct {
	config *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	pids   func() []int
	stop   func()
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, time.Now().UTC().Format("15:04:05 ")+format+"\n", args...)
	}
}

// Run measures one side.
func Run(ctx context.Context, side string, o Options) (out Outcome, err error) {
	out.Side = side
	dir := filepath.Join(o.WorkDir, side)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return out, err
	}
	var e *env
	switch side {
	case Flotilla:
		e, err = startFlotilla(ctx, o, dir)
	case Karpenter:
		e, err = startKarpenter(ctx, o, dir)
	default:
		return out, fmt.Errorf("unknown side %q", side)
	}
	if e != nil && e.stop != nil {
		defer e.stop()
	}
	if err != nil {
		return out, fmt.Errorf("%s: start: %w", side, err)
	}
	o.logf("%s: ready", side)
	groups, err := Spike(o.Pods, o.Seed)
	if err != nil {
		return out, err
	}
	obs := NewObserver(o.Catalog)
	if err := obs.Start(ctx, e.kube, e.dyn, time.Second); err != nil {
		return out, err
	}
	defer obs.Stop()
	begin := time.Now()
	if err := CreateAll(ctx, e.kube, groups); err != nil {
		return out, fmt.Errorf("%s: create the spike: %w", side, err)
	}
	o.logf("%s: %d pods in %d Deployments created", side, Total(groups, false), len(groups))
	if err := waitScheduled(ctx, e.kube, Total(groups, false), o.ScaleUpTimeout); err != nil {
		o.logf("%s: scale-up: %v (measuring on)", side, err)
	}
	out.ScaleUp = time.Since(begin)
	o.logf("%s: scale-up %s, %d nodes", side, out.ScaleUp.Round(time.Second), obs.Nodes())
	down := time.Now()
	if err := ScaleAll(ctx, e.kube, groups); err != nil {
		return out, fmt.Errorf("%s: scale to 20%%: %w", side, err)
	}
	out.ScaledPods = Total(groups, true)
	lastChange := waitSettled(ctx, obs, o.SettleTimeout, o.Settled)
	out.Settle = lastChange.Sub(down)
	obs.Stop()
	out.Result = obs.Result()
	out.Proc, err = ReadProc(e.pids()...)
	if err != nil {
		return out, fmt.Errorf("%s: controller /proc: %w", side, err)
	}
	o.logf("%s: settled %s after scale-down, %d nodes", side, out.Settle.Round(time.Second), out.NodesEnd)
	return out, nil
}

// waitScheduled waits until want pods of the namespace are bound to nodes.
func waitScheduled(ctx context.Context, kube kubernetes.Interface, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := 0
	for {
		pods, err := kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			last = 0
			for _, p := range pods.Items {
				if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
					last++
				}
			}
			if last >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods scheduled: %w", last, want, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// waitSettled waits until the node count has not changed for settled, or
// timeout, and returns when it last changed.
func waitSettled(ctx context.Context, obs *Observer, timeout, settled time.Duration) time.Time {
	end := time.Now().Add(timeout)
	n, changed := obs.Nodes(), time.Now()
	for time.Now().Before(end) && time.Since(changed) < settled && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		if m := obs.Nodes(); m != n {
			n, changed = m, time.Now()
		}
	}
	return changed
}

func startFlotilla(ctx context.Context, o Options, dir string) (*env, error) {
	catalog := filepath.Join(dir, "catalog.csv")
	if err := o.Catalog.WriteEC2SimFile(catalog); err != nil {
		return nil, err
	}
	c, err := cluster.Start(ctx, cluster.Options{
		RepoRoot: o.RepoRoot, WorkDir: filepath.Join(dir, "cluster"), Name: clusterName,
		ExtraArgs: map[string][]string{
			cluster.EC2Sim:  {"--catalog", catalog, "--iam-roles", "KarpenterNodeRole-" + clusterName, "--spot-discount", fmt.Sprint(SpotDiscount)},
			cluster.Watcher: {"--batch-idle-duration=" + BatchIdle, "--batch-max-duration=" + BatchMax},
		},
	})
	// Start returns a Cluster to stop even on error.
	e := &env{stop: c.Stop}
	if err != nil {
		return e, fmt.Errorf("%w\n%s", err, c.LogTails(20))
	}
	e.config, e.kube = c.RESTConfig(), c.Kube()
	if e.dyn, err = dynamic.NewForConfig(e.config); err != nil {
		return e, err
	}
	services := c.Services()
	e.pids = func() []int {
		var pids []int
		for _, s := range services {
			if pid := c.Pid(s); pid > 0 {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	if err := apply(ctx, e.dyn, ec2NodeClass, fmt.Sprintf(nodePool, "karpenter.k8s.aws", "EC2NodeClass")); err != nil {
		return e, err
	}
	return e, waitReady(ctx, e.dyn, schema.GroupVersionResource{Group: "karpenter.k8s.aws", Version: "v1", Resource: "ec2nodeclasses"}, "default")
}

func startKarpenter(ctx context.Context, o Options, dir string) (*env, error) {
	kwokBin, err := peerBuild(o.RepoRoot)
	if err != nil {
		return nil, err
	}
	crdOut, err := exec.Command("bash", filepath.Join(o.RepoRoot, "hack", "peerbench", "build.sh"), "--crds").Output() //nolint:gosec // G204: the checkout's own script
	if err != nil {
		return nil, fmt.Errorf("hack/peerbench/build.sh --crds: %w", err)
	}
	types := filepath.Join(dir, "instance-types.json")
	if err := o.Catalog.WriteKWOKFile(types); err != nil {
		return nil, err
	}
	cpBin, err := cluster.BuildControlPlane(ctx, o.RepoRoot)
	if err != nil {
		return nil, err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: cpBin, WorkDir: filepath.Join(dir, "controlplane"), ControllerManager: true, Kwok: true})
	e := &env{stop: cp.Stop}
	if err != nil {
		return e, err
	}
	e.config, e.kube = cp.Config, cp.Client
	if e.dyn, err = dynamic.NewForConfig(e.config); err != nil {
		return e, err
	}
	for _, d := range strings.Fields(string(crdOut)) {
		if err := installCRDs(ctx, e.dyn, d); err != nil {
			return e, err
		}
	}
	metrics, err := freePort()
	if err != nil {
		return e, err
	}
	health, err := freePort()
	if err != nil {
		return e, err
	}
	logf, err := os.Create(filepath.Join(dir, "karpenter.log"))
	if err != nil {
		return e, err
	}
	cmd := exec.Command(kwokBin, //nolint:gosec // G204: the binary build.sh built
		"--instance-types-file-path="+types,
		"--disable-leader-election=true",
		"--batch-idle-duration="+BatchIdle, "--batch-max-duration="+BatchMax,
		fmt.Sprintf("--metrics-port=%d", metrics), fmt.Sprintf("--health-probe-port=%d", health),
		"--kube-client-qps=200", "--kube-client-burst=300",
	)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig, "SYSTEM_NAMESPACE=kube-system")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return e, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
		cp.Stop()
	}
	e.pids = func() []int { return []int{cmd.Process.Pid} }
	if err := apply(ctx, e.dyn, kwokNodeClass, fmt.Sprintf(nodePool, "karpenter.kwok.sh", "KWOKNodeClass")); err != nil {
		return e, err
	}
	// Ready once its health endpoint answers.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-exited:
			return e, fmt.Errorf("karpenter exited; see %s", logf.Name())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", health), time.Second); err == nil {
			_ = c.Close()
			return e, nil
		}
		if time.Now().After(deadline) {
			return e, fmt.Errorf("karpenter not serving health on %d; see %s", health, logf.Name())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// peerBuild builds (or finds cached) Karpenter's KWOK provider.
func peerBuild(root string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(root, "hack", "peerbench", "build.sh")) //nolint:gosec // G204: the checkout's own script
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("peer binary not buildable (hack/peerbench/build.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// apply creates every YAML document.
func apply(ctx context.Context, dyn dynamic.Interface, docs ...string) error {
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			return err
		}
		gvk := u.GroupVersionKind()
		plural := strings.ToLower(gvk.Kind) + "s" // nodepools
		if strings.HasSuffix(gvk.Kind, "s") {
			plural = strings.ToLower(gvk.Kind) + "es" // ec2nodeclasses
		}
		res := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: plural}
		if _, err := dyn.Resource(res).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create %s %s: %w", gvk.Kind, u.GetName(), err)
		}
	}
	return nil
}

// waitReady waits for a Ready=True condition on a cluster-scoped object.
func waitReady(ctx context.Context, dyn dynamic.Interface, res schema.GroupVersionResource, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		u, err := dyn.Resource(res).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Ready" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s not Ready: %w", res.Resource, name, errors.Join(err, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates every CRD in dir/*.yaml and waits until each is Established.
func installCRDs(ctx context.Context, dyn dynamic.Interface, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", dir)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if u.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s: kind %q", f, u.GetKind())
		}
		if _, err := dyn.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CRD from %s: %w", f, err)
		}
		if err := waitEstablished(ctx, dyn, u.GetName()); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, dyn dynamic.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		u, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not Established: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
