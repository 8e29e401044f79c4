package integration

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// The oracle's cluster: corev1 Nodes and Pods exactly as kube-scheduler
// would see them for a problem and its plan.

// coreContainers turns container requests into corev1 containers; an
// extended resource's limit equals its request, as the API requires.
func coreContainers(prefix string, cs []solver.Container) []corev1.Container {
	out := make([]corev1.Container, 0, len(cs))
	for i, c := range cs {
		cc := corev1.Container{Name: fmt.Sprintf("%s-%d", prefix, i), Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: resourceList(c.Requests, true)}}
		for name, q := range cc.Resources.Requests {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory && name != corev1.ResourceEphemeralStorage {
				if cc.Resources.Limits == nil {
					cc.Resources.Limits = corev1.ResourceList{}
				}
				cc.Resources.Limits[name] = q
			}
		}
		if c.RestartPolicyAlways {
			always := corev1.ContainerRestartPolicyAlways
			cc.RestartPolicy = &always
		}
		out = append(out, cc)
	}
	return out
}

// oraclePod is the pod kube-scheduler sees for p: corePod's spec, with the
// generated container layout when there is one (so the scheduler computes
// the requests itself), and the API server's create-time mutations.
func oraclePod(p *solver.Pod, shape *podShape) *corev1.Pod {
	pod := corePod(p)
	pod.UID = types.UID(p.Namespace + "/" + p.Name)
	if shape != nil {
		ports := pod.Spec.Containers[0].Ports
		pod.Spec.Containers = coreContainers("app", shape.containers)
		pod.Spec.Containers[0].Ports = ports
		pod.Spec.InitContainers = coreContainers("init", shape.inits)
		if len(shape.overhead) > 0 {
			pod.Spec.Overhead = resourceList(shape.overhead, true)
		}
	}
	if p.DaemonSet {
		addDaemonPodTolerations(pod)
	}
	admitPod(pod)
	return pod
}

