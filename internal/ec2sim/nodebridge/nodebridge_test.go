package nodebridge_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

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
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

const cluster = ec2sim.DefaultCluster

// env is ec2sim on a loopback server, a real launcher launching into it,
// the real EC2 SDK client the bridge polls with, and a fake clientset.
type env struct {
	launcher *launcher.Service
	ec2      *ec2.Client
	kube     *fake.Clientset
	bridge   *nodebridge.Bridge
	metrics  *nodebridge.Metrics
}

func newEnv(t *testing.T) *env {
	t.Helper()
	var specs []ec2catalog.Spec
	for _, n := range []string{"m5.large", "m6g.large", "g4dn.xlarge"} {
		s, ok := ec2catalog.Lookup(n)
		if !ok {
			t.Fatalf("%s not in the embedded catalog", n)
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
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	kube := crfake.NewClientBuilder().WithScheme(classes.Scheme()).WithObjects(ec2NodeClass()).Build()
	svc, err := launcher.New(context.Background(), launcher.Config{
		Classes: classes.Reader{Client: kube},
		AWS: awsclient.Config{
			Region: "us-east-1", EC2Endpoint: srv.URL, SSMEndpoint: srv.URL, PricingEndpoint: srv.URL,
			Credentials: creds, MaxBackoff: 20 * time.Millisecond, HTTPClient: ec2sim.HTTPClient(),
		},
		ClusterName: cluster, KubernetesVersion: "1.31",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		launcher: svc,
		ec2: ec2.New(ec2.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds, HTTPClient: ec2sim.HTTPClient(),
		}),
		kube:    fake.NewClientset(),
		metrics: nodebridge.NewMetrics(),
	}
	e.bridge, err = nodebridge.New(nodebridge.Options{
		Kube: e.kube, EC2: e.ec2, ClusterName: cluster, Interval: 10 * time.Millisecond, Metrics: e.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ec2NodeClass is the cluster's EC2NodeClass "default", which the
// launcher reads by name.
func ec2NodeClass() *awsv1.EC2NodeClass {
	profile := "KarpenterNodeInstanceProfile"
	return &awsv1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1},
		Spec: awsv1.EC2NodeClassSpec{
			SubnetSelectorTerms:        []awsv1.SubnetSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
			SecurityGroupSelectorTerms: []awsv1.SecurityGroupSelectorTerm{{Tags: map[string]string{ec2sim.DiscoveryTag: cluster}}},
			AMISelectorTerms:           []awsv1.AMISelectorTerm{{Alias: "al2023@latest"}},
			InstanceProfile:            &profile,
		},
	}
}

func (e *env) launch(t *testing.T, claim, instanceType string) *launcherv1.Instance {
	t.Helper()
	resp, err := e.launcher.Launch(context.Background(), &launcherv1.LaunchRequest{
		NodeClaim: claim, NodePool: "general", NodeClassName: "default",
		InstanceTypeOptions: []string{instanceType},
	})
	if err != nil {
		t.Fatalf("launch %s: %v", claim, err)
	}
	return resp.Instance
}

func (e *env) sync(t *testing.T) {
	t.Helper()
	if err := e.bridge.Sync(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func (e *env) nodes(t *testing.T) []corev1.Node {
	t.Helper()
	list, err := e.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestRegistersNodeLikeAKubelet(t *testing.T) {
	e := newEnv(t)
	inst := e.launch(t, "claim-a", "m5.large")
	e.sync(t)
	nodes := e.nodes(t)
	if len(nodes) != 1 {
		t.Fatalf("%d nodes, want 1", len(nodes))
	}
	n := nodes[0]
	if !strings.HasPrefix(n.Name, "ip-") || n.Labels[nodebridge.LabelHostname] != n.Name {
		t.Errorf("name %q, hostname label %q: want the private DNS name", n.Name, n.Labels[nodebridge.LabelHostname])
	}
	if n.Spec.ProviderID != inst.ProviderId || n.Spec.ProviderID != nodebridge.ProviderID(inst.Zone, inst.Id) {
		t.Errorf("providerID %q, launcher says %q", n.Spec.ProviderID, inst.ProviderId)
	}
	want := map[string]string{
		"node.kubernetes.io/instance-type":    "m5.large",
		"kubernetes.io/arch":                  "amd64",
		"kubernetes.io/os":                    "linux",
		"topology.kubernetes.io/zone":         inst.Zone,
		"topology.kubernetes.io/region":       "us-east-1",
		"karpenter.sh/capacity-type":          inst.CapacityType,
		"karpenter.sh/nodepool":               "general",
		"karpenter.k8s.aws/ec2nodeclass":      "default",
		"karpenter.k8s.aws/instance-family":   "m5",
		"karpenter.k8s.aws/instance-size":     "large",
		"karpenter.k8s.aws/instance-category": "m",
		"karpenter.k8s.aws/instance-cpu":      "2",
	}
	for k, v := range want {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if n.Labels[nodebridge.LabelZoneID] == "" {
		t.Errorf("no zone-id label: %v", n.Labels)
	}
	if n.Annotations[nodebridge.KwokAnnotationKey] != nodebridge.KwokAnnotationValue {
		t.Errorf("annotations %v: kwok would not manage the node", n.Annotations)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != nodebridge.UnregisteredTaintKey || n.Spec.Taints[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("taints %v, want karpenter.sh/unregistered:NoExecute", n.Spec.Taints)
	}
	checkAllocatable(t, e, n)
}

// checkAllocatable compares the Node with what the launcher reports for
// the same type, which is what the solver plans with.
func checkAllocatable(t *testing.T, e *env, n corev1.Node) {
	t.Helper()
	types, err := e.launcher.ListInstanceTypes(context.Background(), &launcherv1.ListInstanceTypesRequest{NodeClassName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range types.InstanceTypes {
		if it.Name != n.Labels["node.kubernetes.io/instance-type"] {
			continue
		}
		for name, v := range it.Allocatable {
			got := n.Status.Allocatable[corev1.ResourceName(name)]
			if want := resource.MustParse(v); got.Cmp(want) != 0 {
				t.Errorf("allocatable %s = %s, launcher says %s", name, got.String(), v)
			}
		}
		if n.Status.Capacity.Pods().Value() == 0 || n.Status.Capacity.Cpu().Cmp(resource.MustParse("2")) != 0 {
			t.Errorf("capacity %v", n.Status.Capacity)
		}
		return
	}
	t.Fatalf("launcher lists no %s", n.Labels["node.kubernetes.io/instance-type"])
}

func TestArmAndGPUTypes(t *testing.T) {
	e := newEnv(t)
	e.launch(t, "arm", "m6g.large")
	e.launch(t, "gpu", "g4dn.xlarge")
	e.sync(t)
	byType := map[string]corev1.Node{}
	for _, n := range e.nodes(t) {
		byType[n.Labels["node.kubernetes.io/instance-type"]] = n
	}
	if arm := byType["m6g.large"]; arm.Labels["kubernetes.io/arch"] != "arm64" || arm.Status.NodeInfo.Architecture != "arm64" {
		t.Errorf("m6g.large: arch label %q, nodeInfo %q", arm.Labels["kubernetes.io/arch"], arm.Status.NodeInfo.Architecture)
	}
	gpu := byType["g4dn.xlarge"]
	if q := gpu.Status.Allocatable["nvidia.com/gpu"]; q.Value() != 1 || gpu.Labels["karpenter.k8s.aws/instance-gpu-manufacturer"] != "nvidia" {
		t.Errorf("g4dn.xlarge: gpu allocatable %s, labels %v", q.String(), gpu.Labels)
	}
}

func TestDeletesNodeOfTerminatedInstance(t *testing.T) {
	e := newEnv(t)
	keep := e.launch(t, "keep", "m5.large")
	gone := e.launch(t, "gone", "m5.large")
	// A Node the bridge did not make, for an instance EC2 does not know.
	foreign := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foreign"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0123456789abcdef0"}}
	if _, err := e.kube.CoreV1().Nodes().Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	if got := len(e.nodes(t)); got != 3 {
		t.Fatalf("%d nodes, want 3", got)
	}
	if _, err := e.launcher.Terminate(context.Background(), &launcherv1.TerminateRequest{InstanceId: gone.Id, NodeClaim: "gone"}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	var ids []string
	for _, n := range e.nodes(t) {
		ids = append(ids, n.Spec.ProviderID)
	}
	if len(ids) != 2 || !contains(ids, keep.ProviderId) || !contains(ids, foreign.Spec.ProviderID) {
		t.Fatalf("nodes after terminating %s: %v", gone.Id, ids)
	}
}

func TestRegistersOnlyOnce(t *testing.T) {
	e := newEnv(t)
	e.launch(t, "once", "m5.large")
	e.sync(t)
	n := e.nodes(t)[0]
	// Someone (the watcher, a person) deletes the Node while the instance
	// runs; like a kubelet, the bridge does not register it again.
	if err := e.kube.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	if got := len(e.nodes(t)); got != 0 {
		t.Fatalf("%d nodes after deletion and sync, want 0", got)
	}
}

func TestRunPollsUntilCancelled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bridge.Run(ctx) }()
	e.launch(t, "polled", "m5.large")
	deadline := time.Now().Add(10 * time.Second)
	for len(e.nodes(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no node registered within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := nodebridge.New(nodebridge.Options{}); err == nil {
		t.Error("no clients: no error")
	}
	e := newEnv(t)
	if _, err := nodebridge.New(nodebridge.Options{Kube: e.kube, EC2: e.ec2, Interval: -time.Second}); err == nil {
		t.Error("negative interval: no error")
	}
}

func TestInstanceID(t *testing.T) {
	for in, want := range map[string]string{
		"aws:///us-east-1a/i-0abc":   "i-0abc",
		"aws:///us-east-1a/":         "",
		"aws:///us-east-1a/vol-1":    "",
		"kind://docker/kind/node":    "",
		"":                           "",
		"aws:///us-west-2b/i-123/ex": "",
	} {
		if got := nodebridge.InstanceID(in); got != want {
			t.Errorf("InstanceID(%q) = %q, want %q", in, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
