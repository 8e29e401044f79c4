package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/ec2sim/nodebridge"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/watcher"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// watcherTypes are the instance types the simulated region sells.
var watcherTypes = []string{"c5.large", "c5.xlarge", "m5.large", "m5.xlarge", "m5.2xlarge", "r5.large"}

// countingSolver counts solver calls on their way to the real service.
type countingSolver struct {
	solverv1.SolverServiceClient
	solves, consolidates atomic.Int64
}

func (c *countingSolver) Solve(ctx context.Context, req *solverv1.SolveRequest, opts ...grpc.CallOption) (*solverv1.SolveResponse, error) {
	c.solves.Add(1)
	return c.SolverServiceClient.Solve(ctx, req, opts...)
}

func (c *countingSolver) Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest, opts ...grpc.CallOption) (*solverv1.ConsolidateResponse, error) {
	c.consolidates.Add(1)
	return c.SolverServiceClient.Consolidate(ctx, req, opts...)
}

// serveGRPC serves register's services on loopback behind internal/server
// and returns a client connection.
func serveGRPC(t *testing.T, name string, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	srv, err := server.New(server.Config{Name: name, GRPCAddr: "127.0.0.1:0", StopTimeout: time.Second, MaxMessageBytes: 64 << 20, Insecure: true}, register)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Logf("server stopped: %v", err)
		}
	})
	return conn
}

// region is a simulated AWS region on loopback with the launcher over it.
type region struct {
	sim *ec2sim.Sim
	aws awsclient.Config
}

func newRegion(t *testing.T) *region {
	t.Helper()
	var specs []ec2catalog.Spec
	for _, n := range watcherTypes {
		s, ok := ec2catalog.Lookup(n)
		if !ok {
			t.Fatalf("%s not in the catalog", n)
		}
		specs = append(specs, s)
	}
	sim := ec2sim.New(ec2sim.Options{Catalog: specs})
	ssm := ssmsim.New(nil)
	sim.JSONHandlers["AmazonSSM"] = ssm
	sim.JSONHandlers[pricingsim.TargetPrefix] = pricingsim.New(specs, "us-east-1")
	eksami.Seed(func(a eksami.AMI) {
		sim.AddImage(ec2sim.Image{ID: a.ID, Name: a.Name, OwnerID: a.OwnerID, Architecture: a.Arch, CreationDate: a.Created})
	}, ssm.Set, "1.31")
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return &region{sim: sim, aws: awsclient.Config{
		Region: "us-east-1", EC2Endpoint: hs.URL, SSMEndpoint: hs.URL, PricingEndpoint: hs.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		MaxBackoff:  20 * time.Millisecond, HTTPClient: &http.Client{},
	}}
}

// running counts the simulated instances that are pending or running.
func (r *region) running() int {
	n := 0
	for _, i := range r.sim.Instances() {
		if i.State == "pending" || i.State == "running" {
			n++
		}
	}
	return n
}

