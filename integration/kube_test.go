package integration

import (
	"context"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// planGate holds a pod back from kube-scheduler until its nomination is set.
const planGate = "flotilla.io/plan"

// quantity turns a solver amount into a Kubernetes quantity.
func quantity(name string, v int64) resource.Quantity {
	switch name {
	case solver.ResourceCPU:
		return *resource.NewMilliQuantity(v, resource.DecimalSI)
	case solver.ResourceMemory, solver.ResourceEphemeralStorage:
		return *resource.NewQuantity(v, resource.BinarySI)
	}
	return *resource.NewQuantity(v, resource.DecimalSI)
}

func resourceList(r solver.Resources, skipPods bool) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, v := range r {
		if skipPods && name == solver.ResourcePods {
			continue
		}
		out[corev1.ResourceName(name)] = quantity(name, v)
	}
	return out
}

func nodeSelectorRequirements(reqs []solver.Requirement) []corev1.NodeSelectorRequirement {
	out := make([]corev1.NodeSelectorRequirement, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOperator(r.Operator), Values: r.Values})
	}
	return out
}

func nodeSelectorTerms(terms []solver.NodeSelectorTerm) []corev1.NodeSelectorTerm {
	out := make([]corev1.NodeSelectorTerm, 0, len(terms))
	for _, t := range terms {
		out = append(out, corev1.NodeSelectorTerm{MatchExpressions: nodeSelectorRequirements(t.Requirements)})
	}
	return out
}

func labelSelector(s *solver.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values,
		})
	}
	return out
}

func podAffinityTerm(t solver.PodAffinityTerm) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector:     labelSelector(t.LabelSelector),
		Namespaces:        t.Namespaces,
		NamespaceSelector: labelSelector(t.NamespaceSelector),
		TopologyKey:       t.TopologyKey,
		MatchLabelKeys:    t.MatchLabelKeys,
		MismatchLabelKeys: t.MismatchLabelKeys,
	}
}

func podAffinityTerms(a solver.PodAffinity) ([]corev1.PodAffinityTerm, []corev1.WeightedPodAffinityTerm) {
	var req []corev1.PodAffinityTerm
	var pref []corev1.WeightedPodAffinityTerm
	for _, t := range a.Required {
		req = append(req, podAffinityTerm(t))
	}
	for _, t := range a.Preferred {
		pref = append(pref, corev1.WeightedPodAffinityTerm{Weight: t.Weight, PodAffinityTerm: podAffinityTerm(t.Term)})
	}
	return req, pref
}

func affinity(p *solver.Pod) *corev1.Affinity {
	a := &corev1.Affinity{}
	if len(p.RequiredNodeAffinity) > 0 || len(p.PreferredNodeAffinity) > 0 {
		a.NodeAffinity = &corev1.NodeAffinity{}
		if len(p.RequiredNodeAffinity) > 0 {
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: nodeSelectorTerms(p.RequiredNodeAffinity)}
		}
		for _, t := range p.PreferredNodeAffinity {
			a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.PreferredSchedulingTerm{Weight: t.Weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: nodeSelectorRequirements(t.Term.Requirements)}})
		}
	}
	if req, pref := podAffinityTerms(p.PodAffinity); req != nil || pref != nil {
		a.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: req, PreferredDuringSchedulingIgnoredDuringExecution: pref}
	}
	if req, pref := podAffinityTerms(p.PodAntiAffinity); req != nil || pref != nil {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: req, PreferredDuringSchedulingIgnoredDuringExecution: pref}
	}
	if a.NodeAffinity == nil && a.PodAffinity == nil && a.PodAntiAffinity == nil {
		return nil
	}
	return a
}

