package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

const (
	// pinnedAMI is the example EC2NodeClass's alias; driftAMI the one the
	// ami_pinning subtest moves to.
	pinnedAMI = "al2023@v20240807"
	driftAMI  = "al2023@v20240903"
	// nodeK8sVersion is the launcher's --kubernetes-version.
	nodeK8sVersion = harness.NodeKubernetesVersion
	// e2eClass is the EC2NodeClass most subtests share.
	e2eClass = "e2e-default"
)

// TestE2E runs Flotilla end to end on one shared local cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok as the
// kubelets, ec2sim with its node bridge, an SQS emulator, and solver,
// launcher, watcher and interruption as real processes). Each subtest works in its own namespace with its own
// NodePools, isolated by a label and taint, and removes what it created.
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 28*time.Minute)
	defer cancel()
	ctrlMetrics, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := harness.Start(ctx, harness.Options{ExtraArgs: map[string][]string{
		harness.Watcher: {"--disruption-interval=2s", "--controller-metrics-addr=" + ctrlMetrics},
	}})
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.LogTails(40))
		}
	})
	if err != nil {
		t.Fatalf("start the cluster: %v", err)
	}
	t.Logf("cluster up in %s: %s", time.Since(start).Round(time.Millisecond), formatTimes(c.StartTimes()))
	e := newE2EEnv(t, c)
	e.proc = &watcherProc{c: c, controllerMetrics: ctrlMetrics}
	t.Cleanup(func() { e.finish(t) })
	e.nodeClass(ctx, t, e2eClass, pinnedAMI)

	subtests := []struct {
		name string
		run  func(context.Context, *testing.T, *e2eEnv)
	}{
		{"provision_spike", testProvisionSpike},
		{"gpu_nodepool", testGPUNodePool},
		{"team_nodepool", testTeamNodePool},
		{"nodepool_limits", testNodePoolLimits},
		{"instance_exclusion", testInstanceExclusion},
		{"ami_pinning", testAMIPinning},
		{"consolidation", testConsolidation},
		{"spot_interruption", testSpotInterruption},
		{"restart_safety", testRestartSafety},
		{"karpenter_adoption", testKarpenterAdoption},
		{"scale_1000", testScale1000},
		{"dashboards", testDashboards},
	}
	for _, st := range subtests {
		begin, ran := time.Now(), false
		t.Run(st.name, func(t *testing.T) { ran = true; st.run(ctx, t, e) })
		if !ran {
			continue
		}
		e.summary.set(t, "duration/"+st.name, "%s", time.Since(begin).Round(100*time.Millisecond))
		if kib, err := e.proc.sample(); err == nil {
			t.Logf("watcher VmHWM after %s: %.1f MiB", st.name, float64(kib)/1024)
		}
	}
}

