package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	"github.com/flotilla-io/flotilla/internal/server"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// TestHarness starts the whole local cluster (control plane with
// kube-controller-manager and kwok, ec2sim with its node bridge, the
// Flotilla services) and checks each part does its job: kwok runs a fake
// node and the pods the real scheduler binds to it, the controllers create
// ServiceAccounts, ReplicaSets and PDB status and collect garbage, and an
// instance launched through the launcher's gRPC API registers as a Node
// that goes away when the instance terminates.
func TestHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := harness.Start(ctx, harness.Options{})
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.LogTails(25))
		}
	})
	if err != nil {
		t.Fatalf("start the cluster: %v", err)
	}
	times := c.StartTimes()
	t.Logf("cluster up in %s: %s; services %v", time.Since(start).Round(time.Millisecond), formatTimes(times), c.Services())
	kube := c.Kube()

	t.Run("default ServiceAccount", func(t *testing.T) {
		if _, err := kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("kwok runs a deployment on a fake node", func(t *testing.T) { checkKwokDeployment(ctx, t, kube) })
	t.Run("launched instance registers as a node", func(t *testing.T) {
		if c.Addr(harness.Launcher) == "" {
			t.Skip("no launcher in this checkout")
		}
		checkLaunchedNode(ctx, t, c)
	})
	t.Run("mutual TLS between real processes", func(t *testing.T) { checkMutualTLS(ctx, t, c) })
	t.Run("kill and restart a service", func(t *testing.T) {
		if c.Addr(harness.Solver) == "" {
			t.Skip("no solver in this checkout")
		}
		before := c.Pid(harness.Solver)
		if err := c.Kill(harness.Solver); err != nil {
			t.Fatal(err)
		}
		if pid := c.Pid(harness.Solver); pid != 0 || before == 0 {
			t.Fatalf("pid %d before kill, %d after", before, pid)
		}
		begin := time.Now()
		if err := c.Restart(ctx, harness.Solver); err != nil {
			t.Fatal(err)
		}
		if pid := c.Pid(harness.Solver); pid == 0 || pid == before {
			t.Fatalf("pid %d after restart, %d before", pid, before)
		}
		t.Logf("solver healthy again %s after restart", time.Since(begin).Round(time.Millisecond))
	})
}

func formatTimes(times map[string]time.Duration) string {
	var parts []string
	for _, k := range []string{"build-controlplane", "build-flotilla", "controlplane", "ec2sim", "services"} {
		parts = append(parts, fmt.Sprintf("%s %s", k, times[k].Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

const harnessTaint = "flotilla.io/harness"

func checkKwokDeployment(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "kwok-harness-0",
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": "kwok-harness-0", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: harnessTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse("8"), "memory": resource.MustParse("32Gi"), "pods": resource.MustParse("110")},
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("8"), "memory": resource.MustParse("32Gi"), "pods": resource.MustParse("110")},
		},
	}
	if _, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	begin := time.Now()
	waitFor(ctx, t, "node Ready without the not-ready taint", func() (bool, error) {
		n, err := kube.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeReady(n) && !hasTaint(n, "node.kubernetes.io/not-ready"), nil
	})
	t.Logf("fake node Ready and untainted after %s", time.Since(begin).Round(time.Millisecond))

	labels := map[string]string{"app": "harness"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "harness", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": node.Name},
					Tolerations:  []corev1.Toleration{{Key: harnessTaint, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.example/harness:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("256Mi")}},
					}},
				},
			},
		},
	}
	begin = time.Now()
	if _, err := kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "harness", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: new(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := kube.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	selector := metav1.ListOptions{LabelSelector: "app=harness"}
	waitFor(ctx, t, "3 pods Running on the fake node", func() (bool, error) {
		pods, err := kube.CoreV1().Pods("default").List(ctx, selector)
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == node.Name && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				running++
			}
		}
		return running == 3, nil
	})
	t.Logf("deployment of 3 pods Running after %s", time.Since(begin).Round(time.Millisecond))
	waitFor(ctx, t, "PDB status from the disruption controller", func() (bool, error) {
		p, err := kube.PolicyV1().PodDisruptionBudgets("default").Get(ctx, pdb.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.CurrentHealthy == 3 && p.Status.DisruptionsAllowed == 1, nil
	})

	begin = time.Now()
	if err := kube.AppsV1().Deployments("default").Delete(ctx, dep.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "pods collected after the deployment's deletion", func() (bool, error) {
		pods, err := kube.CoreV1().Pods("default").List(ctx, selector)
		return err == nil && len(pods.Items) == 0, err
	})
	t.Logf("pods gone %s after deleting the deployment", time.Since(begin).Round(time.Millisecond))
}

