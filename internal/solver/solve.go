package solver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalidProblem is wrapped by every error Solve and Consolidate return:
// the input does not define a solvable problem.
var ErrInvalidProblem = errors.New("invalid problem")

// solver is the state of one solve.
type solver struct {
	p *Problem
	// halt stops the long loops when the caller has gone (halt.go).
	halt    *halt
	res     resIndex
	its     []*itInfo
	itKeys  map[string]bool // label keys instance types define
	pools   []*poolInfo     // weight order
	dsets   []*dsInfo
	dsPorts bool // some DaemonSet binds a host port
	bins    []*bin
	classes []*podClass
	// partition is the pods of each class in creation order (classPartition).
	partition [][]int
	groups    []*group
	groupIdx  map[string]*group
	// spreadGroups are the groups of topology spread constraints.
	spreadGroups  []*group
	requiredAnti  map[*group]bool
	selCache      map[string][]*group
	compat        map[compatKey][]uint64
	candsShared   map[candsKey][]cand
	maxOpts       int
	hasSoftTaints bool
	newClaims     int
	// maxNewClaims caps new claims (-1: no cap); consolidation uses it.
	maxNewClaims int
	// existingOff keeps existing bins for counting only (replacement).
	existingOff bool

	// zcIDs numbers (zone, capacity type) pairs; zcNames[id] is zone+ct.
	zcIDs   map[[2]string]int32
	zcNames []string
	zcMemo  []int8
	zcSpot  []bool // the pair's capacity type is spot
	zcOK    []bool // scratch of spotDiversity
	zcCount []int
	// groupKeys caches the instance type label keys groups count on, for
	// the first groupKeysN groups.
	groupKeys  []string
	groupKeysN int

	scratch      []claimOpt
	scratchFree  map[string][]string
	scratchLevel *level

	placedOn []*bin      // per pending pod
	podClass []*podClass // per pending pod, built by classOf
	// roomAll and roomZone bound the room pods may move into (repack.go).
	roomAll  *roomTop
	roomZone map[string]*roomTop
	// binsByZone lists the bins per zone label when a repack pass starts.
	binsByZone  map[string][]*bin
	freeRoom    [][]int64 // per bin id: room left at the launch price
	unscheduled map[int]string
	// baseUsed is, per existing bin id, what was used before the solve.
	baseUsed map[int][]int64

	// growSlack enables growing claims (see grow.go) when positive;
	// growing and growLimit describe the check under way.
	growSlack float64
	// openCopies caps the copies a new claim is sized for (0: none).
	openCopies int64
	growing    bool
	growLimit  float64

	// zoneMemo remembers quickTopo's answer per zone during one first
	// fit scan when zoneMemoOn (see quickTopoZone).
	zoneMemo   []quickMemo
	zoneMemoOn bool
}

// Solve plans where the pending pods of p go. It returns an error when the
// input does not define a problem (for example an unknown operator;
// wrapping ErrInvalidProblem), or when ctx ends first (wrapping ctx.Err()):
// the solve then stops within a few milliseconds of work (halt.go). Pods
// that cannot be placed are listed in Plan.Unschedulable.
func Solve(ctx context.Context, p *Problem) (*Plan, error) {
	if err := ctx.Err(); err != nil {
		return nil, stoppedErr(err)
	}
	h := watch(ctx)
	defer h.release()
	if err := validateProblem(h, p); err != nil {
		return nil, err
	}
	a := improve(h, p)
	if a.err != nil {
		return nil, a.err
	}
	a.plan.LowerBoundPerHour = a.s.lowerBound()
	if len(a.plan.Unschedulable) == 0 {
		a.plan.LowerBoundPerHour = max(a.plan.LowerBoundPerHour, a.patternBound)
	}
	if err := h.err(); err != nil {
		return nil, err
	}
	return a.plan, nil
}

