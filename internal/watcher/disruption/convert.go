package disruption

import (
	"fmt"
	"maps"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
)

// This file turns the Kubernetes objects consolidation sends the solver
// into their flotilla.types.v1 form, through internal/kubeyaml: the same
// conversion and checks the file loader and the provisioner use.

// convertNode converts a candidate's node with its running pods. Pool is
// the NodePool name; empty marks the node as a destination only, not a
// consolidation candidate.
func convertNode(c *Candidate, pool string) (*typesv1.Node, error) {
	out, err := kubeyaml.Node(c.Node)
	if err != nil {
		return nil, err
	}
	out.NodePool = pool
	out.PricePerHour = c.PricePerHour
	conv := kubeyaml.NewConverter(nil, nil, nil)
	for _, p := range c.Pods {
		if !isActive(p) {
			continue
		}
		pod, err := conv.Pod(p)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", c.Node.Name, err)
		}
		out.Pods = append(out.Pods, pod)
	}
	return out, nil
}

// convertInFlight converts a NodeClaim that has no node yet.
func convertInFlight(c *Candidate) (*typesv1.NodeClaim, error) {
	nc := c.NodeClaim
	alloc := nc.Status.Allocatable
	if len(alloc) == 0 {
		alloc = nc.Status.Capacity
	}
	taints, err := kubeyaml.Taints(nc.Spec.Taints)
	if err != nil {
		return nil, fmt.Errorf("nodeclaim %s: %w", nc.Name, err)
	}
	allocatable, err := kubeyaml.Quantities(alloc)
	if err != nil {
		return nil, fmt.Errorf("nodeclaim %s: %w", nc.Name, err)
	}
	return &typesv1.NodeClaim{
		Name:         nc.Name,
		NodePool:     poolName(c),
		InstanceType: nc.Labels[corev1.LabelInstanceTypeStable],
		Zone:         nc.Labels[corev1.LabelTopologyZone],
		CapacityType: nc.Labels[karpv1.CapacityTypeLabelKey],
		PricePerHour: c.PricePerHour,
		Labels:       maps.Clone(nc.Labels),
		Taints:       taints,
		Allocatable:  allocatable,
	}, nil
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
