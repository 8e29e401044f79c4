package disruption

import (
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func dur(d time.Duration) karpv1.NillableDuration {
	return karpv1.NillableDuration{Duration: &d, Raw: d.String()}
}

func newPool(name string, opts ...func(*karpv1.NodePool)) *karpv1.NodePool {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	np.Spec.Template.ObjectMeta.Labels = map[string]string{"team": "a"}
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"on-demand", "spot"}}},
	}
	np.Spec.Disruption.ConsolidateAfter = dur(30 * time.Second)
	np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized
	np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "100%"}}
	for _, o := range opts {
		o(np)
	}
	return np
}

func newClass() *awsv1.EC2NodeClass {
	nc := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	nc.Spec.Role = "KarpenterNodeRole"
	nc.Status.AMIs = []awsv1.AMI{{ID: "ami-new"}, {ID: "ami-arm"}}
	return nc
}

type candOpt func(*Candidate)

// newCandidate is an initialized node of pool created an hour before t0,
// with its last pod event ten minutes before t0, stamped with the current
// hashes of pool and class.
func newCandidate(name string, pool *karpv1.NodePool, class *awsv1.EC2NodeClass, opts ...candOpt) Candidate {
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{
		Name:              name,
		CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
		Labels: map[string]string{
			karpv1.NodePoolLabelKey: pool.Name, karpv1.CapacityTypeLabelKey: "on-demand",
			corev1.LabelInstanceTypeStable: "m5.large", corev1.LabelTopologyZone: "us-east-1a", "team": "a",
		},
		Annotations: map[string]string{
			karpv1.NodePoolHashAnnotationKey: NodePoolHash(pool), karpv1.NodePoolHashVersionAnnotationKey: NodePoolHashVersion,
			karpv1.NodeClassHashAnnotationKey: NodeClassHash(class), karpv1.NodeClassHashVersionAnnotationKey: NodeClassHashVersion,
		},
	}}
	nc.Status.NodeName = name
	nc.Status.ImageID = "ami-new"
	nc.Status.LastPodEventTime = metav1.NewTime(t0.Add(-10 * time.Minute))
	nc.Status.Conditions = []metav1.Condition{{Type: karpv1.ConditionInitialized, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-50 * time.Minute))}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: nc.Labels}}
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	c := Candidate{NodeClaim: nc, Node: node, NodePool: pool, NodeClass: class, PricePerHour: 0.096}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func withPods(pods ...*corev1.Pod) candOpt {
	return func(c *Candidate) {
		for _, p := range pods {
			p.Spec.NodeName = c.Node.Name
			c.Pods = append(c.Pods, p)
		}
	}
}

func newPod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func daemonPod(p *corev1.Pod) {
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "ds", Controller: new(true)}}
}

func doNotDisruptPod(p *corev1.Pod) {
	p.Annotations = map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}
}

func pdb(name string, allowed int32, matchApp string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": matchApp}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}
