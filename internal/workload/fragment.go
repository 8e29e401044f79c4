package workload

import (
	"fmt"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Fragment returns the cluster that plan (a plan for p) leaves once its
// NodeClaims run, as existing nodes "node-<i>" of the planned instance
// type, zone, capacity type and price holding the planned pods, and with
// every drop-th pending pod of p (by input position, starting at the
// drop-th) gone: the fragmented cluster consolidation is measured on. The
// problem has no pending pods; NodePools, instance types, DaemonSets and
// namespaces are p's. drop <= 0 removes nothing.
func Fragment(p *solver.Problem, plan *solver.Plan, drop int) *solver.Problem {
	byRef := make(map[solver.PodRef]int, len(p.Pods))
	for i, pod := range p.Pods {
		byRef[pod.Ref()] = i
	}
	types := make(map[string]*solver.InstanceType, len(p.InstanceTypes))
	for i := range p.InstanceTypes {
		types[p.InstanceTypes[i].Name] = &p.InstanceTypes[i]
	}
	q := &solver.Problem{NodePools: p.NodePools, InstanceTypes: p.InstanceTypes, DaemonSets: p.DaemonSets,
		Namespaces: p.Namespaces, Options: p.Options}
	for i := range plan.NodeClaims {
		nc := &plan.NodeClaims[i]
		name := fmt.Sprintf("node-%d", i)
		it := types[nc.InstanceType]
		labels := map[string]string{}
		if it != nil {
			for k, v := range it.Labels {
				labels[k] = v
			}
		}
		for k, v := range nc.Labels {
			labels[k] = v
		}
		labels[solver.LabelHostname] = name
		labels[solver.LabelInstanceType] = nc.InstanceType
		nd := solver.Node{Name: name, NodePool: nc.NodePool, Labels: labels, Taints: nc.Taints,
			InstanceType: nc.InstanceType, Zone: nc.Zone, CapacityType: nc.CapacityType, PricePerHour: nc.PricePerHour}
		if it != nil {
			nd.Allocatable = it.Allocatable
		}
		for _, ref := range nc.Pods {
			idx, ok := byRef[ref]
			if !ok || (drop > 0 && idx%drop == drop-1) {
				continue
			}
			nd.Pods = append(nd.Pods, p.Pods[idx])
		}
		q.Nodes = append(q.Nodes, nd)
	}
	return q
}