// finish records the watcher's peak memory and writes the summary and the
// logs to a directory that outlives the cluster.
func (e *e2eEnv) finish(t *testing.T) {
	if _, err := e.proc.sample(); err != nil {
		t.Logf("watcher VmHWM: %v", err)
	}
	e.summary.set(t, "watcher_peak_rss", "%.1f MiB (VmHWM; Karpenter allows 260 MB)", float64(e.proc.peakKiB)/1024)
	dir := os.Getenv("FLOTILLA_E2E_LOG_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "flotilla-e2e", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Logf("log dir: %v", err)
		return
	}
	for _, path := range []string{filepath.Join(e.c.LogDir(), "e2e-summary.txt"), filepath.Join(dir, "e2e-summary.txt")} {
		if err := e.summary.write(path); err != nil {
			t.Logf("summary: %v", err)
		}
	}
	if err := e.c.Logs(dir); err != nil {
		t.Logf("copy logs: %v", err)
	}
	t.Logf("summary and logs in %s", dir)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// testProvisionSpike: a 200-replica Deployment goes Running through the
// real kube-scheduler on Flotilla nodes, nothing stays Pending, and there
// are no more nodes than the solver planned.
func testProvisionSpike(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-spike", "spike"
	e.pool(ctx, t, "generalcompute.yaml", pool, suite, e2eClass, nil)
	ns := e.namespace(ctx, t, "e2e-spike")
	before := e.counters(ctx)
	e.deployment(ctx, t, ns, "spike", 200, podSpec(suite, "250m", "256Mi"), nil)
	took := e.waitRunning(ctx, t, 4*time.Minute, ns, "app=spike", 200)
	e.summary.set(t, "provision_spike/200_pods_running", "%s", took.Round(time.Millisecond))
	e.perSolve(t, "provision_spike/api_calls_per_solve", before, e.counters(ctx))

	nodes, err := e.nodes(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	planned, err := e.metric(ctx, harness.Watcher, "flotilla_watcher_nodeclaims_created_total", `nodepool="`+pool+`"`)
	if err != nil {
		t.Fatal(err)
	}
	state, err := e.watcher.GetState(ctx, &watcherv1.GetStateRequest{})
	if err != nil {
		t.Fatalf("GetState: %v", err)
	}
	inState := 0
	for _, nc := range state.GetNodeClaims() {
		if nc.GetNodePool() == pool {
			inState++
		}
	}
	t.Logf("%d nodes for 200 pods; %0.f NodeClaims planned and created; GetState: %d NodeClaims of the pool, last solve %d pods into %d NodeClaims at $%.4f/h (lower bound $%.4f/h)",
		len(nodes), planned, inState, state.GetLastSolve().GetPods(), state.GetLastSolve().GetNodeClaims(),
		state.GetLastSolve().GetCostPerHour(), state.GetLastSolve().GetLowerBoundPerHour())
	if len(nodes) == 0 || float64(len(nodes)) > planned {
		t.Errorf("%d nodes, %0.f NodeClaims planned", len(nodes), planned)
	}
	if inState != len(nodes) {
		t.Errorf("GetState lists %d NodeClaims of %s, the cluster has %d nodes", inState, pool, len(nodes))
	}
	pods, err := e.pods(ctx, ns, "app=spike")
	if err != nil {
		t.Fatal(err)
	}
	byName := nodeMap(nodes)
	for _, p := range pods {
		if byName[p.Spec.NodeName] == nil {
			t.Errorf("pod %s runs on %q, not a node of %s", p.Name, p.Spec.NodeName, pool)
		}
	}
	e.summary.set(t, "provision_spike/nodes", "%d nodes (%0.f planned)", len(nodes), planned)
}

// gpuSpec is a pod asking for one GPU and tolerating the GPU taint.
func gpuSpec(suite string) corev1.PodSpec {
	spec := podSpec(suite, "1", "4Gi")
	gpu := resource.MustParse("1")
	spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = gpu
	spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": gpu}
	spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	return spec
}

// testGPUNodePool: the GPU NodePool (tainted) and a general one; GPU pods
// land on p3 nodes, other pods never do.
func testGPUNodePool(ctx context.Context, t *testing.T, e *e2eEnv) {
	const suite = "gpu"
	e.pool(ctx, t, "gpu.yaml", "e2e-gpu", suite, e2eClass, nil)
	e.pool(ctx, t, "generalcompute.yaml", "e2e-gpu-general", suite, e2eClass, nil)
	ns := e.namespace(ctx, t, "e2e-gpu")
	e.deployment(ctx, t, ns, "train", 3, gpuSpec(suite), nil)
	e.deployment(ctx, t, ns, "web", 10, podSpec(suite, "500m", "512Mi"), nil)
	took := e.waitRunning(ctx, t, 4*time.Minute, ns, "", 13)
	e.summary.set(t, "gpu_nodepool/13_pods_running", "%s", took.Round(time.Millisecond))
	nodes := e.nodesByName(ctx, t)
	pods, err := e.pods(ctx, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		n := nodes[p.Spec.NodeName]
		if n == nil {
			t.Errorf("pod %s: node %q not found", p.Name, p.Spec.NodeName)
			continue
		}
		typ, pool := n.Labels[corev1.LabelInstanceTypeStable], n.Labels[karpv1.NodePoolLabelKey]
		isGPU := strings.HasPrefix(typ, "p3.")
		switch p.Labels["app"] {
		case "train":
			if !isGPU || pool != "e2e-gpu" {
				t.Errorf("GPU pod %s on %s (%s, nodepool %s), want a p3 node of e2e-gpu", p.Name, n.Name, typ, pool)
			}
		default:
			if isGPU || pool == "e2e-gpu" {
				t.Errorf("pod %s on GPU node %s (%s, nodepool %s)", p.Name, n.Name, typ, pool)
			}
		}
	}
	insts, err := e.instances(ctx, "e2e-gpu")
	if err != nil {
		t.Fatal(err)
	}
	general, err := e.instances(ctx, "e2e-gpu-general")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GPU pool: %s; general pool: %s", typesOf(insts), typesOf(general))
}

// nodesByName lists every node by name.
func (e *e2eEnv) nodesByName(ctx context.Context, t *testing.T) map[string]*corev1.Node {
	t.Helper()
	l, err := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return nodeMap(l.Items)
}

// testTeamNodePool: the billing-team label and node affinity route a
// team's pods to its NodePool; other pods go to the general one.
func testTeamNodePool(ctx context.Context, t *testing.T, e *e2eEnv) {
	const suite = "team"
	e.pool(ctx, t, "team.yaml", "e2e-team", suite, e2eClass, nil)
	e.pool(ctx, t, "generalcompute.yaml", "e2e-team-general", suite, e2eClass, nil)
	ns := e.namespace(ctx, t, "e2e-team")
	team := podSpec(suite, "500m", "512Mi")
	team.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "billing-team", Operator: corev1.NodeSelectorOpIn, Values: []string{"my-team"}},
		}}},
	}}}
	team.Tolerations = append(team.Tolerations, corev1.Toleration{Key: "billing-team", Operator: corev1.TolerationOpEqual, Value: "my-team", Effect: corev1.TaintEffectNoSchedule})
	e.deployment(ctx, t, ns, "team-app", 6, team, nil)
	e.deployment(ctx, t, ns, "other-app", 6, podSpec(suite, "500m", "512Mi"), nil)
	took := e.waitRunning(ctx, t, 4*time.Minute, ns, "", 12)
	e.summary.set(t, "team_nodepool/12_pods_running", "%s", took.Round(time.Millisecond))
	nodes := e.nodesByName(ctx, t)
	pods, err := e.pods(ctx, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		n := nodes[p.Spec.NodeName]
		if n == nil {
			t.Errorf("pod %s: node %q not found", p.Name, p.Spec.NodeName)
			continue
		}
		pool, billing := n.Labels[karpv1.NodePoolLabelKey], n.Labels["billing-team"]
		if p.Labels["app"] == "team-app" {
			if pool != "e2e-team" || billing != "my-team" {
				t.Errorf("team pod %s on %s (nodepool %s, billing-team %q)", p.Name, n.Name, pool, billing)
			}
		} else if pool != "e2e-team-general" || billing != "" {
			t.Errorf("other pod %s on %s (nodepool %s, billing-team %q)", p.Name, n.Name, pool, billing)
		}
	}
}