// newSolverFrom prepares a solve of the validated problem p, stopped by h.
// A non-nil base, prepared from the same problem and no longer changing,
// lends its class partition and per-level caches (see improve.go). It
// fails only when h stops it.
func newSolverFrom(h *halt, p *Problem, base *solver) (*solver, error) {
	s := &solver{p: p, halt: h, groupIdx: map[string]*group{}, requiredAnti: map[*group]bool{},
		selCache: map[string][]*group{}, compat: map[compatKey][]uint64{}, maxNewClaims: -1,
		unscheduled: map[int]string{}}
	s.maxOpts = p.Options.MaxInstanceTypeOptions
	if s.maxOpts <= 0 {
		s.maxOpts = 60
	}
	s.res = newResIndex(resourceNames(h, p))
	if err := h.err(); err != nil {
		return nil, err
	}
	s.prepInstanceTypes()
	s.prepPools()
	var partition [][]int
	if base != nil {
		partition = base.partition
	}
	s.buildClasses(partition)
	if err := h.err(); err != nil {
		return nil, err
	}
	for _, c := range s.classes {
		for _, g := range c.ownsAnti {
			s.requiredAnti[g] = true
		}
	}
	for _, g := range s.spreadGroups {
		s.addPotentialDomains(g)
	}
	s.addExistingNodes()
	if err := h.err(); err != nil {
		return nil, err
	}
	s.baseUsed = make(map[int][]int64, len(s.bins))
	for _, b := range s.bins {
		s.baseUsed[b.id] = append([]int64(nil), b.used...)
	}
	s.linkClasses()
	if base != nil {
		s.borrowCaches(base)
	}
	if err := h.err(); err != nil {
		return nil, err
	}
	s.placedOn = make([]*bin, len(p.Pods))
	return s, nil
}

// resourceNames lists the resources p names anywhere (partly when h
// stops).
func resourceNames(h *halt, p *Problem) map[string]bool {
	seen := map[string]bool{}
	add := func(r Resources) {
		for k := range r {
			seen[k] = true
		}
	}
	for _, pod := range p.Pods {
		if h.stopped() {
			return seen
		}
		add(pod.Requests)
	}
	for i := range p.DaemonSets {
		add(p.DaemonSets[i].Template.Requests)
	}
	for i := range p.Nodes {
		for _, pod := range p.Nodes[i].Pods {
			add(pod.Requests)
		}
	}
	for i := range p.NodeClaims {
		for _, pod := range p.NodeClaims[i].Pods {
			add(pod.Requests)
		}
	}
	for i := range p.NodePools {
		add(p.NodePools[i].Limits)
	}
	return seen
}

// placeAll places classes biggest first. Pods that fail are retried while
// the previous pass placed something (a pod's affinity target may come
// later in the order).
func (s *solver) placeAll() {
	todo := make([][]int, len(s.classes))
	for i, c := range s.classes {
		todo[i] = c.pods
	}
	for {
		placed, failed := 0, 0
		for i, c := range s.classes {
			var left []int
			for j, podIdx := range todo[i] {
				if s.halt.stopped() {
					return
				}
				if len(left) > 0 {
					// An identical pod just failed and nothing changed since.
					left = append(left, podIdx)
					s.unscheduled[podIdx] = s.unscheduled[left[0]]
					continue
				}
				if reason := s.place(c, podIdx, int64(len(todo[i])-j)); reason != "" {
					s.unscheduled[podIdx] = reason
					left = append(left, podIdx)
					continue
				}
				delete(s.unscheduled, podIdx)
				placed++
			}
			todo[i] = left
			failed += len(left)
		}
		if failed == 0 || placed == 0 {
			return
		}
	}
}

// place puts one pod somewhere, relaxing preferences step by step; it
// returns why it failed, or "".
func (s *solver) place(c *podClass, podIdx int, nRem int64) string {
	var why reasons
	for _, lv := range c.levels {
		why = reasons{}
		if b := s.firstFit(c, lv, podIdx, &why); b != nil {
			return ""
		}
		if s.growSlack > 0 && s.growFit(c, lv, podIdx, &why) != nil {
			return ""
		}
		if b := s.openClaim(c, lv, podIdx, nRem, &why); b != nil {
			return ""
		}
	}
	return why.String(s, c)
}

