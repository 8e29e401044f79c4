package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// Every E2E NodePool carries the label and taint suiteKey=<subtest>, and
// every pod of a subtest selects and tolerates them, so that subtests
// sharing the cluster never place pods on each other's nodes.
const suiteKey = "e2e.flotilla.io/suite"

// e2eEnv is the shared cluster of TestE2E with clients for it.
type e2eEnv struct {
	c       harness.Cluster
	kube    kubernetes.Interface
	crc     client.Client
	watcher watcherv1.WatcherServiceClient
	ec2     *ec2.Client
	proc    *watcherProc
	summary *summary
}

func newE2EEnv(t *testing.T, c harness.Cluster) *e2eEnv {
	t.Helper()
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 200, 400
	crc, err := client.New(cfg, client.Options{Scheme: watcher.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialAs(harness.Watcher, harness.OperatorIdentity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &e2eEnv{c: c, kube: kube, crc: crc, watcher: watcherv1.NewWatcherServiceClient(conn), ec2: c.EC2(),
		summary: &summary{values: map[string]string{}}}
}

// summary collects the measured numbers, logged and written to a file.
type summary struct {
	mu     sync.Mutex
	values map[string]string
}

func (s *summary) set(t *testing.T, key, format string, args ...any) {
	t.Helper()
	v := fmt.Sprintf(format, args...)
	t.Logf("measure %s = %s", key, v)
	s.mu.Lock()
	s.values[key] = v
	s.mu.Unlock()
}

func (s *summary) write(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.values))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, s.values[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// poll calls cond every interval until it returns true, failing the test
// after timeout with the last message cond gave.
func poll(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		last = msg
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s (%s)", what, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// loadExample reads one of examples/karpenter/*.yaml into obj.
func loadExample(t *testing.T, name string, obj any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", "karpenter", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// nodeClass creates an EC2NodeClass from the example, discovering the
// simulator's subnets and security group, pinned to alias, and waits until
// it is Ready.
func (e *e2eEnv) nodeClass(ctx context.Context, t *testing.T, name, alias string) *awsv1.EC2NodeClass {
	t.Helper()
	nc := &awsv1.EC2NodeClass{}
	loadExample(t, "ec2nodeclass.yaml", nc)
	nc.Name = name
	nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: alias}}
	disc := map[string]string{"karpenter.sh/discovery": e.c.Name()}
	nc.Spec.SubnetSelectorTerms = []awsv1.SubnetSelectorTerm{{Tags: disc}}
	nc.Spec.SecurityGroupSelectorTerms = []awsv1.SecurityGroupSelectorTerm{{Tags: disc}}
	if err := e.crc.Create(ctx, nc); err != nil {
		t.Fatalf("create EC2NodeClass %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.crc.Delete(context.Background(), nc) })
	poll(ctx, t, time.Minute, "EC2NodeClass "+name+" Ready", func() (bool, string) {
		got := &awsv1.EC2NodeClass{}
		if err := e.crc.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
			return false, err.Error()
		}
		for _, c := range got.Status.Conditions {
			if c.Type == karpv1.ConditionReady {
				return c.Status == metav1.ConditionTrue, c.Message
			}
		}
		return false, "no Ready condition"
	})
	return nc
}

// pool prepares a NodePool from an example (or an empty one when example
// is ""), renamed, isolated to suite, on class, with a short
// consolidateAfter; mutate adjusts it before it is created. The NodePool
// and everything it launched are removed when the test ends.
func (e *e2eEnv) pool(ctx context.Context, t *testing.T, example, name, suite, class string, mutate func(*karpv1.NodePool)) *karpv1.NodePool {
	t.Helper()
	np := &karpv1.NodePool{}
	if example != "" {
		loadExample(t, example, np)
	} else {
		np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{{NodeSelectorRequirement: corev1.NodeSelectorRequirement{
			Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"on-demand"}}}}
		np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized
	}
	np.Name = name
	if np.Spec.Template.ObjectMeta.Labels == nil {
		np.Spec.Template.ObjectMeta.Labels = map[string]string{}
	}
	np.Spec.Template.ObjectMeta.Labels[suiteKey] = suite
	np.Spec.Template.Spec.Taints = append(np.Spec.Template.Spec.Taints, corev1.Taint{Key: suiteKey, Value: suite, Effect: corev1.TaintEffectNoSchedule})
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: class}
	after := 5 * time.Second
	np.Spec.Disruption.ConsolidateAfter = karpv1.NillableDuration{Duration: &after}
	// The examples' business-hours budget would block Underutilized and
	// Drifted disruption while the suite runs on a weekday.
	np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "100%"}}
	if mutate != nil {
		mutate(np)
	}
	if err := e.crc.Create(ctx, np); err != nil {
		t.Fatalf("create NodePool %s: %v", name, err)
	}
	t.Cleanup(func() { e.removePool(t, name) })
	return np
}