// poolCPU sums the cpu capacity of a NodePool's NodeClaims and nodes.
func (e *e2eEnv) poolCPU(ctx context.Context, t *testing.T, pool string) (claims, nodes resource.Quantity) {
	for _, c := range e.claims(ctx, t, pool) {
		q := c.Status.Capacity[corev1.ResourceCPU]
		claims.Add(q)
	}
	ns, _ := e.nodes(ctx, pool)
	for _, n := range ns {
		nodes.Add(n.Status.Capacity[corev1.ResourceCPU])
	}
	return claims, nodes
}

// testNodePoolLimits: provisioning stops at the NodePool's cpu limit with
// an event, and the pool's usage never exceeds it.
func testNodePoolLimits(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-limits", "limits"
	limit := resource.MustParse("8")
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, karpv1.NodeSelectorRequirementWithMinValues{
			NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5.large", "m5.xlarge"}}})
		np.Spec.Limits = karpv1.Limits{corev1.ResourceCPU: limit}
	})
	ns := e.namespace(ctx, t, "e2e-limits")
	e.deployment(ctx, t, ns, "capped", 40, podSpec(suite, "500m", "512Mi"), nil)

	var mu sync.Mutex
	var peak resource.Quantity
	var over []string
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for sctx.Err() == nil {
			claims, nodes := e.poolCPU(sctx, t, pool)
			np := &karpv1.NodePool{}
			used := resource.Quantity{}
			if err := e.crc.Get(sctx, client.ObjectKey{Name: pool}, np); err == nil {
				used = np.Status.Resources[corev1.ResourceCPU]
			}
			mu.Lock()
			for _, q := range []resource.Quantity{claims, nodes, used} {
				if q.Cmp(peak) > 0 {
					peak = q.DeepCopy()
				}
				if q.Cmp(limit) > 0 {
					over = append(over, fmt.Sprintf("NodeClaims %s, nodes %s, status %s", claims.String(), nodes.String(), used.String()))
				}
			}
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	})
	defer func() { stop(); wg.Wait() }()

	var events []string
	took := poll(ctx, t, 3*time.Minute, "provisioning stopped at the limit with an event", func() (bool, string) {
		pods, err := e.pods(ctx, ns, "app=capped")
		if err != nil {
			return false, err.Error()
		}
		c := countPods(pods)
		events, err = e.events(ctx, ns, "FailedScheduling", "limit")
		if err != nil {
			return false, err.Error()
		}
		return c.running > 0 && c.pending > 0 && len(events) > 0, fmt.Sprintf("%d running, %d pending, %d limit events", c.running, c.pending, len(events))
	})
	// Let the watcher run a few more batches; nothing more may launch.
	claimsAt := len(e.claims(ctx, t, pool))
	time.Sleep(15 * time.Second)
	stop()
	wg.Wait()
	claimsAfter := len(e.claims(ctx, t, pool))
	pods, err := e.pods(ctx, ns, "app=capped")
	if err != nil {
		t.Fatal(err)
	}
	c := countPods(pods)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("limit cpu=%s: %d NodeClaims, %d pods running, %d pending after %s; peak cpu %s; event %q", limit.String(), claimsAfter, c.running, c.pending,
		took.Round(time.Millisecond), peak.String(), events[0])
	if len(over) > 0 {
		t.Errorf("usage exceeded the limit %d times, first: %s", len(over), over[0])
	}
	if claimsAfter > claimsAt {
		t.Errorf("NodeClaims grew from %d to %d after the limit was reached", claimsAt, claimsAfter)
	}
	if c.running == 0 || c.pending == 0 {
		t.Errorf("%d running, %d pending: the limit did not bind", c.running, c.pending)
	}
	e.summary.set(t, "nodepool_limits/peak_cpu", "%s of limit %s (%d pods pending)", peak.String(), limit.String(), c.pending)
}

