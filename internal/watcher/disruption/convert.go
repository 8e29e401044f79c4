package disruption

import (
	"fmt"
	"maps"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file converts the Kubernetes objects consolidation sends the solver
// into their flotilla.types.v1 form. It covers what placement reads:
// requests, overhead, node selector and affinity, tolerations, pod
// (anti-)affinity, topology spread, host ports and priority.

// convertPod converts a bound pod.
func convertPod(p *corev1.Pod) *typesv1.Pod {
	out := &typesv1.Pod{
		Namespace:    p.Namespace,
		Name:         p.Name,
		Labels:       maps.Clone(p.Labels),
		Annotations:  maps.Clone(p.Annotations),
		Owner:        owner(p),
		DaemonSet:    drain.IsDaemonSetPod(p),
		Containers:   containers(p.Spec.Containers),
		NodeSelector: maps.Clone(p.Spec.NodeSelector),
		Overhead:     quantities(p.Spec.Overhead),
		Tolerations:  tolerations(p.Spec.Tolerations),
		HostPorts:    hostPorts(&p.Spec),
	}
	for _, c := range p.Spec.InitContainers {
		ic := container(c)
		ic.RestartPolicyAlways = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		out.InitContainers = append(out.InitContainers, ic)
	}
	if p.Spec.Priority != nil {
		out.Priority = *p.Spec.Priority
	}
	convertAffinity(out, p.Spec.Affinity)
	for _, c := range p.Spec.TopologySpreadConstraints {
		out.TopologySpreadConstraints = append(out.TopologySpreadConstraints, spread(c))
	}
	return out
}

func owner(p *corev1.Pod) string {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller {
			return r.Kind + "/" + p.Namespace + "/" + r.Name
		}
	}
	return ""
}

func containers(cs []corev1.Container) []*typesv1.Container {
	out := make([]*typesv1.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, container(c))
	}
	return out
}

// container takes a container's requests, falling back to its limits as the
// API server defaults requests from limits.
func container(c corev1.Container) *typesv1.Container {
	req := maps.Clone(c.Resources.Requests)
	for k, v := range c.Resources.Limits {
		if _, ok := req[k]; !ok {
			if req == nil {
				req = corev1.ResourceList{}
			}
			req[k] = v
		}
	}
	return &typesv1.Container{Name: c.Name, Requests: quantities(req)}
}

func quantities(rl corev1.ResourceList) map[string]string {
	if len(rl) == 0 {
		return nil
	}
	out := make(map[string]string, len(rl))
	for k, v := range rl {
		out[string(k)] = v.String()
	}
	return out
}

func tolerations(ts []corev1.Toleration) []*typesv1.Toleration {
	var out []*typesv1.Toleration
	for _, t := range ts {
		out = append(out, &typesv1.Toleration{Key: t.Key, Operator: string(t.Operator), Value: t.Value, Effect: string(t.Effect)})
	}
	return out
}

func taints(ts []corev1.Taint) []*typesv1.Taint {
	var out []*typesv1.Taint
	for _, t := range ts {
		out = append(out, &typesv1.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	return out
}

func hostPorts(spec *corev1.PodSpec) []*typesv1.HostPort {
	var out []*typesv1.HostPort
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				out = append(out, &typesv1.HostPort{Port: p.HostPort, Protocol: string(p.Protocol), HostIp: p.HostIP})
			}
		}
	}
	return out
}

func convertAffinity(out *typesv1.Pod, a *corev1.Affinity) {
	if a == nil {
		return
	}
	if na := a.NodeAffinity; na != nil {
		if r := na.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			out.RequiredNodeAffinity = nodeSelectorTerms(r.NodeSelectorTerms)
		}
		for _, p := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			out.PreferredNodeAffinity = append(out.PreferredNodeAffinity, &typesv1.PreferredSchedulingTerm{
				Weight: p.Weight, Preference: nodeSelectorTerm(p.Preference)})
		}
	}
	if pa := a.PodAffinity; pa != nil {
		out.PodAffinity = podAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAntiAffinity; pa != nil {
		out.PodAntiAffinity = podAffinity(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

func nodeSelectorTerms(ts []corev1.NodeSelectorTerm) []*typesv1.NodeSelectorTerm {
	var out []*typesv1.NodeSelectorTerm
	for _, t := range ts {
		out = append(out, nodeSelectorTerm(t))
	}
	return out
}

func nodeSelectorTerm(t corev1.NodeSelectorTerm) *typesv1.NodeSelectorTerm {
	out := &typesv1.NodeSelectorTerm{}
	for _, r := range t.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, requirement(r))
	}
	return out
}

func requirement(r corev1.NodeSelectorRequirement) *typesv1.Requirement {
	return &typesv1.Requirement{Key: r.Key, Operator: string(r.Operator), Values: append([]string(nil), r.Values...)}
}

func podAffinity(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm) *typesv1.PodAffinity {
	out := &typesv1.PodAffinity{}
	for _, t := range req {
		out.Required = append(out.Required, podAffinityTerm(t))
	}
	for _, w := range pref {
		out.Preferred = append(out.Preferred, &typesv1.WeightedPodAffinityTerm{Weight: w.Weight, PodAffinityTerm: podAffinityTerm(w.PodAffinityTerm)})
	}
	return out
}

func podAffinityTerm(t corev1.PodAffinityTerm) *typesv1.PodAffinityTerm {
	return &typesv1.PodAffinityTerm{
		LabelSelector:     labelSelector(t.LabelSelector),
		Namespaces:        append([]string(nil), t.Namespaces...),
		NamespaceSelector: labelSelector(t.NamespaceSelector),
		TopologyKey:       t.TopologyKey,
		MatchLabelKeys:    append([]string(nil), t.MatchLabelKeys...),
		MismatchLabelKeys: append([]string(nil), t.MismatchLabelKeys...),
	}
}

func labelSelector(s *metav1.LabelSelector) *typesv1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &typesv1.LabelSelector{MatchLabels: maps.Clone(s.MatchLabels)}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, &typesv1.LabelSelectorRequirement{
			Key: e.Key, Operator: string(e.Operator), Values: append([]string(nil), e.Values...)})
	}
	return out
}

