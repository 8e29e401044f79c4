package solver

import (
	"sort"
	"strings"
)

// maxOfferings bounds the offerings per instance type the solver looks at
// (offering sets are kept as bit masks).
const maxOfferings = 64

// itInfo is an instance type prepared once per solve.
type itInfo struct {
	idx      int
	name     string
	labels   map[string]string // type labels plus node.kubernetes.io/instance-type
	alloc    []int64
	capacity []int64
	offers   []Offering
	// zc numbers each offering's (zone, capacity type) pair.
	zc []int32
}

// poolInfo is a NodePool prepared once per solve.
type poolInfo struct {
	idx  int
	np   *NodePool
	base map[string]string // labels every node of the pool gets
	// free holds custom keys a requirement allows a few values for (In
	// [a,b]) without a template label: a pod may pin one of them.
	free     map[string][]string
	hard     []Taint   // NoSchedule and NoExecute taints
	soft     []Taint   // PreferNoSchedule taints
	okMask   []uint64  // per instance type: offerings available and allowed
	avail    [][]int64 // per instance type: offering-major vectors, allocatable less DaemonSet overhead
	overhead [][]int64 // per instance type: offering-major DaemonSet overhead
	// dsRun lists, per instance type and offering, the DaemonSets with host
	// ports that run there; nil when no DaemonSet binds a host port.
	dsRun     [][][]*dsInfo
	minValues []Requirement
	limits    []int64 // -1 where unlimited
	committed []int64 // Usage plus the worst-case capacity of new claims
	limited   bool
	nodesIdx  int // index of ResourceNodes in limits, -1 if not limited
	// order lists the allowed offerings of every instance type cheapest
	// first (then by name, zone and capacity type): candsFor filters it.
	order []cand
}

type dsInfo struct {
	ds   *DaemonSet
	reqs *nodeReqs
	req  []int64
	// ports are the host ports the DaemonSet's pod binds on every node it
	// runs on (Kubernetes' NodePorts filter counts them like any pod's).
	ports []HostPort
}

// wellKnownKeys are labels the solver itself sets on new nodes.
var wellKnownKeys = map[string]bool{
	LabelZone: true, LabelCapacityType: true, LabelInstanceType: true,
	LabelNodePool: true, LabelHostname: true,
}

func (s *solver) prepInstanceTypes() {
	s.itKeys = map[string]bool{}
	for i := range s.p.InstanceTypes {
		it := &s.p.InstanceTypes[i]
		labels := make(map[string]string, len(it.Labels)+1)
		for k, v := range it.Labels {
			labels[k] = v
			s.itKeys[k] = true
		}
		labels[LabelInstanceType] = it.Name
		s.itKeys[LabelInstanceType] = true
		capacity := it.Capacity
		if len(capacity) == 0 {
			capacity = it.Allocatable
		}
		offers := it.Offerings
		if len(offers) > maxOfferings {
			offers = offers[:maxOfferings]
		}
		zc := make([]int32, len(offers))
		for o, off := range offers {
			zc[o] = s.zcID(off.Zone, off.CapacityType)
		}
		capv := s.res.allocVec(capacity, defaultPods)
		if n, ok := s.res.idx[ResourceNodes]; ok {
			// Every node counts once against a NodePool's limits.nodes.
			capv[n] = 1
		}
		s.its = append(s.its, &itInfo{
			idx: i, name: it.Name, labels: labels,
			alloc:    s.res.allocVec(it.Allocatable, defaultPods),
			capacity: capv,
			offers:   offers,
			zc:       zc,
		})
	}
	for i := range s.p.DaemonSets {
		ds := &s.p.DaemonSets[i]
		t := &ds.Template
		s.dsets = append(s.dsets, &dsInfo{ds: ds, reqs: newNodeReqs(t.NodeSelector, t.RequiredNodeAffinity, nil), req: s.res.podVec(t.Requests), ports: t.HostPorts})
		s.dsPorts = s.dsPorts || len(t.HostPorts) > 0
	}
}

func (s *solver) prepPools() {
	order := make([]int, len(s.p.NodePools))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := &s.p.NodePools[order[a]], &s.p.NodePools[order[b]]
		if x.Weight != y.Weight {
			return x.Weight > y.Weight
		}
		return x.Name < y.Name
	})
	for _, i := range order {
		s.pools = append(s.pools, s.prepPool(len(s.pools), &s.p.NodePools[i]))
	}
}