// excludedTypes are the cheapest types the exclusion pool would pick.
var excludedTypes = []string{"c5.large", "c5.xlarge", "m5.large", "m5.xlarge"}

// testInstanceExclusion: types in a NotIn list are never launched.
func testInstanceExclusion(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-exclusion", "exclusion"
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements,
			karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
				Key: "karpenter.k8s.aws/instance-family", Operator: corev1.NodeSelectorOpIn, Values: []string{"c5", "m5"}}},
			karpv1.NodeSelectorRequirementWithMinValues{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
				Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpNotIn, Values: excludedTypes}})
	})
	ns := e.namespace(ctx, t, "e2e-exclusion")
	e.deployment(ctx, t, ns, "small", 12, podSpec(suite, "400m", "512Mi"), nil)
	e.waitRunning(ctx, t, 4*time.Minute, ns, "app=small", 12)
	insts, err := e.instances(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) == 0 {
		t.Fatal("no instance launched")
	}
	for _, i := range insts {
		if slices.Contains(excludedTypes, string(i.InstanceType)) {
			t.Errorf("instance %s is %s, which the NodePool excludes", aws.ToString(i.InstanceId), i.InstanceType)
		}
	}
	for _, c := range e.claims(ctx, t, pool) {
		if typ := c.Labels[corev1.LabelInstanceTypeStable]; slices.Contains(excludedTypes, typ) {
			t.Errorf("NodeClaim %s is %s", c.Name, typ)
		}
	}
	t.Logf("launched %s", typesOf(insts))
}

