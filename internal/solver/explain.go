package solver

import (
	"fmt"
	"sort"
	"strings"
)

// Explanations of unschedulable pods.
//
// A pod no bin takes is explained once per class, per NodePool, from its
// required constraints (every preference relaxed): the taint the pool has
// that the pod does not tolerate, or that no instance type offering of the
// pool matches the pod's node selector, affinity or volumes, or which
// resources rule out each instance family (grouped by the resource, a few
// family names each), or the pool's limits; when new nodes of the pool
// could take the pod, the rule that failed while placing (topology, new
// nodes not allowed) is given instead.

// LabelInstanceFamily is the instance family label Karpenter's AWS
// provider puts on nodes; families are otherwise the part of the instance
// type name before the first dot.
const LabelInstanceFamily = "karpenter.k8s.aws/instance-family"

// NodePoolReason is why one NodePool cannot take a pod.
type NodePoolReason struct {
	NodePool string
	Reason   string
}

// maxFamiliesNamed caps the family names an explanation lists per resource.
const maxFamiliesNamed = 4

// explainPools says, per NodePool in weight order, why the pods of class c
// could not go on a new node of that pool; placing is what failed while
// placing the pod (used when the pool itself could take it).
func (s *solver) explainPools(c *podClass, placing string) []NodePoolReason {
	lv := c.levels[len(c.levels)-1]
	out := make([]NodePoolReason, 0, len(s.pools))
	for _, pi := range s.pools {
		out = append(out, NodePoolReason{NodePool: pi.np.Name, Reason: s.explainPool(c, lv, pi, placing)})
	}
	return out
}

func (s *solver) explainPool(c *podClass, lv *level, pi *poolInfo, placing string) string {
	for _, t := range pi.hard {
		if !c.rep.Tolerates(t) {
			return fmt.Sprintf("taint %s not tolerated", formatTaint(t))
		}
	}
	mask := s.compatMask(lv, pi)
	any := false
	for _, m := range mask {
		any = any || m != 0
	}
	if !any {
		if !s.poolHasOfferings(pi) {
			return "no instance type offering is available under the NodePool's requirements"
		}
		return "no instance type offering matches the pod's node selector, node affinity or volume topology"
	}
	if msg := s.explainResources(c, mask, pi); msg != "" {
		return msg
	}
	if msg := s.explainHostPorts(c, lv, pi); msg != "" {
		return msg
	}
	if pi.limited {
		for _, cd := range s.candsFor(c, lv, pi) {
			if ok, _ := pi.withinLimits(s.its[cd.it].capacity); ok {
				return placingReason(placing)
			}
		}
		return "NodePool limits reached (" + s.formatLimits(pi) + ")"
	}
	return placingReason(placing)
}

// explainHostPorts names a DaemonSet holding a host port the pod wants
// when one does so on every offering of the pool the pod could use; it
// returns "" otherwise.
func (s *solver) explainHostPorts(c *podClass, lv *level, pi *poolInfo) string {
	if pi.dsRun == nil || len(c.rep.HostPorts) == 0 {
		return ""
	}
	var first *dsInfo
	for _, cd := range s.candsFor(c, lv, pi) {
		ds := pi.dsConflict(int(cd.it), int(cd.off), c.rep.HostPorts)
		if ds == nil {
			return ""
		}
		if first == nil {
			first = ds
		}
	}
	if first == nil {
		return ""
	}
	var r reasons
	r.hostPort(pi, first, c.rep.HostPorts)
	return r.ports
}

func placingReason(placing string) string {
	if placing == "" {
		return "a new node would fit, but placing failed"
	}
	return "a new node would fit, but " + placing
}

func (s *solver) poolHasOfferings(pi *poolInfo) bool {
	for _, m := range pi.okMask {
		if m != 0 {
			return true
		}
	}
	return false
}

// explainResources groups the instance families whose matching offerings
// cannot hold one pod by the first resource their largest type lacks; it
// returns "" when some type holds the pod.
func (s *solver) explainResources(c *podClass, mask []uint64, pi *poolInfo) string {
	n := s.res.n()
	largest := map[string][]int64{}
	for _, it := range s.its {
		for o := range it.offers {
			if mask[it.idx]&(1<<uint(o)) == 0 {
				continue
			}
			avail := pi.availOf(it.idx, o, n)
			if copiesIn(c.req, avail) >= 1 {
				return ""
			}
			fam := familyOf(it)
			if largest[fam] == nil {
				largest[fam] = make([]int64, n)
			}
			maxVec(largest[fam], avail)
		}
	}
	byRes := map[int][]string{}
	for fam, v := range largest {
		r := firstShort(c.req, v)
		byRes[r] = append(byRes[r], fam)
	}
	var parts []string
	for r := -1; r < n; r++ {
		fams := byRes[r]
		if len(fams) == 0 {
			continue
		}
		sort.Strings(fams)
		if r < 0 {
			parts = append(parts, fmt.Sprintf("no single type has %s together (%s)", s.formatReq(c.req), nameSome(fams)))
			continue
		}
		name := s.res.names[r]
		top := int64(0)
		for _, f := range fams {
			top = max(top, largest[f][r])
		}
		parts = append(parts, fmt.Sprintf("%s %s needed, at most %s in %s", quantity(name, c.req[r]), name, quantity(name, top), nameSome(fams)))
	}
	return "no instance type fits the pod: " + strings.Join(parts, "; ")
}

// firstShort is the first resource req asks more of than avail has, or -1
// when each fits on its own.
func firstShort(req, avail []int64) int {
	for i, q := range req {
		if q > avail[i] {
			return i
		}
	}
	return -1
}

func familyOf(it *itInfo) string {
	if f, ok := it.labels[LabelInstanceFamily]; ok && f != "" {
		return f
	}
	if i := strings.IndexByte(it.name, '.'); i > 0 {
		return it.name[:i]
	}
	return it.name
}

func nameSome(names []string) string {
	word := "families"
	if len(names) == 1 {
		word = "family"
	}
	if len(names) <= maxFamiliesNamed {
		return word + " " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s %s and %d more", word, strings.Join(names[:maxFamiliesNamed], ", "), len(names)-maxFamiliesNamed)
}

func (s *solver) formatReq(req []int64) string {
	var parts []string
	for i, q := range req {
		if q > 0 && i != resPods {
			parts = append(parts, s.res.names[i]+"="+quantity(s.res.names[i], q))
		}
	}
	return strings.Join(parts, ", ")
}

func (s *solver) formatLimits(pi *poolInfo) string {
	var parts []string
	for i, l := range pi.limits {
		if l >= 0 {
			name := s.res.names[i]
			parts = append(parts, fmt.Sprintf("%s %s of %s", name, quantity(name, pi.committed[i]), quantity(name, l)))
		}
	}
	return strings.Join(parts, ", ")
}

func formatTaint(t Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}