// firstFit tries existing nodes, in-flight claims and new claims in that
// order (see scan.go for the bins it skips).
func (s *solver) firstFit(c *podClass, lv *level, podIdx int, why *reasons) *bin {
	defer s.memoZones(c, lv)()
	b := s.scanBins(&lv.fit, lv.sticky, 0, func(b *bin) reject {
		r, w := s.canPlace(c, lv, b)
		if r == rejectTransient {
			why.topology(w)
		} else if r == rejectPermanent && w != "" && b.kind != binNew {
			why.existing = true
		}
		return r
	})
	if b != nil {
		s.commit(c, b, podIdx)
	}
	return b
}

// canPlace checks every rule for a pod of class c at level lv on bin b.
func (s *solver) canPlace(c *podClass, lv *level, b *bin) (reject, string) {
	if b.deleted || (s.existingOff && b.kind != binNew) {
		return rejectPermanent, ""
	}
	upgradable := b.claim != nil && (s.growing || len(lv.affinity)+len(c.affinityBy) > 0 && s.mustJoin(c, lv, b))
	if !upgradable && !fitsIn(b.used, c.req, b.alloc) {
		return rejectPermanent, "resources"
	}
	if !tolerated(c.rep, b.taints, lv.avoidSoft) {
		return rejectPermanent, "taints"
	}
	if len(c.rep.HostPorts) > 0 && (portsConflict(b.ports, c.rep.HostPorts) || portsConflict(b.dsPorts, c.rep.HostPorts) ||
		b.claim != nil && portsConflict(b.claim.dsPorts, c.rep.HostPorts)) {
		return rejectPermanent, "host ports"
	}
	if b.claim != nil {
		if r, w := s.quickTopoZone(c, lv, b); r != accept {
			return r, w
		}
		return s.checkClaim(c, lv, b)
	}
	if !lv.reqs.matches(b.labels) {
		return rejectPermanent, "labels"
	}
	return s.topoCheck(c, lv, func(k string) (string, bool) { return s.domainOf(b, k) })
}

// commit places pod podIdx of class c on b, right after canPlace accepted.
func (s *solver) commit(c *podClass, b *bin, podIdx int) {
	if b.claim != nil {
		s.applyScratch(b)
	}
	addVec(b.used, c.req)
	b.ports = append(b.ports, c.rep.HostPorts...)
	pod := s.p.Pods[podIdx]
	b.pending = append(b.pending, pod.Ref())
	b.podIdx = append(b.podIdx, podIdx)
	s.placedOn[podIdx] = b
	s.count(b, c.selectedBy, c.owns)
}