// amiFor reads ec2sim's SSM parameter of an al2023 alias.
func (e *e2eEnv) amiFor(ctx context.Context, t *testing.T, alias string) string {
	t.Helper()
	version := strings.TrimPrefix(alias, "al2023@")
	path, err := eksami.Path(eksami.FamilyAL2023, nodeK8sVersion, eksami.ArchX86_64, eksami.VariantStandard, version)
	if err != nil {
		t.Fatal(err)
	}
	client := ssm.New(ssm.Options{Region: e.c.Region(), BaseEndpoint: aws.String(e.c.EC2Endpoint()), Credentials: e.ec2.Options().Credentials,
		HTTPClient: e.ec2.Options().HTTPClient})
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(path)})
	if err != nil {
		t.Fatalf("SSM %s: %v", path, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// testAMIPinning: al2023@v20240807 launches exactly that image; changing
// the pin drifts the nodes, which are replaced within the budget.
func testAMIPinning(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite, class = "e2e-ami", "ami", "e2e-ami"
	e.nodeClass(ctx, t, class, pinnedAMI)
	e.pool(ctx, t, "", pool, suite, class, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, karpv1.NodeSelectorRequirementWithMinValues{
			NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5.large"}}})
		np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmpty
		np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "1"}}
	})
	ns := e.namespace(ctx, t, "e2e-ami")
	e.deployment(ctx, t, ns, "pinned", 3, podSpec(suite, "1200m", "1Gi"), nil)
	e.waitRunning(ctx, t, 3*time.Minute, ns, "app=pinned", 3)
	want := e.amiFor(ctx, t, pinnedAMI)
	next := e.amiFor(ctx, t, driftAMI)
	insts, err := e.instances(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 3 {
		t.Errorf("%d instances (%s), want 3 m5.large", len(insts), typesOf(insts))
	}
	for _, i := range insts {
		if got := aws.ToString(i.ImageId); got != want {
			t.Errorf("instance %s runs %s, want %s (%s)", aws.ToString(i.InstanceId), got, want, pinnedAMI)
		}
	}
	old := map[string]bool{}
	for _, c := range e.claims(ctx, t, pool) {
		old[c.Name] = true
	}

	nc := &awsv1.EC2NodeClass{}
	if err := e.crc.Get(ctx, client.ObjectKey{Name: class}, nc); err != nil {
		t.Fatal(err)
	}
	nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: driftAMI}}
	if err := e.crc.Update(ctx, nc); err != nil {
		t.Fatalf("move the pin to %s: %v", driftAMI, err)
	}
	maxDeleting := 0
	took := poll(ctx, t, 6*time.Minute, "drifted nodes replaced", func() (bool, string) {
		claims := e.claims(ctx, t, pool)
		deleting, oldLeft := 0, 0
		for _, c := range claims {
			if c.DeletionTimestamp != nil {
				deleting++
			}
			if old[c.Name] {
				oldLeft++
			}
		}
		maxDeleting = max(maxDeleting, deleting)
		insts, err := e.instances(ctx, pool)
		if err != nil {
			return false, err.Error()
		}
		onNext := 0
		for _, i := range insts {
			if aws.ToString(i.ImageId) == next {
				onNext++
			}
		}
		pods, err := e.pods(ctx, ns, "app=pinned")
		if err != nil {
			return false, err.Error()
		}
		pc := countPods(pods)
		return oldLeft == 0 && onNext == len(insts) && pc.running == 3,
			fmt.Sprintf("%d old NodeClaims left, %d deleting, %d of %d instances on %s, %d pods running", oldLeft, deleting, onNext, len(insts), next, pc.running)
	})
	// No replacement attempt may leave an instance behind (the garbage
	// collector would only find it minutes later).
	poll(ctx, t, 30*time.Second, "one instance per NodeClaim after the drift", func() (bool, string) { return e.oneToOne(ctx, t, pool) })
	if maxDeleting > 1 {
		t.Errorf("%d NodeClaims were being deleted at once; the budget allows 1", maxDeleting)
	}
	e.summary.set(t, "ami_pinning/drift_replaced", "3 nodes in %s, at most %d disrupted at once", took.Round(time.Millisecond), maxDeleting)
}

