package peerbench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// Namespace holds the workload.
const Namespace = "bench"

// groupLabel selects a Deployment's pods; no pod's constraint uses it.
const groupLabel = "peerbench/group"

// Group is one Deployment of the spike: pods of one spec.
type Group struct {
	Name string
	Pod  *corev1.Pod // the template
	// Replicas at the spike, and after scaling to 20%: the pods of the
	// group whose index in the mix is a multiple of 5 stay.
	Replicas, Scaled int32
}

// Spike is the faithful karpenter-mix (workload.KarpenterBenchmarkMix(n,
// seed), Karpenter's own benchmark pods) as Deployments of identical pods,
// so that pods evicted by consolidation come back, and scaling to 20%
// keeps exactly n/5 pods.
func Spike(n int, seed int64) ([]Group, error) {
	p := workload.KarpenterBenchmarkMix(n, seed)
	byKey := map[string]*Group{}
	var keys []string
	for i, sp := range p.Pods {
		pod, err := corePod(sp)
		if err != nil {
			return nil, err
		}
		key, err := json.Marshal(struct {
			L map[string]string
			S corev1.PodSpec
		}{pod.Labels, pod.Spec})
		if err != nil {
			return nil, err
		}
		g := byKey[string(key)]
		if g == nil {
			g = &Group{Name: fmt.Sprintf("g%04d", len(keys)), Pod: pod}
			byKey[string(key)] = g
			keys = append(keys, string(key))
		}
		g.Replicas++
		if i%5 == 0 {
			g.Scaled++
		}
	}
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out, nil
}

// corePod is the benchmark pod as Kubernetes runs it; it refuses a field
// of solver.Pod the mix does not use rather than dropping it.
func corePod(p *solver.Pod) (*corev1.Pod, error) {
	if len(p.NodeSelector) > 0 || len(p.RequiredNodeAffinity) > 0 || len(p.PreferredNodeAffinity) > 0 ||
		len(p.Tolerations) > 0 || len(p.HostPorts) > 0 || len(p.PodAffinity.Preferred) > 0 || len(p.PodAntiAffinity.Preferred) > 0 {
		return nil, fmt.Errorf("pod %s: a field the peer benchmark does not convert", p.Name)
	}
	req := corev1.ResourceList{}
	for name, v := range p.Requests {
		switch name {
		case solver.ResourceCPU:
			req[corev1.ResourceCPU] = *resource.NewMilliQuantity(v, resource.DecimalSI)
		case solver.ResourceMemory:
			req[corev1.ResourceMemory] = *resource.NewQuantity(v, resource.BinarySI)
		default:
			return nil, fmt.Errorf("pod %s: resource %s", p.Name, name)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: p.Labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{Requests: req},
		}}},
	}
	for _, c := range p.TopologySpread {
		pod.Spec.TopologySpreadConstraints = append(pod.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
			MaxSkew: c.MaxSkew, TopologyKey: c.TopologyKey, WhenUnsatisfiable: corev1.UnsatisfiableConstraintAction(c.WhenUnsatisfiable),
			LabelSelector: selector(c.LabelSelector),
		})
	}
	terms := func(ts []solver.PodAffinityTerm) []corev1.PodAffinityTerm {
		var out []corev1.PodAffinityTerm
		for _, t := range ts {
			out = append(out, corev1.PodAffinityTerm{LabelSelector: selector(t.LabelSelector), TopologyKey: t.TopologyKey})
		}
		return out
	}
	if a := terms(p.PodAffinity.Required); a != nil {
		pod.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: a}}
	}
	if a := terms(p.PodAntiAffinity.Required); a != nil {
		if pod.Spec.Affinity == nil {
			pod.Spec.Affinity = &corev1.Affinity{}
		}
		pod.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: a}
	}
	return pod, nil
}

func selector(s *solver.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	return out
}

// Deployment is a group's Deployment with replicas pods.
func (g Group) Deployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{groupLabel: g.Name}
	for k, v := range g.Pod.Labels {
		labels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Namespace: Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{groupLabel: g.Name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: *g.Pod.Spec.DeepCopy()},
		},
	}
}

// parallel runs f on every group with a few workers and returns the first error.
func parallel(groups []Group, f func(Group) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	ch := make(chan Group)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range ch {
				if err := f(g); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, g := range groups {
		ch <- g
	}
	close(ch)
	wg.Wait()
	return first
}

// CreateAll creates the namespace and every group's Deployment at its spike size.
func CreateAll(ctx context.Context, kube kubernetes.Interface, groups []Group) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	return parallel(groups, func(g Group) error {
		_, err := kube.AppsV1().Deployments(Namespace).Create(ctx, g.Deployment(g.Replicas), metav1.CreateOptions{})
		return err
	})
}

// ScaleAll scales every group to its 20% size.
func ScaleAll(ctx context.Context, kube kubernetes.Interface, groups []Group) error {
	return parallel(groups, func(g Group) error {
		s, err := kube.AppsV1().Deployments(Namespace).GetScale(ctx, g.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = g.Scaled
		_, err = kube.AppsV1().Deployments(Namespace).UpdateScale(ctx, g.Name, s, metav1.UpdateOptions{})
		return err
	})
}

// Total sums replicas (scaled: the 20% sizes).
func Total(groups []Group, scaled bool) int {
	n := 0
	for _, g := range groups {
		if scaled {
			n += int(g.Scaled)
		} else {
			n += int(g.Replicas)
		}
	}
	return n
}
