package solver

// binKind says where a bin comes from.
type binKind uint8

const (
	binNode     binKind = iota // an existing node
	binInFlight                // a NodeClaim already launched
	binNew                     // a NodeClaim this plan creates
)

// bin is anything pods can be placed on: an existing node, an in-flight
// NodeClaim or a new NodeClaim.
type bin struct {
	id     int
	kind   binKind
	name   string
	labels map[string]string // known labels, hostname included
	taints []Taint
	// alloc is the allocatable of the node; for a new claim, the
	// component-wise maximum over its remaining options (a quick reject).
	alloc []int64
	used  []int64
	ports []HostPort
	// dsPorts are the host ports of DaemonSets that will run on an
	// in-flight claim once it registers (new claims: claim.dsPorts).
	dsPorts []HostPort
	pending []PodRef // pending pods placed here, in order
	podIdx  []int    // their indexes in Problem.Pods (or -1)
	claim   *claim   // new claims only
	deleted bool     // consolidation: the node is going away
	node    *Node
}

func (s *solver) newBinID() int { return len(s.bins) }

// addExistingNodes turns nodes and in-flight NodeClaims into bins and
// counts the pods already on them.
func (s *solver) addExistingNodes() {
	for i := range s.p.Nodes {
		if s.halt.stopped() {
			return
		}
		nd := &s.p.Nodes[i]
		labels := copyLabels(nd.Labels, 1)
		if _, ok := labels[LabelHostname]; !ok {
			labels[LabelHostname] = nd.Name
		}
		b := &bin{id: s.newBinID(), kind: binNode, name: nd.Name, labels: labels, taints: nd.Taints,
			alloc: s.res.allocVec(nd.Allocatable, 0), used: make([]int64, s.res.n()), node: nd,
			deleted: nd.Unschedulable}
		s.addBin(b)
		for _, pod := range nd.Pods {
			s.addExistingPod(b, pod)
		}
	}
	for i := range s.p.NodeClaims {
		if s.halt.stopped() {
			return
		}
		nc := &s.p.NodeClaims[i]
		labels := copyLabels(nc.Labels, 5)
		setDefault(labels, LabelHostname, nc.Name)
		setDefault(labels, LabelZone, nc.Zone)
		setDefault(labels, LabelCapacityType, nc.CapacityType)
		setDefault(labels, LabelInstanceType, nc.InstanceType)
		setDefault(labels, LabelNodePool, nc.NodePool)
		alloc := nc.Allocatable
		if len(alloc) == 0 {
			for _, it := range s.its {
				if it.name == nc.InstanceType {
					alloc = s.p.InstanceTypes[it.idx].Allocatable
				}
			}
		}
		b := &bin{id: s.newBinID(), kind: binInFlight, name: nc.Name, labels: labels, taints: nc.Taints,
			alloc: s.res.allocVec(alloc, defaultPods), used: make([]int64, s.res.n())}
		hasDS := false
		for _, pod := range nc.Pods {
			hasDS = hasDS || pod.DaemonSet
		}
		if !hasDS {
			// DaemonSet pods will land on it as soon as it registers.
			addVec(b.used, s.dsOverheadFor(labels, nc.Taints))
			b.dsPorts = s.dsPortsFor(labels, nc.Taints)
		}
		s.addBin(b)
		for _, pod := range nc.Pods {
			s.addExistingPod(b, pod)
		}
	}
}

func (s *solver) addExistingPod(b *bin, pod *Pod) {
	addVec(b.used, s.res.podVec(pod.Requests))
	b.ports = append(b.ports, pod.HostPorts...)
	s.countExistingPod(b, pod)
}

func copyLabels(m map[string]string, extra int) map[string]string {
	out := make(map[string]string, len(m)+extra)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok && v != "" {
		m[k] = v
	}
}

// portsConflict reports whether any port of ps clashes with one in used.
func portsConflict(used, ps []HostPort) bool {
	for _, a := range ps {
		for _, b := range used {
			if a.Port != b.Port || protocol(a.Protocol) != protocol(b.Protocol) {
				continue
			}
			if wildIP(a.HostIP) || wildIP(b.HostIP) || a.HostIP == b.HostIP {
				return true
			}
		}
	}
	return false
}

func protocol(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

func wildIP(ip string) bool { return ip == "" || ip == "0.0.0.0" }

// tolerated reports whether the pod may land on a node with these taints;
// avoidSoft also refuses untolerated PreferNoSchedule taints.
func tolerated(pod *Pod, taints []Taint, avoidSoft bool) bool {
	for _, t := range taints {
		if t.Effect == EffectPreferNoSchedule && !avoidSoft {
			continue
		}
		if !pod.Tolerates(t) {
			return false
		}
	}
	return true
}