func spread(c corev1.TopologySpreadConstraint) *typesv1.TopologySpreadConstraint {
	out := &typesv1.TopologySpreadConstraint{
		MaxSkew:           c.MaxSkew,
		TopologyKey:       c.TopologyKey,
		WhenUnsatisfiable: string(c.WhenUnsatisfiable),
		LabelSelector:     labelSelector(c.LabelSelector),
		MatchLabelKeys:    append([]string(nil), c.MatchLabelKeys...),
	}
	if c.MinDomains != nil {
		out.MinDomains = *c.MinDomains
	}
	if c.NodeAffinityPolicy != nil {
		out.NodeAffinityPolicy = string(*c.NodeAffinityPolicy)
	}
	if c.NodeTaintsPolicy != nil {
		out.NodeTaintsPolicy = string(*c.NodeTaintsPolicy)
	}
	return out
}

// convertNode converts a candidate's node with its pods. Pool is the
// NodePool name; empty marks the node as a destination only, not a
// consolidation candidate.
func convertNode(c *Candidate, pool string) *typesv1.Node {
	n := c.Node
	alloc := n.Status.Allocatable
	if len(alloc) == 0 {
		alloc = n.Status.Capacity
	}
	out := &typesv1.Node{
		Name:          n.Name,
		NodePool:      pool,
		Labels:        maps.Clone(n.Labels),
		Annotations:   maps.Clone(n.Annotations),
		Taints:        taints(n.Spec.Taints),
		Allocatable:   quantities(alloc),
		Unschedulable: n.Spec.Unschedulable,
		InstanceType:  n.Labels[corev1.LabelInstanceTypeStable],
		Zone:          n.Labels[corev1.LabelTopologyZone],
		CapacityType:  n.Labels[karpv1.CapacityTypeLabelKey],
		PricePerHour:  c.PricePerHour,
	}
	for _, p := range c.Pods {
		if isActive(p) {
			out.Pods = append(out.Pods, convertPod(p))
		}
	}
	return out
}

// convertInFlight converts a NodeClaim that has no node yet.
func convertInFlight(c *Candidate) *typesv1.NodeClaim {
	nc := c.NodeClaim
	alloc := nc.Status.Allocatable
	if len(alloc) == 0 {
		alloc = nc.Status.Capacity
	}
	return &typesv1.NodeClaim{
		Name:         nc.Name,
		NodePool:     poolName(c),
		InstanceType: nc.Labels[corev1.LabelInstanceTypeStable],
		Zone:         nc.Labels[corev1.LabelTopologyZone],
		CapacityType: nc.Labels[karpv1.CapacityTypeLabelKey],
		PricePerHour: c.PricePerHour,
		Labels:       maps.Clone(nc.Labels),
		Taints:       taints(nc.Spec.Taints),
		Allocatable:  quantities(alloc),
	}
}

// convertNodePool converts a NodePool's template, requirements and limits.
func convertNodePool(np *karpv1.NodePool) *typesv1.NodePool {
	t := &np.Spec.Template
	out := &typesv1.NodePool{
		Name:          np.Name,
		Labels:        maps.Clone(t.ObjectMeta.Labels),
		Annotations:   maps.Clone(t.ObjectMeta.Annotations),
		Taints:        taints(t.Spec.Taints),
		StartupTaints: taints(t.Spec.StartupTaints),
		Limits:        quantities(corev1.ResourceList(np.Spec.Limits)),
		Usage:         quantities(np.Status.Resources),
	}
	if np.Spec.Weight != nil {
		out.Weight = *np.Spec.Weight
	}
	for _, r := range t.Spec.Requirements {
		req := requirement(r.NodeSelectorRequirement)
		if r.MinValues != nil {
			req.MinValues = int32(*r.MinValues)
		}
		out.Requirements = append(out.Requirements, req)
	}
	return out
}

// replacementClaim turns a solver's planned NodeClaim into the NodeClaim the
// Actuator launches.
func replacementClaim(p *typesv1.PlannedNodeClaim) (*typesv1.NodeClaim, error) {
	if p == nil {
		return nil, fmt.Errorf("replace action without a replacement")
	}
	if p.NodePool == "" || p.InstanceType == "" {
		return nil, fmt.Errorf("replacement lacks a NodePool or instance type")
	}
	labels := maps.Clone(p.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[karpv1.NodePoolLabelKey] = p.NodePool
	labels[corev1.LabelInstanceTypeStable] = p.InstanceType
	if p.Zone != "" {
		labels[corev1.LabelTopologyZone] = p.Zone
	}
	if p.CapacityType != "" {
		labels[karpv1.CapacityTypeLabelKey] = p.CapacityType
	}
	return &typesv1.NodeClaim{
		NodePool:     p.NodePool,
		InstanceType: p.InstanceType,
		Zone:         p.Zone,
		CapacityType: p.CapacityType,
		PricePerHour: p.PricePerHour,
		Labels:       labels,
		Taints:       p.Taints,
	}, nil
}
