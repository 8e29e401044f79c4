package kubeyaml

import (
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
)

// convertNode converts a Node. Its instance type, zone, capacity type and
// NodePool come from the well-known labels; its price is unknown (0).
func convertNode(n *corev1.Node) (*typesv1.Node, error) {
	taints, err := convertTaints(n.Spec.Taints, "spec.taints")
	if err != nil {
		return nil, err
	}
	alloc := n.Status.Allocatable
	path := "status.allocatable"
	if len(alloc) == 0 {
		alloc, path = n.Status.Capacity, "status.capacity"
	}
	allocatable, err := quantities(alloc, path)
	if err != nil {
		return nil, err
	}
	return &typesv1.Node{
		Name:          n.Name,
		NodePool:      n.Labels["karpenter.sh/nodepool"],
		Labels:        copyMap(n.Labels),
		Annotations:   copyMap(n.Annotations),
		Taints:        taints,
		Allocatable:   allocatable,
		Unschedulable: n.Spec.Unschedulable,
		InstanceType:  firstLabel(n.Labels, "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"),
		Zone:          firstLabel(n.Labels, "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
		CapacityType:  n.Labels["karpenter.sh/capacity-type"],
	}, nil
}

func firstLabel(labels map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}