// addDaemonPodTolerations adds the tolerations the DaemonSet controller
// gives every daemon pod (k8s.io/kubernetes/pkg/controller/daemon/util).
func addDaemonPodTolerations(pod *corev1.Pod) {
	pod.Spec.Tolerations = append(pod.Spec.Tolerations,
		corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		corev1.Toleration{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		corev1.Toleration{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		corev1.Toleration{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	)
}

// admitPod applies what the API server does to a pod's scheduling
// constraints on create (pkg/registry/core/pod/strategy.go): the values of
// matchLabelKeys (and mismatchLabelKeys) of pod affinity terms, and of
// topology spread constraints, become selector expressions.
func admitPod(pod *corev1.Pod) {
	if utilfeature.DefaultFeatureGate.Enabled(features.MatchLabelKeysInPodAffinity) && pod.Spec.Affinity != nil {
		mergeTerms := func(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm) {
			for i := range req {
				mergeAffinityLabelKeys(&req[i], pod.Labels)
			}
			for i := range pref {
				mergeAffinityLabelKeys(&pref[i].PodAffinityTerm, pod.Labels)
			}
		}
		if a := pod.Spec.Affinity.PodAffinity; a != nil {
			mergeTerms(a.RequiredDuringSchedulingIgnoredDuringExecution, a.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		if a := pod.Spec.Affinity.PodAntiAffinity; a != nil {
			mergeTerms(a.RequiredDuringSchedulingIgnoredDuringExecution, a.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
	if utilfeature.DefaultFeatureGate.Enabled(features.MatchLabelKeysInPodTopologySpread) &&
		utilfeature.DefaultFeatureGate.Enabled(features.MatchLabelKeysInPodTopologySpreadSelectorMerge) {
		for i := range pod.Spec.TopologySpreadConstraints {
			c := &pod.Spec.TopologySpreadConstraints[i]
			if c.LabelSelector != nil {
				c.LabelSelector = mergeLabelKeys(c.LabelSelector, c.MatchLabelKeys, metav1.LabelSelectorOpIn, pod.Labels)
			}
		}
	}
}

func mergeAffinityLabelKeys(t *corev1.PodAffinityTerm, podLabels map[string]string) {
	if t.LabelSelector == nil {
		return
	}
	t.LabelSelector = mergeLabelKeys(t.LabelSelector, t.MatchLabelKeys, metav1.LabelSelectorOpIn, podLabels)
	t.LabelSelector = mergeLabelKeys(t.LabelSelector, t.MismatchLabelKeys, metav1.LabelSelectorOpNotIn, podLabels)
}

// mergeLabelKeys returns a copy of s with key op (value) added for every
// key of keys the pod has a label for.
func mergeLabelKeys(s *metav1.LabelSelector, keys []string, op metav1.LabelSelectorOperator, podLabels map[string]string) *metav1.LabelSelector {
	out := s.DeepCopy()
	for _, key := range keys {
		if v, ok := podLabels[key]; ok {
			out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: []string{v}})
		}
	}
	return out
}

// oracleNode is a Ready node with these labels, taints and allocatable
// resources (110 pods unless it says otherwise).
func oracleNode(name string, labels map[string]string, taints []solver.Taint, alloc solver.Resources, unschedulable bool) *corev1.Node {
	allocatable := resourceList(alloc, false)
	if _, ok := allocatable[corev1.ResourcePods]; !ok {
		allocatable[corev1.ResourcePods] = *resource.NewQuantity(110, resource.DecimalSI)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, UID: types.UID("node/" + name)},
		Spec:       corev1.NodeSpec{Taints: coreTaints(taints), Unschedulable: unschedulable},
		Status: corev1.NodeStatus{
			Capacity: allocatable, Allocatable: allocatable,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

// daemonShouldRun is the DaemonSet controller's test for whether a daemon
// pod belongs on a node: required node affinity and the NoSchedule and
// NoExecute taints (k8s.io/kubernetes/pkg/controller/daemon).
func daemonShouldRun(pod *corev1.Pod, node *corev1.Node) bool {
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return false
	}
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule
	}, utilfeature.DefaultFeatureGate.Enabled(features.TaintTolerationComparisonOperators))
	return !untolerated
}

// bind returns a copy of pod bound to node.
func bind(pod *corev1.Pod, node string) *corev1.Pod {
	out := pod.DeepCopy()
	out.Spec.NodeName = node
	return out
}

// describePod is a one-line summary of what the scheduler filters on.
func describePod(pod *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s labels=%v", pod.Namespace, pod.Name, pod.Labels)
	for _, c := range pod.Spec.InitContainers {
		fmt.Fprintf(&b, " init[%s restartAlways=%v]=%v", c.Name, c.RestartPolicy != nil, quantities(c.Resources.Requests))
	}
	for _, c := range pod.Spec.Containers {
		fmt.Fprintf(&b, " container[%s]=%v", c.Name, quantities(c.Resources.Requests))
		for _, p := range c.Ports {
			fmt.Fprintf(&b, " hostPort=%s/%d@%q", p.Protocol, p.HostPort, p.HostIP)
		}
	}
	if len(pod.Spec.Overhead) > 0 {
		fmt.Fprintf(&b, " overhead=%v", quantities(pod.Spec.Overhead))
	}
	if len(pod.Spec.NodeSelector) > 0 {
		fmt.Fprintf(&b, " nodeSelector=%v", pod.Spec.NodeSelector)
	}
	if pod.Spec.Affinity != nil {
		fmt.Fprintf(&b, " affinity=%s", compactJSON(pod.Spec.Affinity))
	}
	if len(pod.Spec.Tolerations) > 0 {
		fmt.Fprintf(&b, " tolerations=%s", compactJSON(pod.Spec.Tolerations))
	}
	if len(pod.Spec.TopologySpreadConstraints) > 0 {
		fmt.Fprintf(&b, " spread=%s", compactJSON(pod.Spec.TopologySpreadConstraints))
	}
	return b.String()
}

// describeNode summarizes a node and the pods on it in the snapshot.
func describeNode(node *corev1.Node, pods []*corev1.Pod) string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	return fmt.Sprintf("%s labels=%v taints=%s unschedulable=%v allocatable=%v pods=%v",
		node.Name, node.Labels, compactJSON(node.Spec.Taints), node.Spec.Unschedulable, quantities(node.Status.Allocatable), names)
}

func quantities(l corev1.ResourceList) string {
	var parts []string
	for name, q := range l {
		parts = append(parts, string(name)+"="+q.String())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