// corePod turns a solver pod into a Kubernetes pod with one container that
// carries the pod's effective requests.
func corePod(p *solver.Pod) *corev1.Pod {
	container := corev1.Container{
		Name:      "app",
		Image:     "registry.k8s.io/pause:3.10",
		Resources: corev1.ResourceRequirements{Requests: resourceList(p.Requests, true)},
	}
	// Extended resources cannot be overcommitted: their limit must equal
	// the request.
	for name, q := range container.Resources.Requests {
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory && name != corev1.ResourceEphemeralStorage {
			if container.Resources.Limits == nil {
				container.Resources.Limits = corev1.ResourceList{}
			}
			container.Resources.Limits[name] = q
		}
	}
	for _, hp := range p.HostPorts {
		container.Ports = append(container.Ports, corev1.ContainerPort{
			ContainerPort: hp.Port, HostPort: hp.Port, HostIP: hp.HostIP, Protocol: corev1.Protocol(hp.Protocol),
		})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Annotations: p.Annotations},
		Spec: corev1.PodSpec{
			Containers:   []corev1.Container{container},
			NodeSelector: p.NodeSelector,
			Affinity:     affinity(p),
		},
	}
	for _, t := range p.Tolerations {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
			Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value, Effect: corev1.TaintEffect(t.Effect),
		})
	}
	for _, c := range p.TopologySpread {
		tsc := corev1.TopologySpreadConstraint{
			MaxSkew: c.MaxSkew, TopologyKey: c.TopologyKey, WhenUnsatisfiable: corev1.UnsatisfiableConstraintAction(c.WhenUnsatisfiable),
			LabelSelector: labelSelector(c.LabelSelector), MatchLabelKeys: c.MatchLabelKeys,
		}
		if c.MinDomains > 0 {
			tsc.MinDomains = &c.MinDomains
		}
		if c.NodeAffinityPolicy != "" {
			policy := corev1.NodeInclusionPolicy(c.NodeAffinityPolicy)
			tsc.NodeAffinityPolicy = &policy
		}
		if c.NodeTaintsPolicy != "" {
			policy := corev1.NodeInclusionPolicy(c.NodeTaintsPolicy)
			tsc.NodeTaintsPolicy = &policy
		}
		pod.Spec.TopologySpreadConstraints = append(pod.Spec.TopologySpreadConstraints, tsc)
	}
	return pod
}

func coreTaints(taints []solver.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		out = append(out, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return out
}

// nodeSpec is a node to create: its labels, taints and allocatable resources.
type nodeSpec struct {
	name        string
	labels      map[string]string
	taints      []solver.Taint
	allocatable solver.Resources
}

// plannedNodes materialises each planned NodeClaim as the node it launches:
// the cheapest offering, the claim's labels and taints (startup taints are
// gone by the time pods bind) and the instance type's allocatable.
func plannedNodes(p *solver.Problem, plan *solver.Plan) ([]nodeSpec, error) {
	types := map[string]*solver.InstanceType{}
	for i := range p.InstanceTypes {
		types[p.InstanceTypes[i].Name] = &p.InstanceTypes[i]
	}
	var out []nodeSpec
	for i, c := range plan.NodeClaims {
		it, ok := types[c.InstanceType]
		if !ok {
			return nil, fmt.Errorf("claim %d: unknown instance type %q", i, c.InstanceType)
		}
		name := fmt.Sprintf("claim-%04d", i)
		labels := map[string]string{}
		for k, v := range it.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		labels[solver.LabelZone] = c.Zone
		labels[solver.LabelCapacityType] = c.CapacityType
		labels[solver.LabelInstanceType] = c.InstanceType
		labels[solver.LabelNodePool] = c.NodePool
		labels[solver.LabelHostname] = name
		out = append(out, nodeSpec{name: name, labels: labels, taints: c.Taints, allocatable: it.Allocatable})
	}
	return out, nil
}

func createNode(ctx context.Context, client kubernetes.Interface, n nodeSpec) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: n.labels},
		Spec:       corev1.NodeSpec{Taints: coreTaints(n.taints)},
	}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.name, err)
	}
	alloc := resourceList(n.allocatable, false)
	if _, ok := alloc[corev1.ResourcePods]; !ok {
		alloc[corev1.ResourcePods] = *resource.NewQuantity(110, resource.DecimalSI)
	}
	created.Status = corev1.NodeStatus{
		Capacity:    alloc,
		Allocatable: alloc,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", n.name, err)
	}
	return nil
}

// parallel runs fn for each index on a few workers and returns the first error.
func parallel(n int, fn func(i int) error) error {
	const workers = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= n || first != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
