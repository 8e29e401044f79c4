package planner

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// testSpecs is a small catalog: prices as in us-east-1.
var testSpecs = []ec2catalog.Spec{
	{Name: "m5.large", Family: "m5", VCPU: 2, MemoryMiB: 8192, Arch: "amd64", ENIs: 3, IPv4PerENI: 10, OnDemandPrice: 0.096},
	{Name: "m5.xlarge", Family: "m5", VCPU: 4, MemoryMiB: 16384, Arch: "amd64", ENIs: 4, IPv4PerENI: 15, OnDemandPrice: 0.192},
	{Name: "m5.2xlarge", Family: "m5", VCPU: 8, MemoryMiB: 32768, Arch: "amd64", ENIs: 4, IPv4PerENI: 15, OnDemandPrice: 0.384},
	{Name: "c5.xlarge", Family: "c5", VCPU: 4, MemoryMiB: 8192, Arch: "amd64", ENIs: 4, IPv4PerENI: 15, OnDemandPrice: 0.17},
	{Name: "c5.4xlarge", Family: "c5", VCPU: 16, MemoryMiB: 32768, Arch: "amd64", ENIs: 8, IPv4PerENI: 30, OnDemandPrice: 0.68},
}

func dur(d time.Duration) karpv1.NillableDuration {
	return karpv1.NillableDuration{Duration: &d, Raw: d.String()}
}

func testClass() *awsv1.EC2NodeClass {
	nc := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	nc.Spec.Role = "KarpenterNodeRole"
	nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: "al2023@latest"}}
	nc.Status.Subnets = []awsv1.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}}
	return nc
}

func testPool(name string, policy karpv1.ConsolidationPolicy) *karpv1.NodePool {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"on-demand"}}},
	}
	np.Spec.Template.ObjectMeta.Labels = map[string]string{"tier": "web"}
	np.Spec.Disruption.ConsolidateAfter = dur(0)
	np.Spec.Disruption.ConsolidationPolicy = policy
	np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "100%"}}
	return np
}

// launched is a launched, registered and initialized NodeClaim of pool
// with its node.
func launched(name, pool, instanceType string) (*karpv1.NodeClaim, *corev1.Node) {
	spec, _ := ec2catalog.Lookup(instanceType)
	for _, s := range testSpecs {
		if s.Name == instanceType {
			spec = s
		}
	}
	pid := "aws:///us-east-1a/i-" + name
	labels := map[string]string{
		karpv1.NodePoolLabelKey: pool, karpv1.CapacityTypeLabelKey: "on-demand", corev1.LabelInstanceTypeStable: instanceType,
		corev1.LabelTopologyZone: "us-east-1a", corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux", corev1.LabelHostname: name,
	}
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(spec.VCPU)*1000-100, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity((spec.MemoryMiB-1024)<<20, resource.BinarySI),
		corev1.ResourcePods:   resource.MustParse("29"),
	}
	claim := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	claim.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	claim.Status.ProviderID, claim.Status.NodeName = pid, name
	claim.Status.Capacity, claim.Status.Allocatable = alloc, alloc
	claim.Status.LastPodEventTime = metav1.NewTime(t0.Add(-10 * time.Minute))
	for _, c := range []string{karpv1.ConditionLaunched, karpv1.ConditionRegistered, karpv1.ConditionInitialized} {
		claim.Status.Conditions = append(claim.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: c,
			LastTransitionTime: metav1.NewTime(t0.Add(-50 * time.Minute))})
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{ProviderID: pid}}
	node.Status.Capacity, node.Status.Allocatable = alloc, alloc
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	return claim, node
}

func pod(name, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": name},
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Minute))},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("128Mi")}}}}},
	}
}

// web gives the pod a nodeSelector only NodePool general's new nodes
// meet (its template label tier=web; the launched nodes predate it).
func web(p *corev1.Pod) *corev1.Pod {
	p.Spec.NodeSelector = map[string]string{"tier": "web"}
	return p
}