// testConsolidation: scaling down removes empty and underutilized nodes
// while the pods stay Running, no PodDisruptionBudget is violated, and the
// node running a do-not-disrupt pod stays.
func testConsolidation(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-consolidation", "consolidation"
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, karpv1.NodeSelectorRequirementWithMinValues{
			NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn,
				Values: []string{"c5.large", "c5.xlarge", "m5.large", "m5.xlarge"}}})
	})
	ns := e.namespace(ctx, t, "e2e-consolidation")
	const minAvailable = 5
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: new(intstr.FromInt32(minAvailable)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}},
	}
	if _, err := e.kube.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deployment(ctx, t, ns, "app", 24, podSpec(suite, "500m", "512Mi"), nil)
	e.deployment(ctx, t, ns, "pinned", 1, podSpec(suite, "500m", "512Mi"), map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"})
	e.waitRunning(ctx, t, 4*time.Minute, ns, "", 25)
	pinned, err := e.pods(ctx, ns, "app=pinned")
	if err != nil || len(pinned) != 1 {
		t.Fatalf("pinned pod: %v (%d)", err, len(pinned))
	}
	pinnedNode, pinnedUID := pinned[0].Spec.NodeName, pinned[0].UID
	startNodes, err := e.nodes(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	disruptedBefore := e.disrupted(ctx)
	t.Logf("%d nodes for 25 pods; the do-not-disrupt pod runs on %s", len(startNodes), pinnedNode)

	e.scale(ctx, t, ns, "app", 6)
	e.waitRunning(ctx, t, 2*time.Minute, ns, "app=app", 6)
	// From here the PDB must hold: at least minAvailable app pods Running
	// at every look, and the PDB's own status never below desired.
	var violations []string
	minRunning := 6
	stable, lastCount, stableSince := false, -1, time.Now()
	took := poll(ctx, t, 5*time.Minute, "consolidation settled", func() (bool, string) {
		pods, err := e.pods(ctx, ns, "app=app")
		if err != nil {
			return false, err.Error()
		}
		c := countPods(pods)
		minRunning = min(minRunning, c.running)
		if c.running < minAvailable {
			violations = append(violations, fmt.Sprintf("%d app pods running", c.running))
		}
		if got, err := e.kube.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "app", metav1.GetOptions{}); err == nil &&
			got.Status.ObservedGeneration == got.Generation && got.Status.CurrentHealthy < got.Status.DesiredHealthy {
			violations = append(violations, fmt.Sprintf("PDB healthy %d < desired %d", got.Status.CurrentHealthy, got.Status.DesiredHealthy))
		}
		nodes, err := e.nodes(ctx, pool)
		if err != nil {
			return false, err.Error()
		}
		if len(nodes) != lastCount {
			lastCount, stableSince = len(nodes), time.Now()
		}
		stable = len(nodes) < len(startNodes) && time.Since(stableSince) > 20*time.Second && c.running == 6 && c.pending == 0
		return stable, fmt.Sprintf("%d nodes (from %d), %d app pods running", len(nodes), len(startNodes), c.running)
	})
	poll(ctx, t, 30*time.Second, "one instance per NodeClaim after consolidation", func() (bool, string) { return e.oneToOne(ctx, t, pool) })
	endNodes, err := e.nodes(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if nodeMap(endNodes)[pinnedNode] == nil {
		t.Errorf("node %s with the do-not-disrupt pod was removed", pinnedNode)
	}
	pinned, err = e.pods(ctx, ns, "app=pinned")
	if err != nil || len(pinned) != 1 || pinned[0].UID != pinnedUID || pinned[0].Status.Phase != corev1.PodRunning {
		t.Errorf("the do-not-disrupt pod was disrupted: %v %d pods", err, len(pinned))
	}
	if len(violations) > 0 {
		t.Errorf("PDB violated %d times, first: %s", len(violations), violations[0])
	}
	all, err := e.pods(ctx, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := countPods(all); c.running != 7 || c.pending != 0 {
		t.Errorf("after consolidation %d pods running, %d pending; want 7 running", c.running, c.pending)
	}
	after := e.disrupted(ctx)
	reasons := map[string]float64{}
	for k, v := range after {
		reasons[k] = v - disruptedBefore[k]
	}
	t.Logf("consolidated %d nodes to %d in %s (minimum %d app pods running); disrupted by reason %v", len(startNodes), len(endNodes), took.Round(time.Millisecond), minRunning, reasons)
	if reasons["Empty"]+reasons["Underutilized"] < 1 {
		t.Errorf("no node disrupted as Empty or Underutilized: %v", reasons)
	}
	e.summary.set(t, "consolidation/nodes", "%d -> %d in %s, min %d of %d app pods running (PDB minAvailable %d), reasons %v",
		len(startNodes), len(endNodes), took.Round(time.Millisecond), minRunning, 6, minAvailable, reasons)
}

// disrupted reads the watcher's NodeClaims disrupted by reason.
func (e *e2eEnv) disrupted(ctx context.Context) map[string]float64 {
	out := map[string]float64{}
	for _, r := range []string{"Empty", "Underutilized", "Drifted", "Expired"} {
		out[r], _ = e.metric(ctx, harness.Watcher, "flotilla_watcher_nodeclaims_disrupted_total", `reason="`+r+`"`)
	}
	return out
}

// Kill points of restart_safety: before the batch's first NodeClaim
// exists, while the batch is being created, and once all of it exists.
const (
	killBefore = "before"
	killDuring = "during"
	killAfter  = "after"
)

// restartRuns is how many times restart_safety kills the watcher:
// FLOTILLA_E2E_RESTART_RUNS (kill points at random, from a logged seed)
// or, by default, once at each kill point.
func restartRuns(t *testing.T) []string {
	n, _ := strconv.Atoi(os.Getenv("FLOTILLA_E2E_RESTART_RUNS"))
	if n <= 0 {
		return []string{killBefore, killDuring, killAfter}
	}
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("FLOTILLA_E2E_RESTART_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("restart_safety: %d runs, kill points from seed %d (FLOTILLA_E2E_RESTART_SEED)", n, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	points := []string{killBefore, killDuring, killAfter}
	out := make([]string, n)
	for i := range out {
		out[i] = points[rng.IntN(len(points))]
	}
	return out
}

// testRestartSafety: killing the watcher before, during or after it
// creates a batch's NodeClaims leaves, after the restart, no duplicate
// NodeClaim and no leaked instance.
func testRestartSafety(ctx context.Context, t *testing.T, e *e2eEnv) {
	for i, point := range restartRuns(t) {
		t.Run(fmt.Sprintf("%02d_%s", i+1, point), func(t *testing.T) { restartOnce(ctx, t, e, i+1, point) })
	}
}

func restartOnce(ctx context.Context, t *testing.T, e *e2eEnv, run int, point string) {
	const suite = "restart"
	pool := fmt.Sprintf("e2e-restart-%d", run)
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, karpv1.NodeSelectorRequirementWithMinValues{
			NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"c5.large", "m5.large"}}})
	})
	ns := e.namespace(ctx, t, pool)
	e.deployment(ctx, t, ns, "burst", 30, podSpec(suite, "700m", "512Mi"), nil)
	switch point {
	case killDuring:
		poll(ctx, t, 2*time.Minute, "the batch's first NodeClaim", func() (bool, string) {
			return len(e.claims(ctx, t, pool)) > 0, "none yet"
		})
	case killAfter:
		poll(ctx, t, 2*time.Minute, "the batch's 15 NodeClaims", func() (bool, string) {
			n := len(e.claims(ctx, t, pool))
			return n >= 15, fmt.Sprintf("%d so far", n)
		})
	}
	claims := e.claims(ctx, t, pool)
	launched := 0
	for _, c := range claims {
		if c.Status.ProviderID != "" {
			launched++
		}
	}
	t.Logf("killing the watcher %s the batch: %d NodeClaims, %d of them launched", point, len(claims), launched)
	e.proc.killAndRestart(ctx, t)
	took := e.waitRunning(ctx, t, 4*time.Minute, ns, "app=burst", 30)
	var msg string
	settle := poll(ctx, t, 3*time.Minute, "one instance per NodeClaim", func() (bool, string) {
		var ok bool
		ok, msg = e.oneToOne(ctx, t, pool)
		return ok, msg
	})
	// Both types take two of the pods: 15 NodeClaims is the plan, and any
	// more is capacity provisioned twice across the restart.
	if n := len(e.claims(ctx, t, pool)); n > 15 {
		t.Errorf("%d NodeClaims for 30 pods of 700m on 2-vCPU types; 15 hold them", n)
	}
	t.Logf("after the restart: pods Running in %s, instances matched NodeClaims %s later: %s", took.Round(time.Millisecond), settle.Round(time.Millisecond), msg)
	e.summary.set(t, fmt.Sprintf("restart_safety/%02d_%s", run, point), "30 pods Running %s after the kill (%d NodeClaims, %d launched at the kill); %s",
		took.Round(time.Millisecond), len(claims), launched, msg)
}