func (s *solver) prepPool(idx int, np *NodePool) *poolInfo {
	pi := &poolInfo{idx: idx, np: np, base: map[string]string{}, free: map[string][]string{}}
	for k, v := range np.Labels {
		pi.base[k] = v
	}
	pi.base[LabelNodePool] = np.Name
	// Karpenter turns requirements on custom keys into labels: a single
	// value becomes a label, several values stay open until a pod picks.
	for _, r := range np.Requirements {
		// Keys of the karpenter.k8s.aws domain are Karpenter's own (its CRD
		// restricts the domain to them): one no instance type carries, such
		// as capacity-reservation-id, filters types out rather than naming
		// a label Flotilla would write on a node that does not have it.
		if r.Operator != OpIn || s.itKeys[r.Key] || wellKnownKeys[r.Key] || strings.HasPrefix(r.Key, "karpenter.k8s.aws/") {
			continue
		}
		if _, ok := np.Labels[r.Key]; ok {
			continue
		}
		dom := r.Values
		if prev, ok := pi.free[r.Key]; ok {
			dom = intersect(prev, r.Values)
		}
		pi.free[r.Key] = dom
	}
	for k, dom := range pi.free {
		var kept []string
		for _, x := range dom {
			if RequirementsMatch(reqsOnKey(np.Requirements, k), map[string]string{k: x}) {
				kept = append(kept, x)
			}
		}
		if len(kept) == 1 {
			pi.base[k] = kept[0]
			delete(pi.free, k)
		} else {
			pi.free[k] = kept
		}
	}
	for _, t := range np.Taints {
		if t.Effect == EffectPreferNoSchedule {
			pi.soft = append(pi.soft, t)
			s.hasSoftTaints = true
		} else {
			pi.hard = append(pi.hard, t)
		}
	}
	for _, r := range np.Requirements {
		if r.MinValues > 0 {
			pi.minValues = append(pi.minValues, r)
		}
	}
	pi.limits = make([]int64, s.res.n())
	for i := range pi.limits {
		pi.limits[i] = -1
	}
	pi.nodesIdx = -1
	for k, q := range np.Limits {
		if i, ok := s.res.idx[k]; ok {
			pi.limits[i] = q
			pi.limited = true
			if k == ResourceNodes {
				pi.nodesIdx = i
			}
		}
	}
	pi.committed = s.res.vec(np.Usage)
	s.prepPoolOfferings(pi)
	return pi
}

// prepPoolOfferings decides, per instance type and offering, whether the
// pool may launch it and how much room DaemonSets leave on it.
func (s *solver) prepPoolOfferings(pi *poolInfo) {
	n := s.res.n()
	pi.okMask = make([]uint64, len(s.its))
	pi.avail = make([][]int64, len(s.its))
	pi.overhead = make([][]int64, len(s.its))
	if s.dsPorts {
		pi.dsRun = make([][][]*dsInfo, len(s.its))
	}
	for _, it := range s.its {
		v := view{base: pi.base, it: it.labels, free: pi.free}
		avail := make([]int64, n*len(it.offers))
		over := make([]int64, n*len(it.offers))
		if pi.dsRun != nil {
			pi.dsRun[it.idx] = make([][]*dsInfo, len(it.offers))
		}
		for o, off := range it.offers {
			v.zone, v.ct = off.Zone, off.CapacityType
			if off.Available && v.holdsAll(pi.np.Requirements) {
				pi.okMask[it.idx] |= 1 << uint(o)
			}
			ov := over[o*n : o*n+n]
			for _, ds := range s.dsets {
				w := view{base: pi.base, it: it.labels, zone: off.Zone, ct: off.CapacityType}
				if ds.reqs.holds(&w) && ds.ds.Template.ToleratesHardTaints(pi.np.Taints) {
					addVec(ov, ds.req)
					if pi.dsRun != nil && len(ds.ports) > 0 {
						pi.dsRun[it.idx][o] = append(pi.dsRun[it.idx][o], ds)
					}
				}
			}
			av := avail[o*n : o*n+n]
			copy(av, it.alloc)
			subVec(av, ov)
		}
		pi.avail[it.idx] = avail
		pi.overhead[it.idx] = over
	}
	s.sortPoolOfferings(pi)
}