func checkLaunchedNode(ctx context.Context, t *testing.T, c harness.Cluster) {
	conn, err := c.DialAs(harness.Launcher, server.IdentityWatcher)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	launcher := launcherv1.NewLauncherServiceClient(conn)
	// The launcher reads the class by name from the API server.
	crc, err := client.New(c.RESTConfig(), client.Options{Scheme: classes.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	profile := "KarpenterNodeInstanceProfile"
	nodeClass := &awsv1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "harness"},
		Spec: awsv1.EC2NodeClassSpec{
			SubnetSelectorTerms:        []awsv1.SubnetSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: c.Name()}}},
			SecurityGroupSelectorTerms: []awsv1.SecurityGroupSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: c.Name()}}},
			AMISelectorTerms:           []awsv1.AMISelectorTerm{{Alias: "al2023@latest"}},
			InstanceProfile:            &profile,
		},
	}
	if err := crc.Create(ctx, nodeClass); err != nil {
		t.Fatalf("create EC2NodeClass: %v", err)
	}
	t.Cleanup(func() { _ = crc.Delete(context.Background(), nodeClass) })
	begin := time.Now()
	var resp *launcherv1.LaunchResponse
	waitFor(ctx, t, "a launch with EC2NodeClass harness", func() (bool, error) {
		resp, err = launcher.Launch(ctx, &launcherv1.LaunchRequest{
			NodeClaim: "harness-claim", NodeClaimUid: "0b5e7b2c-harness", NodePool: "default",
			NodeClassName: nodeClass.Name, InstanceTypeOptions: []string{"m5.large", "m5.xlarge"},
			Labels: map[string]string{"karpenter.sh/nodepool": "default"},
		})
		if status.Code(err) == codes.NotFound { // the launcher's informer has not seen the class yet
			return false, err
		}
		if err != nil {
			t.Fatalf("launch: %v", err)
		}
		return true, nil
	})
	inst := resp.GetInstance()
	t.Logf("launched %s (%s in %s) in %s", inst.GetId(), inst.GetInstanceType(), inst.GetZone(), time.Since(begin).Round(time.Millisecond))
	kube := c.Kube()
	var node *corev1.Node
	waitFor(ctx, t, "a Ready node for "+inst.GetProviderId(), func() (bool, error) {
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range nodes.Items {
			if nodes.Items[i].Spec.ProviderID == inst.GetProviderId() {
				node = &nodes.Items[i]
				return nodeReady(node), nil
			}
		}
		return false, nil
	})
	t.Logf("node %s registered and Ready %s after launch", node.Name, time.Since(begin).Round(time.Millisecond))
	for k, v := range map[string]string{
		"node.kubernetes.io/instance-type": inst.GetInstanceType(),
		"topology.kubernetes.io/zone":      inst.GetZone(),
		"karpenter.sh/capacity-type":       inst.GetCapacityType(),
		"karpenter.sh/nodepool":            "default",
	} {
		if node.Labels[k] != v {
			t.Errorf("node label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if !hasTaint(node, "karpenter.sh/unregistered") {
		t.Errorf("node taints %v lack karpenter.sh/unregistered", node.Spec.Taints)
	}

	begin = time.Now()
	if _, err := launcher.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: inst.GetId(), NodeClaim: "harness-claim"}); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	waitFor(ctx, t, "node "+node.Name+" deleted after termination", func() (bool, error) {
		_, err := kube.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	t.Logf("node deleted %s after terminate", time.Since(begin).Round(time.Millisecond))
}

func nodeReady(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

func hasTaint(n *corev1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}

// waitFor polls cond every 100ms for up to a minute; errors are retried
// and reported on timeout.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