// removePool deletes a NodePool's NodeClaims and the NodePool, and waits
// until their instances are terminated and their nodes gone.
func (e *e2eEnv) removePool(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_ = e.crc.DeleteAllOf(ctx, &karpv1.NodeClaim{}, client.MatchingLabels{karpv1.NodePoolLabelKey: name})
	_ = e.crc.Delete(ctx, &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}})
	for ctx.Err() == nil {
		claims := e.claims(ctx, t, name)
		insts, err := e.instances(ctx, name)
		nodes, _ := e.nodes(ctx, name)
		if err == nil && len(claims) == 0 && len(insts) == 0 && len(nodes) == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("cleanup of NodePool %s: NodeClaims, instances or nodes remain after 3m", name)
}

// namespace creates a namespace that is deleted (with its pods) at the end.
func (e *e2eEnv) namespace(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, time.Minute, "default ServiceAccount in "+name, func() (bool, string) {
		_, err := e.kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		zero := int64(0)
		_ = e.kube.AppsV1().Deployments(name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = e.kube.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		_ = e.kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		for ctx.Err() == nil {
			pods, err := e.kube.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
			if err == nil && len(pods.Items) == 0 {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	return name
}

// podSpec asks for cpu and memory, selecting and tolerating suite's nodes.
func podSpec(suite, cpu, memory string) corev1.PodSpec {
	zero := int64(0)
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: &zero,
		NodeSelector:                  map[string]string{suiteKey: suite},
		Tolerations:                   []corev1.Toleration{{Key: suiteKey, Operator: corev1.TolerationOpEqual, Value: suite, Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
		}}},
	}
}

// deployment creates a Deployment of replicas pods with spec.
func (e *e2eEnv) deployment(ctx context.Context, t *testing.T, ns, name string, replicas int32, spec corev1.PodSpec, annotations map[string]string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: spec},
		},
	}
	if _, err := e.kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
}

// scale sets a Deployment's replicas.
func (e *e2eEnv) scale(ctx context.Context, t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	s, err := e.kube.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := e.kube.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pods lists the pods of a namespace matching selector ("" for all).
func (e *e2eEnv) pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	l, err := e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// podCounts counts pods by phase (Running ones only when bound and not
// being deleted).
type podCounts struct{ total, running, pending int }

func countPods(pods []corev1.Pod) podCounts {
	var c podCounts
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		c.total++
		switch {
		case p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "":
			c.running++
		case p.Status.Phase == corev1.PodPending:
			c.pending++
		}
	}
	return c
}

// waitRunning waits until want pods of selector in ns are Running and none
// is Pending.
func (e *e2eEnv) waitRunning(ctx context.Context, t *testing.T, timeout time.Duration, ns, selector string, want int) time.Duration {
	t.Helper()
	return poll(ctx, t, timeout, fmt.Sprintf("%d pods Running in %s", want, ns), func() (bool, string) {
		pods, err := e.pods(ctx, ns, selector)
		if err != nil {
			return false, err.Error()
		}
		c := countPods(pods)
		return c.running == want && c.pending == 0 && c.total == want, fmt.Sprintf("%d pods, %d running, %d pending", c.total, c.running, c.pending)
	})
}

// claims lists the NodeClaims of a NodePool.
func (e *e2eEnv) claims(ctx context.Context, t *testing.T, pool string) []karpv1.NodeClaim {
	t.Helper()
	var l karpv1.NodeClaimList
	if err := e.crc.List(ctx, &l, client.MatchingLabels{karpv1.NodePoolLabelKey: pool}); err != nil {
		t.Logf("list NodeClaims: %v", err)
		return nil
	}
	return l.Items
}