// zcID numbers a (zone, capacity type) pair.
func (s *solver) zcID(zone, ct string) int32 {
	if s.zcIDs == nil {
		s.zcIDs = map[[2]string]int32{}
	}
	k := [2]string{zone, ct}
	id, ok := s.zcIDs[k]
	if !ok {
		id = int32(len(s.zcNames))
		s.zcIDs[k] = id
		s.zcNames = append(s.zcNames, zone+ct)
		s.zcSpot = append(s.zcSpot, ct == CapacityTypeSpot)
	}
	return id
}

// sortPoolOfferings fills pi.order: every allowed offering, cheapest
// first, ties by instance type name, then zone and capacity type.
func (s *solver) sortPoolOfferings(pi *poolInfo) {
	var order []cand
	for _, it := range s.its {
		m := pi.okMask[it.idx]
		for o := range it.offers {
			if m&(1<<uint(o)) != 0 {
				order = append(order, cand{it: int32(it.idx), off: int32(o), price: it.offers[o].PricePerHour, zc: it.zc[o]})
			}
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := &order[a], &order[b]
		if x.price != y.price {
			return x.price < y.price
		}
		if s.its[x.it].name != s.its[y.it].name {
			return s.its[x.it].name < s.its[y.it].name
		}
		return s.zcNames[x.zc] < s.zcNames[y.zc]
	})
	pi.order = order
}

func (pi *poolInfo) availOf(it, off, n int) []int64 {
	return pi.avail[it][off*n : off*n+n]
}

func (pi *poolInfo) overheadOf(it, off, n int) []int64 {
	return pi.overhead[it][off*n : off*n+n]
}

// withinLimits reports whether adding capacity keeps the pool within its
// limits; it names the first limit that would be exceeded.
func (pi *poolInfo) withinLimits(capacity []int64) (bool, int) {
	if !pi.limited {
		return true, -1
	}
	for i, l := range pi.limits {
		if l >= 0 && pi.committed[i]+capacity[i] > l {
			return false, i
		}
	}
	return true, -1
}

// nodesLeft is how many more new claims limits.nodes lets the pool open,
// -1 when it sets no such limit.
func (pi *poolInfo) nodesLeft() int64 {
	if pi.nodesIdx < 0 {
		return -1
	}
	return max(pi.limits[pi.nodesIdx]-pi.committed[pi.nodesIdx], 0)
}

func reqsOnKey(reqs []Requirement, key string) []Requirement {
	var out []Requirement
	for _, r := range reqs {
		if r.Key == key {
			out = append(out, r)
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// dsOverheadFor sums the DaemonSets that would run on a node with these
// labels and taints (for in-flight claims without DaemonSet pods).
func (s *solver) dsOverheadFor(labels map[string]string, taints []Taint) []int64 {
	out := make([]int64, s.res.n())
	for _, ds := range s.dsets {
		if ds.reqs.matches(labels) && ds.ds.Template.ToleratesHardTaints(taints) {
			addVec(out, ds.req)
		}
	}
	return out
}

// dsPortsFor lists the host ports of the DaemonSets that would run on a
// node with these labels and taints (for in-flight claims without
// DaemonSet pods).
func (s *solver) dsPortsFor(labels map[string]string, taints []Taint) []HostPort {
	var out []HostPort
	for _, ds := range s.dsets {
		if len(ds.ports) > 0 && ds.reqs.matches(labels) && ds.ds.Template.ToleratesHardTaints(taints) {
			out = append(out, ds.ports...)
		}
	}
	return out
}

// dsConflict returns a DaemonSet with host ports that runs on instance
// type it at offering off of pool pi and binds a port that clashes with
// ports, or nil.
func (pi *poolInfo) dsConflict(it, off int, ports []HostPort) *dsInfo {
	if pi.dsRun == nil || len(ports) == 0 {
		return nil
	}
	for _, ds := range pi.dsRun[it][off] {
		if portsConflict(ds.ports, ports) {
			return ds
		}
	}
	return nil
}