// installCRDs applies deploy/crds and waits until the API serves them.
func installCRDs(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	files, err := filepath.Glob("../deploy/crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("CRDs: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---")))) == 0 {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := c.Create(ctx, u); err != nil && !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("create %s: %v", u.GetName(), err)
			}
		}
	}
	waitUntil(t, 30*time.Second, "CRDs served", func() (bool, string) {
		for _, l := range []client.ObjectList{&karpv1.NodePoolList{}, &karpv1.NodeClaimList{}, &awsv1.EC2NodeClassList{}} {
			if err := c.List(ctx, l); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
}

// waitUntil polls cond every 200ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		last = msg
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (%s)", what, timeout, last)
	return 0
}

// kubelet marks bridged nodes Ready, as kwok or a kubelet would.
func kubelet(ctx context.Context, c client.Client) {
	for ctx.Err() == nil {
		var nodes corev1.NodeList
		if err := c.List(ctx, &nodes); err == nil {
			for i := range nodes.Items {
				n := &nodes.Items[i]
				ready := false
				for _, cond := range n.Status.Conditions {
					ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
				}
				if ready || n.DeletionTimestamp != nil {
					continue
				}
				now := metav1.Now()
				n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
					Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now,
				})
				_ = c.Status().Update(ctx, n)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// watcherEnv is a running watcher with its solver, launcher and region.
type watcherEnv struct {
	kube    client.Client
	region  *region
	solver  *countingSolver
	service watcherv1.WatcherServiceClient
}

func startWatcher(t *testing.T, ctx context.Context) *watcherEnv {
	t.Helper()
	scheme := watcher.Scheme()
	kube, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	installCRDs(ctx, t, kube)
	reg := newRegion(t)
	// The launcher reads EC2NodeClasses by name from the API server, through
	// the informer the service uses.
	classCtx, stopClasses := context.WithCancel(context.Background())
	t.Cleanup(stopClasses)
	nodeClasses, err := classes.NewCache(classCtx, cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = nodeClasses.Run(classCtx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if err := nodeClasses.WaitForSync(syncCtx); err != nil {
		t.Fatal(err)
	}
	svc, err := launcher.New(ctx, launcher.Config{AWS: reg.aws, Classes: nodeClasses, ClusterName: ec2sim.DefaultCluster, KubernetesVersion: "1.31"})
	if err != nil {
		t.Fatal(err)
	}
	launcherConn := serveGRPC(t, "launcher", func(s *grpc.Server) { launcherv1.RegisterLauncherServiceServer(s, svc) })
	solverConn := serveGRPC(t, "solver", func(s *grpc.Server) { solverv1.RegisterSolverServiceServer(s, solverapi.NewService()) })
	solver := &countingSolver{SolverServiceClient: solverv1.NewSolverServiceClient(solverConn)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	mgr, err := ctrl.NewManager(cluster.Config, manager.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		LeaderElection: true, LeaderElectionNamespace: "kube-system", LeaderElectionID: "flotilla-watcher-test",
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := watcher.Setup(ctx, mgr, watcher.Config{
		ClusterName: ec2sim.DefaultCluster, Solver: solver, Launcher: launcherv1.NewLauncherServiceClient(launcherConn),
		BatchIdle: time.Second, BatchMax: 10 * time.Second, DisruptionInterval: 2 * time.Second,
		GCInterval: 5 * time.Second, GCGrace: time.Minute, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	watcherConn := serveGRPC(t, "watcher", func(s *grpc.Server) { watcherv1.RegisterWatcherServiceServer(s, w.Service) })
	awsc, err := awsclient.New(ctx, reg.aws)
	if err != nil {
		t.Fatal(err)
	}
	bridge, err := nodebridge.New(nodebridge.Options{Kube: cluster.Client, EC2: awsc.EC2, ClusterName: ec2sim.DefaultCluster, Interval: 300 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	go func() { _ = mgr.Start(runCtx); done <- struct{}{} }()
	go func() { _ = bridge.Run(runCtx); done <- struct{}{} }()
	go func() { kubelet(runCtx, kube); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
	})
	return &watcherEnv{kube: kube, region: reg, solver: solver, service: watcherv1.NewWatcherServiceClient(watcherConn)}
}

func (e *watcherEnv) createPoolAndClass(ctx context.Context, t *testing.T) {
	t.Helper()
	class := &awsv1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: awsv1.EC2NodeClassSpec{
			Role:                       "KarpenterNodeRole",
			SubnetSelectorTerms:        []awsv1.SubnetSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: ec2sim.DefaultCluster}}},
			SecurityGroupSelectorTerms: []awsv1.SecurityGroupSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: ec2sim.DefaultCluster}}},
			AMISelectorTerms:           []awsv1.AMISelectorTerm{{Alias: "al2023@latest"}},
		},
	}
	if err := e.kube.Create(ctx, class); err != nil {
		t.Fatalf("create EC2NodeClass: %v", err)
	}
	zero := time.Duration(0)
	pool := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "general"},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{
				ObjectMeta: karpv1.ObjectMeta{Labels: map[string]string{"team": "web"}},
				Spec: karpv1.NodeClaimTemplateSpec{
					Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
						{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"on-demand"}}},
					},
					NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
				},
			},
			Disruption: karpv1.Disruption{
				ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized,
				ConsolidateAfter:    karpv1.NillableDuration{Duration: &zero},
				Budgets:             []karpv1.Budget{{Nodes: "100%"}},
			},
			Limits: karpv1.Limits{corev1.ResourceCPU: resource.MustParse("1000")},
		},
	}
	if err := e.kube.Create(ctx, pool); err != nil {
		t.Fatalf("create NodePool: %v", err)
	}
}

func pendingPod(name string, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("512Mi")},
			}}},
		},
	}
}