// oneToOne checks that every instance of pool has exactly one NodeClaim and
// every NodeClaim at most one instance.
func (e *e2eEnv) oneToOne(ctx context.Context, t *testing.T, pool string) (bool, string) {
	insts, err := e.instances(ctx, pool)
	if err != nil {
		return false, err.Error()
	}
	claimsOf := map[string][]string{}
	for _, c := range e.claims(ctx, t, pool) {
		if c.Status.ProviderID == "" {
			return false, "NodeClaim " + c.Name + " not launched"
		}
		id := c.Status.ProviderID[strings.LastIndex(c.Status.ProviderID, "/")+1:]
		claimsOf[id] = append(claimsOf[id], c.Name)
	}
	var problems []string
	for _, i := range insts {
		id := aws.ToString(i.InstanceId)
		if n := len(claimsOf[id]); n != 1 {
			problems = append(problems, fmt.Sprintf("instance %s has %d NodeClaims %v", id, n, claimsOf[id]))
		}
		delete(claimsOf, id)
	}
	for id, names := range claimsOf {
		problems = append(problems, fmt.Sprintf("NodeClaims %v name instance %s, which is not running", names, id))
	}
	if len(problems) > 0 {
		return false, strings.Join(problems, "; ")
	}
	return true, fmt.Sprintf("%d instances, %d NodeClaims, one to one", len(insts), len(insts))
}