// plan assembles the result.
func (s *solver) plan() *Plan {
	pl := &Plan{ExistingBindings: map[string][]PodRef{}}
	for _, b := range s.bins {
		if s.halt.stopped() {
			return pl // unfinished: the caller checks halt.err
		}
		if len(b.pending) == 0 {
			continue
		}
		if b.kind == binNew {
			nc := s.finishClaim(b)
			pl.CostPerHour += nc.PricePerHour
			pl.NodeClaims = append(pl.NodeClaims, nc)
			continue
		}
		pl.ExistingBindings[b.name] = append([]PodRef(nil), b.pending...)
	}
	idx := make([]int, 0, len(s.unscheduled))
	for i := range s.unscheduled {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	if len(idx) == 0 {
		return pl
	}
	classOf := make(map[int]*podClass, len(idx))
	for _, c := range s.classes {
		for _, i := range c.pods {
			if _, bad := s.unscheduled[i]; bad {
				classOf[i] = c
			}
		}
	}
	explained := map[*podClass][]NodePoolReason{}
	for _, i := range idx {
		if s.halt.stopped() {
			return pl
		}
		c := classOf[i]
		why, ok := explained[c]
		if !ok {
			why = s.explainPools(c, s.unscheduled[i])
			explained[c] = why
		}
		pl.Unschedulable = append(pl.Unschedulable, UnschedulablePod{Pod: s.p.Pods[i].Ref(), Reason: s.unscheduled[i], NodePools: why})
	}
	return pl
}

// reasons collects why a pod found no place, to explain it.
type reasons struct {
	taints    []string
	tolerated bool
	types     []string
	limits    []string
	topo      string
	existing  bool
	ports     string
	other     string
}

// hostPort records that a DaemonSet holds a host port the pod wants on
// the pool's nodes.
func (r *reasons) hostPort(pi *poolInfo, ds *dsInfo, want []HostPort) {
	r.tolerated = true
	if r.ports != "" {
		return
	}
	for _, p := range want {
		if portsConflict(ds.ports, []HostPort{p}) {
			r.ports = fmt.Sprintf("host port %s/%d is held by DaemonSet %s/%s on the nodes NodePool %s can launch",
				protocol(p.Protocol), p.Port, ds.ds.Namespace, ds.ds.Name, pi.np.Name)
			return
		}
	}
}

func (r *reasons) taint(pi *poolInfo, pod *Pod) {
	for _, t := range pi.np.Taints {
		if !pod.Tolerates(t) {
			r.taints = append(r.taints, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
			return
		}
	}
}

func (r *reasons) limit(pi *poolInfo, res string) {
	r.tolerated = true
	msg := fmt.Sprintf("NodePool %s limit %s=%s reached", pi.np.Name, res, quantity(res, pi.np.Limits[res]))
	if len(r.limits) == 0 || r.limits[len(r.limits)-1] != msg {
		r.limits = append(r.limits, msg)
	}
}

func (r *reasons) topology(w string) {
	if w != "" && r.topo == "" {
		r.topo = w
	}
}

// noType explains why no instance type of pool pi takes the pod.
func (r *reasons) noType(s *solver, c *podClass, lv *level, pi *poolInfo) {
	r.tolerated = true
	mask := s.compatMask(lv, pi)
	n := s.res.n()
	largest := make([]int64, n)
	any := false
	for _, it := range s.its {
		for o := range it.offers {
			if mask[it.idx]&(1<<uint(o)) != 0 {
				maxVec(largest, pi.availOf(it.idx, o, n))
				any = true
			}
		}
	}
	if !any {
		r.types = append(r.types, fmt.Sprintf("NodePool %s: no instance type offering matches the pod's node selector, affinity or volumes", pi.np.Name))
		return
	}
	for i, q := range c.req {
		if q > largest[i] {
			name := s.res.names[i]
			r.types = append(r.types, fmt.Sprintf("no instance type has %s %s for 1 pod: largest allowed allocatable is %s %s",
				quantity(name, q), name, quantity(name, largest[i]), name))
			return
		}
	}
	var parts []string
	for i, q := range c.req {
		if q > 0 && i != resPods {
			parts = append(parts, s.res.names[i]+"="+quantity(s.res.names[i], q))
		}
	}
	r.types = append(r.types, fmt.Sprintf("no instance type of NodePool %s fits %s together", pi.np.Name, strings.Join(parts, ", ")))
}

func (r *reasons) String(s *solver, c *podClass) string {
	switch {
	case len(s.pools) == 0 && r.other == "":
		if r.topo != "" {
			return "no existing node fits: " + r.topo
		}
		return "no NodePool and no existing node fits"
	case !r.tolerated && len(r.taints) > 0:
		return "no NodePool tolerated: taint " + r.taints[0]
	case r.topo != "":
		return "cannot satisfy " + r.topo
	case len(r.limits) > 0:
		return r.limits[0]
	case len(r.types) > 0:
		return r.types[0]
	case r.ports != "":
		return r.ports
	case r.other != "":
		return r.other
	}
	return "no node fits"
}