func pending(name, cpu string) *corev1.Pod {
	p := pod(name, cpu)
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	return p
}

func running(name, cpu, node string) *corev1.Pod {
	p := pod(name, cpu)
	p.Spec.NodeName = node
	p.Status.Phase = corev1.PodRunning
	return p
}

func zeroPDB(name, app string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 0},
	}
}

// scenario is a cluster with pending pods (three that fit, one too big for
// any type) and six launched NodeClaims: one underused m5.2xlarge, one
// empty, one held by a PodDisruptionBudget, one annotated do-not-disrupt,
// one in a WhenEmpty NodePool and one drifted from its NodePool.
func scenario() []client.Object {
	objs := []client.Object{
		testClass(), testPool("general", karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized), testPool("quiet", karpv1.ConsolidationPolicyWhenEmpty),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		web(pending("web-1", "3")), web(pending("web-2", "3")), web(pending("web-3", "3")), pending("huge", "1000"),
		zeroPDB("guarded", "guarded"),
	}
	add := func(name, pool, it string, mutate func(*karpv1.NodeClaim, *corev1.Node), pods ...*corev1.Pod) {
		c, n := launched(name, pool, it)
		if mutate != nil {
			mutate(c, n)
		}
		objs = append(objs, c, n)
		for _, p := range pods {
			objs = append(objs, p)
		}
	}
	add("underused", "general", "m5.2xlarge", nil, running("small", "100m", "underused"))
	add("empty", "general", "m5.large", nil)
	add("guarded", "general", "m5.large", nil, running("guarded", "1", "guarded"))
	add("pinned", "general", "m5.large", func(c *karpv1.NodeClaim, _ *corev1.Node) {
		c.Annotations = map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}
	}, running("pinned-app", "1", "pinned"))
	add("quiet-1", "quiet", "m5.large", nil, running("quiet-app", "1", "quiet-1"))
	add("stale", "general", "m5.large", func(c *karpv1.NodeClaim, _ *corev1.Node) {
		c.Annotations = map[string]string{karpv1.NodePoolHashAnnotationKey: "stale", karpv1.NodePoolHashVersionAnnotationKey: disruption.NodePoolHashVersion}
	}, running("stale-app", "1", "stale"))
	return objs
}

// verbs counts the client calls by verb and fails the test on any write.
type verbs struct {
	mu     sync.Mutex
	counts map[string]int
}

func (v *verbs) add(verb string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.counts == nil {
		v.counts = map[string]int{}
	}
	v.counts[verb]++
}

func (v *verbs) snapshot() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int{}
	for k, n := range v.counts {
		out[k] = n
	}
	return out
}

// fakeCluster is a fake API server holding objs whose every call is
// counted by verb; list, when set, replaces List.
func fakeCluster(t *testing.T, v *verbs, list func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error, objs ...client.Object) client.Client {
	t.Helper()
	write := func(verb string) error {
		v.add(verb)
		t.Errorf("the planner called %s", verb)
		return nil
	}
	if list == nil {
		list = func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
			return c.List(ctx, l, opts...)
		}
	}
	return fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			v.add("get")
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
			v.add("list")
			return list(ctx, c, l, opts...)
		},
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return write("create")
		},
		Update: func(context.Context, client.WithWatch, client.Object, ...client.UpdateOption) error {
			return write("update")
		},
		Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
			return write("patch")
		},
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return write("delete")
		},
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			return write("apply")
		},
		DeleteAllOf: func(context.Context, client.WithWatch, client.Object, ...client.DeleteAllOfOption) error {
			return write("deletecollection")
		},
		SubResourceCreate: func(context.Context, client.Client, string, client.Object, client.Object, ...client.SubResourceCreateOption) error {
			return write("create subresource")
		},
		SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
			return write("update subresource")
		},
		SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return write("patch subresource")
		},
	}).Build()
}