// nodes lists the nodes of a NodePool.
func (e *e2eEnv) nodes(ctx context.Context, pool string) ([]corev1.Node, error) {
	l, err := e.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: karpv1.NodePoolLabelKey + "=" + pool})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// instances lists the pending or running ec2sim instances tagged for a
// NodePool (every one when pool is "").
func (e *e2eEnv) instances(ctx context.Context, pool string) ([]ec2types.Instance, error) {
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}}
	if pool != "" {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("tag:" + karpv1.NodePoolLabelKey), Values: []string{pool}})
	}
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(e.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

// nodeMap maps node names to nodes.
func nodeMap(nodes []corev1.Node) map[string]*corev1.Node {
	out := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		out[nodes[i].Name] = &nodes[i]
	}
	return out
}

// events lists the events (events.k8s.io, which also holds core/v1
// Events) of a namespace with reason whose note contains substr.
func (e *e2eEnv) events(ctx context.Context, ns, reason, substr string) ([]string, error) {
	l, err := e.kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ev := range l.Items {
		if ev.Reason == reason && strings.Contains(ev.Note, substr) {
			out = append(out, ev.Regarding.Name+": "+ev.Note)
		}
	}
	return out, nil
}

// metrics scrapes a service's /metrics and sums the samples of each metric
// name whose labels contain every filter (`name="value"` pairs).
func (e *e2eEnv) metric(ctx context.Context, service, name string, filters ...string) (float64, error) {
	addr := e.c.MetricsAddr(service)
	if addr == "" {
		return 0, fmt.Errorf("no metrics address for %s", service)
	}
	return scrape(ctx, "http://"+addr+"/metrics", name, filters...)
}

func scrape(ctx context.Context, url, name string, filters ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return sumSamples(resp.Body, name, filters...)
}

// sumSamples sums the Prometheus text-format samples of metric name.
func sumSamples(r io.Reader, name string, filters ...string) (float64, error) {
	sum := 0.0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		labels := ""
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // a longer metric name
		}
		if !containsAll(labels, filters) {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

func containsAll(labels string, filters []string) bool {
	for _, f := range filters {
		if !strings.Contains(labels, f) {
			return false
		}
	}
	return true
}

// counters reads the numbers "API calls per solve" is made of.
type counters struct {
	solves, awsCalls, kubeRequests float64
	kubeServed                     bool
}

func (e *e2eEnv) counters(ctx context.Context) counters {
	var c counters
	c.solves, _ = e.metric(ctx, harness.Watcher, "flotilla_watcher_solve_duration_seconds_count", `method="Solve"`)
	c.awsCalls, _ = e.metric(ctx, harness.Launcher, "flotilla_launcher_aws_api_calls_total")
	if e.proc != nil && e.proc.controllerMetrics != "" {
		v, err := scrape(ctx, "http://"+e.proc.controllerMetrics+"/metrics", "rest_client_requests_total")
		c.kubeRequests, c.kubeServed = v, err == nil
	}
	return c
}

// perSolve logs the calls made between two readings, per solve.
func (e *e2eEnv) perSolve(t *testing.T, key string, before, after counters) {
	t.Helper()
	solves := after.solves - before.solves
	if solves <= 0 {
		e.summary.set(t, key, "no solve (AWS calls %.0f)", after.awsCalls-before.awsCalls)
		return
	}
	msg := fmt.Sprintf("%.0f solves, %.0f launcher AWS API calls (%.1f per solve)", solves, after.awsCalls-before.awsCalls, (after.awsCalls-before.awsCalls)/solves)
	if after.kubeServed && before.kubeServed {
		k := after.kubeRequests - before.kubeRequests
		msg += fmt.Sprintf(", %.0f watcher kube API requests (%.1f per solve)", k, k/solves)
	}
	e.summary.set(t, key, "%s", msg)
}

// typesOf counts instance types of instances, for logs.
func typesOf(insts []ec2types.Instance) string {
	counts := map[string]int{}
	for _, i := range insts {
		counts[string(i.InstanceType)]++
	}
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	return strings.Join(parts, " ")
}