func (e *watcherEnv) claims(ctx context.Context, t *testing.T) []karpv1.NodeClaim {
	t.Helper()
	var l karpv1.NodeClaimList
	if err := e.kube.List(ctx, &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestWatcherProvisionsAndConsolidates runs the watcher in-process against
// the real kube-apiserver and kube-scheduler, with the real solver and the
// launcher over a simulated region: pending pods become NodeClaims and
// instances, the nodes that register are bound and initialized, the real
// scheduler binds the pods to them, and once the pods go, disruption
// removes the empty nodes and terminates their instances.
func TestWatcherProvisionsAndConsolidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := startWatcher(t, ctx)
	e.createPoolAndClass(ctx, t)
	waitUntil(t, 30*time.Second, "EC2NodeClass Ready", func() (bool, string) {
		nc := &awsv1.EC2NodeClass{}
		if err := e.kube.Get(ctx, client.ObjectKey{Name: "default"}, nc); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionReady), fmt.Sprint(nc.Status.Conditions)
	})

	const n = 30
	for i := range n {
		if err := e.kube.Create(ctx, pendingPod(fmt.Sprintf("web-%02d", i), "500m")); err != nil {
			t.Fatal(err)
		}
	}
	toClaims := waitUntil(t, 60*time.Second, "NodeClaims created", func() (bool, string) {
		return len(e.claims(ctx, t)) > 0, ""
	})
	solvesAtClaims := e.solver.solves.Load()
	toBound := waitUntil(t, 90*time.Second, "all pods bound by kube-scheduler", func() (bool, string) {
		var pods corev1.PodList
		if err := e.kube.List(ctx, &pods, client.InNamespace("default")); err != nil {
			return false, err.Error()
		}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == n, fmt.Sprintf("%d of %d bound", bound, n)
	})
	claims := e.claims(ctx, t)
	for _, c := range claims {
		if !meta.IsStatusConditionTrue(c.Status.Conditions, karpv1.ConditionInitialized) {
			waitUntil(t, 30*time.Second, "NodeClaim "+c.Name+" Initialized", func() (bool, string) {
				got := &karpv1.NodeClaim{}
				if err := e.kube.Get(ctx, client.ObjectKeyFromObject(&c), got); err != nil {
					return false, err.Error()
				}
				return meta.IsStatusConditionTrue(got.Status.Conditions, karpv1.ConditionInitialized), fmt.Sprint(got.Status.Conditions)
			})
		}
		if c.Annotations[karpv1.NodePoolHashAnnotationKey] == "" || c.Labels["team"] != "web" || !strings.HasPrefix(c.Name, "general-") {
			t.Errorf("NodeClaim %s: labels %v annotations %v", c.Name, c.Labels, c.Annotations)
		}
	}
	if got := e.region.running(); got != len(claims) {
		t.Errorf("%d instances running for %d NodeClaims", got, len(claims))
	}
	var nodes corev1.NodeList
	if err := e.kube.List(ctx, &nodes); err != nil {
		t.Fatal(err)
	}
	for _, node := range nodes.Items {
		for _, taint := range node.Spec.Taints {
			if taint.Key == karpv1.UnregisteredTaintKey {
				t.Errorf("node %s still has the unregistered taint", node.Name)
			}
		}
		if node.Labels[karpv1.NodeRegisteredLabelKey] != "true" || node.Labels[karpv1.NodeInitializedLabelKey] != "true" {
			t.Errorf("node %s labels %v", node.Name, node.Labels)
		}
	}
	state, err := e.service.GetState(ctx, &watcherv1.GetStateRequest{})
	if err != nil {
		t.Fatalf("GetState: %v", err)
	}
	if !state.Leader || state.LastSolve == nil || len(state.NodeClaims) != len(claims) || state.CostPerHour <= 0 {
		t.Errorf("GetState: leader %v, last solve %v, %d claims, cost %.4f", state.Leader, state.LastSolve, len(state.NodeClaims), state.CostPerHour)
	}
	t.Logf("%d pending pods: NodeClaims created after %s (%d NodeClaims, %d solve calls), all pods bound after %s, cost $%.4f/h",
		n, toClaims.Round(time.Millisecond), len(claims), solvesAtClaims, (toClaims + toBound).Round(time.Millisecond), state.CostPerHour)

	// Scale down: every pod goes, and disruption removes the empty nodes.
	if err := e.kube.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("default"), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	toEmpty := waitUntil(t, 90*time.Second, "empty nodes removed", func() (bool, string) {
		left := len(e.claims(ctx, t))
		return left == 0 && e.region.running() == 0, fmt.Sprintf("%d NodeClaims, %d instances", left, e.region.running())
	})
	waitUntil(t, 30*time.Second, "nodes deleted", func() (bool, string) {
		var nodes corev1.NodeList
		if err := e.kube.List(ctx, &nodes); err != nil {
			return false, err.Error()
		}
		return len(nodes.Items) == 0, fmt.Sprintf("%d nodes", len(nodes.Items))
	})
	t.Logf("empty nodes terminated %s after the pods were deleted; %d Solve and %d Consolidate calls in all",
		toEmpty.Round(time.Millisecond), e.solver.solves.Load(), e.solver.consolidates.Load())
}