// testScale1000: 1,000 pods pending to all Running (Karpenter's kwok suite
// allows 2 minutes).
func testScale1000(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-scale", "scale"
	e.pool(ctx, t, "generalcompute.yaml", pool, suite, e2eClass, nil)
	ns := e.namespace(ctx, t, "e2e-scale")
	before := e.counters(ctx)
	begin := time.Now()
	e.deployment(ctx, t, ns, "scale", 1000, podSpec(suite, "100m", "128Mi"), nil)
	var allPending time.Duration
	took := poll(ctx, t, 6*time.Minute, "1000 pods Running", func() (bool, string) {
		pods, err := e.pods(ctx, ns, "app=scale")
		if err != nil {
			return false, err.Error()
		}
		c := countPods(pods)
		if allPending == 0 && c.total == 1000 {
			allPending = time.Since(begin)
		}
		return c.running == 1000, fmt.Sprintf("%d pods, %d running, %d pending", c.total, c.running, c.pending)
	})
	e.perSolve(t, "scale_1000/api_calls_per_solve", before, e.counters(ctx))
	nodes, _ := e.nodes(ctx, pool)
	insts, _ := e.instances(ctx, pool)
	e.summary.set(t, "scale_1000/pending_to_running", "%s from the Deployment's creation (all 1000 pods existed after %s; %s after that); %d nodes: %s",
		took.Round(time.Millisecond), allPending.Round(time.Millisecond), (took - allPending).Round(time.Millisecond), len(nodes), typesOf(insts))
	if took > 2*time.Minute {
		t.Logf("NOTE: %s is over Karpenter's 2 minute allowance for 1,000 pods", took.Round(time.Second))
	}
}
