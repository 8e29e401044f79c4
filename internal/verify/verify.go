// Package verify checks, independently of the solver's own code, that a plan
// is one the real kube-scheduler (and Karpenter's provisioning rules) would
// accept. It reuses only the label-matching primitives of package solver
// (match.go) and rebuilds everything else from the Problem and the Plan.
//
// Plan builds the final state of the cluster:
//
//   - every existing node with its bound pods plus the pending pods the plan
//     binds to it;
//   - every in-flight NodeClaim with its nominated pods plus the pending pods
//     the plan binds to it, and the DaemonSet pods that would run on it;
//   - every planned NodeClaim, materialized once per instance type option
//     (a claim may launch as any of them) with labels = NodePool labels +
//     claim labels + instance type labels + zone + capacity type + NodePool
//   - a kubernetes.io/hostname unique to the claim, taints = claim taints
//     plus NodePool taints (startup taints excluded), allocatable = the
//     instance type's allocatable, and the DaemonSet pods that would run on it.
//
// Existing nodes and in-flight claims get the well-known labels their fields
// imply (hostname = name, zone, capacity type, instance type, NodePool) when
// their Labels lack them, and a cordoned node carries the
// node.kubernetes.io/unschedulable:NoSchedule taint the node controller puts
// on it, which matters for topology spread with nodeTaintsPolicy: Honor.
//
// Node-local rules (resources, node selector and required node affinity,
// taints, volume topology, host ports) are checked on every node and on every
// instance type option of every planned claim. Rules that span nodes
// (pod anti-affinity, pod affinity, topology spread) are checked over the
// final state in which each planned claim is launched as its chosen
// InstanceType.
//
// Inter-pod rules are checked on the final state rather than by replaying
// kube-scheduler's queue. For anti-affinity this is exact. For required pod
// affinity and DoNotSchedule topology spread it is exact when the pending
// pods that a term or constraint selects carry the same term or constraint
// (the usual case: the replicas of one workload); otherwise a plan could be
// accepted by kube-scheduler in one binding order and rejected in another,
// and the checker reports it.
package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Names of the checks, used as Violation.Check.
const (
	CheckAccounting     = "accounting"
	CheckNodePool       = "nodepool"
	CheckLabels         = "labels"
	CheckInstanceType   = "instance-type"
	CheckOffering       = "offering"
	CheckPrice          = "price"
	CheckCost           = "cost"
	CheckLimits         = "limits"
	CheckResources      = "resources"
	CheckNodeSelector   = "node-selector"
	CheckTaints         = "taints"
	CheckVolumes        = "volumes"
	CheckHostPorts      = "host-ports"
	CheckAntiAffinity   = "pod-anti-affinity"
	CheckAffinity       = "pod-affinity"
	CheckTopologySpread = "topology-spread"
	CheckDisruption     = "disruption"
	CheckAction         = "action"
)

// Violation is one rule a plan breaks.
type Violation struct {
	Check string
	Msg   string
}

func (v *Violation) Error() string { return v.Check + ": " + v.Msg }

// Violations lists the violations an error returned by this package holds.
func Violations(err error) []*Violation {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Violation
		for _, e := range j.Unwrap() {
			out = append(out, Violations(e)...)
		}
		return out
	}
	var v *Violation
	if errors.As(err, &v) {
		return []*Violation{v}
	}
	return nil
}

// HasCheck reports whether err holds a violation of the named check.
func HasCheck(err error, check string) bool {
	for _, v := range Violations(err) {
		if v.Check == check {
			return true
		}
	}
	return false
}

type report struct {
	errs []error
	seen map[string]bool
}

func (r *report) add(check, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	key := check + "\x00" + msg
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[key] {
		return
	}
	r.seen[key] = true
	r.errs = append(r.errs, &Violation{Check: check, Msg: msg})
}

func (r *report) err() error { return errors.Join(r.errs...) }

// vnode is a node of the final state.
type vnode struct {
	desc         string
	labels       map[string]string
	taints       []solver.Taint // taints that filter pods (hard taints matter)
	spreadTaints []solver.Taint // taints seen by nodeTaintsPolicy Honor
	allocatable  solver.Resources
	pods         []*vpod       // pods bound to the node in the final state
	daemons      []*solver.Pod // DaemonSet pods that would start on a new node
	check        bool          // node-local rules apply (the plan changed it)
}

// vpod is a pod of the final state.
type vpod struct {
	pod    *solver.Pod
	node   *vnode
	placed bool // placed (or moved) by the plan under check
}

// add binds p to n; placed says the plan under check put it there.
func (n *vnode) add(p *solver.Pod, placed bool) {
	n.pods = append(n.pods, &vpod{pod: p, node: n, placed: placed})
	if placed {
		n.check = true
	}
}

// allocatableOf is n's allocatable amount of res; a node that does not
// state its pod capacity takes solver.DefaultPods, as the solver does.
func (n *vnode) allocatableOf(res string) int64 {
	q, ok := n.allocatable[res]
	if !ok && res == solver.ResourcePods {
		return solver.DefaultPods
	}
	return q
}

const cordonTaintKey = "node.kubernetes.io/unschedulable"

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+6)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func setIfMissing(labels map[string]string, key, value string) {
	if value == "" {
		return
	}
	if _, ok := labels[key]; !ok {
		labels[key] = value
	}
}

func existingNode(n *solver.Node) *vnode {
	labels := copyLabels(n.Labels)
	setIfMissing(labels, solver.LabelHostname, n.Name)
	setIfMissing(labels, solver.LabelZone, n.Zone)
	setIfMissing(labels, solver.LabelCapacityType, n.CapacityType)
	setIfMissing(labels, solver.LabelInstanceType, n.InstanceType)
	setIfMissing(labels, solver.LabelNodePool, n.NodePool)
	spread := append([]solver.Taint(nil), n.Taints...)
	if n.Unschedulable {
		spread = append(spread, solver.Taint{Key: cordonTaintKey, Effect: solver.EffectNoSchedule})
	}
	vn := &vnode{
		desc:         fmt.Sprintf("node %q", n.Name),
		labels:       labels,
		taints:       n.Taints,
		spreadTaints: spread,
		allocatable:  n.Allocatable,
	}
	for _, p := range n.Pods {
		vn.add(p, false)
	}
	return vn
}

func daemonPods(p *solver.Problem, labels map[string]string, taints []solver.Taint) []*solver.Pod {
	var out []*solver.Pod
	for i := range p.DaemonSets {
		t := &p.DaemonSets[i].Template
		if t.NodeSelectorMatches(labels) && t.ToleratesHardTaints(taints) {
			out = append(out, t)
		}
	}
	return out
}

func findInstanceType(p *solver.Problem, name string) *solver.InstanceType {
	for i := range p.InstanceTypes {
		if p.InstanceTypes[i].Name == name {
			return &p.InstanceTypes[i]
		}
	}
	return nil
}

func findNodePool(p *solver.Problem, name string) *solver.NodePool {
	for i := range p.NodePools {
		if p.NodePools[i].Name == name {
			return &p.NodePools[i]
		}
	}
	return nil
}

func inFlightNode(p *solver.Problem, c *solver.NodeClaim) *vnode {
	labels := copyLabels(c.Labels)
	setIfMissing(labels, solver.LabelHostname, c.Name)
	setIfMissing(labels, solver.LabelZone, c.Zone)
	setIfMissing(labels, solver.LabelCapacityType, c.CapacityType)
	setIfMissing(labels, solver.LabelInstanceType, c.InstanceType)
	setIfMissing(labels, solver.LabelNodePool, c.NodePool)
	alloc := c.Allocatable
	if len(alloc) == 0 {
		if it := findInstanceType(p, c.InstanceType); it != nil {
			alloc = it.Allocatable
		}
	}
	vn := &vnode{
		desc:         fmt.Sprintf("in-flight claim %q", c.Name),
		labels:       labels,
		taints:       c.Taints,
		spreadTaints: c.Taints,
		allocatable:  alloc,
		daemons:      daemonPods(p, labels, c.Taints),
	}
	for _, pod := range c.Pods {
		if pod.DaemonSet {
			continue // counted through p.DaemonSets
		}
		vn.add(pod, false)
	}
	return vn
}

// claimCheck validates a planned (or replacement) NodeClaim and materializes
// one node per instance type option. It returns the option nodes and the
// node of the launched instance type (nil when that is invalid).
func claimCheck(r *report, p *solver.Problem, c *solver.PlannedNodeClaim, desc, hostname string) (options []*vnode, launched *vnode) {
	pool := findNodePool(p, c.NodePool)
	if pool == nil {
		r.add(CheckNodePool, "%s names unknown NodePool %q", desc, c.NodePool)
	}
	if len(c.InstanceTypeOptions) == 0 {
		r.add(CheckInstanceType, "%s has no instance type options", desc)
	}
	if c.Zone == "" || c.CapacityType == "" {
		r.add(CheckOffering, "%s has zone %q and capacity type %q; both must be set", desc, c.Zone, c.CapacityType)
	}
	taints := claimTaints(r, pool, c, desc)
	minPrice := math.Inf(1)
	launchedPrice := math.NaN()
	seen := map[string]bool{}
	distinct := map[string]map[string]bool{}
	for _, name := range c.InstanceTypeOptions {
		if seen[name] {
			r.add(CheckInstanceType, "%s lists instance type %q twice", desc, name)
			continue
		}
		seen[name] = true
		it := findInstanceType(p, name)
		if it == nil {
			r.add(CheckInstanceType, "%s lists unknown instance type %q", desc, name)
			continue
		}
		odesc := fmt.Sprintf("%s as %q", desc, name)
		labels := optionLabels(r, pool, c, it, odesc, hostname)
		checkRequirements(r, pool, c, labels, odesc, distinct)

		price, ok := offeringPrice(it, c.Zone, c.CapacityType)
		if !ok {
			r.add(CheckOffering, "%s has no available offering in zone %q with capacity type %q", odesc, c.Zone, c.CapacityType)
		} else {
			minPrice = math.Min(minPrice, price)
			if name == c.InstanceType {
				launchedPrice = price
			}
		}

		vn := &vnode{
			desc:         odesc,
			labels:       labels,
			taints:       taints,
			spreadTaints: taints,
			allocatable:  it.Allocatable,
			daemons:      daemonPods(p, labels, taints),
			check:        true,
		}
		options = append(options, vn)
		if name == c.InstanceType {
			launched = vn
		}
	}
	checkMinValues(r, pool, desc, distinct)
	if !seen[c.InstanceType] {
		r.add(CheckPrice, "%s launches instance type %q, which is not among its options %v", desc, c.InstanceType, c.InstanceTypeOptions)
		launched = nil
	} else if !math.IsNaN(launchedPrice) {
		checkLaunchedPrice(r, c, desc, launchedPrice, minPrice)
	}
	return options, launched
}

// checkLaunchedPrice reports a claim whose PricePerHour is not the price of
// the offering it launches, or that launches an option dearer than the
// cheapest (minPrice).
func checkLaunchedPrice(r *report, c *solver.PlannedNodeClaim, desc string, launchedPrice, minPrice float64) {
	if !priceEqual(launchedPrice, c.PricePerHour) {
		r.add(CheckPrice, "%s: PricePerHour %v differs from the offering price %v of %q", desc, c.PricePerHour, launchedPrice, c.InstanceType)
	}
	if launchedPrice > minPrice && !priceEqual(launchedPrice, minPrice) {
		r.add(CheckPrice, "%s launches %q at %v but an option costs %v", desc, c.InstanceType, launchedPrice, minPrice)
	}
}

// claimTaints is the claim's taints, with those of its NodePool (pool, nil
// when unknown) the claim lacks reported and added.
func claimTaints(r *report, pool *solver.NodePool, c *solver.PlannedNodeClaim, desc string) []solver.Taint {
	taints := append([]solver.Taint(nil), c.Taints...)
	if pool != nil {
		for _, t := range pool.Taints {
			if !containsTaint(taints, t) {
				r.add(CheckNodePool, "%s lacks NodePool %q taint %s", desc, pool.Name, taintString(t))
				taints = append(taints, t)
			}
		}
	}
	return taints
}

// optionLabels is the labels a node of instance type it launched for claim
// c would carry: the instance type's, then the NodePool's, the claim's and
// the offering's, reporting any that conflict, and hostname.
func optionLabels(r *report, pool *solver.NodePool, c *solver.PlannedNodeClaim, it *solver.InstanceType, odesc, hostname string) map[string]string {
	labels := copyLabels(it.Labels)
	setIfMissing(labels, solver.LabelInstanceType, it.Name)
	overlay := func(src string, m map[string]string) {
		keys := sortedKeys(m)
		for _, k := range keys {
			v := m[k]
			if k == solver.LabelHostname {
				continue // the real node gets its own hostname
			}
			if have, ok := labels[k]; ok && have != v {
				r.add(CheckLabels, "%s: %s label %s=%q conflicts with %q", odesc, src, k, v, have)
				continue
			}
			labels[k] = v
		}
	}
	if pool != nil {
		overlay("NodePool", pool.Labels)
	}
	overlay("claim", c.Labels)
	overlay("offering", map[string]string{
		solver.LabelZone:         c.Zone,
		solver.LabelCapacityType: c.CapacityType,
		solver.LabelNodePool:     c.NodePool,
	})
	labels[solver.LabelHostname] = hostname
	return labels
}

// checkRequirements checks an option's labels against the claim's and the
// NodePool's requirements, and records in distinct the values it brings to
// keys with minValues.
func checkRequirements(r *report, pool *solver.NodePool, c *solver.PlannedNodeClaim, labels map[string]string, odesc string, distinct map[string]map[string]bool) {
	// Requirements: a key the node does not carry is one the instance
	// type leaves undefined (Karpenter allows it), so only keys the
	// node carries are checked.
	for _, req := range c.Requirements {
		if _, ok := labels[req.Key]; ok && !req.Matches(labels) {
			r.add(CheckInstanceType, "%s does not meet claim requirement %s", odesc, reqString(req))
		}
	}
	if pool == nil {
		return
	}
	for _, req := range pool.Requirements {
		if _, ok := labels[req.Key]; ok && !req.Matches(labels) {
			r.add(CheckInstanceType, "%s does not meet NodePool %q requirement %s", odesc, pool.Name, reqString(req))
		}
		if req.MinValues > 0 {
			if v, ok := labels[req.Key]; ok {
				if distinct[req.Key] == nil {
					distinct[req.Key] = map[string]bool{}
				}
				distinct[req.Key][v] = true
			}
		}
	}
}

// checkMinValues reports NodePool requirements whose minValues the
// options' distinct values fall short of.
func checkMinValues(r *report, pool *solver.NodePool, desc string, distinct map[string]map[string]bool) {
	if pool == nil {
		return
	}
	for _, req := range pool.Requirements {
		if req.MinValues > 0 && len(distinct[req.Key]) < req.MinValues {
			r.add(CheckInstanceType, "%s: options have %d distinct values of %q, NodePool %q asks for minValues %d",
				desc, len(distinct[req.Key]), req.Key, pool.Name, req.MinValues)
		}
	}
}

func offeringPrice(it *solver.InstanceType, zone, capacityType string) (float64, bool) {
	best, ok := math.Inf(1), false
	for _, o := range it.Offerings {
		if o.Available && o.Zone == zone && o.CapacityType == capacityType {
			best, ok = math.Min(best, o.PricePerHour), true
		}
	}
	return best, ok
}

func priceEqual(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func containsTaint(ts []solver.Taint, t solver.Taint) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func taintString(t solver.Taint) string {
	return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect)
}

func reqString(r solver.Requirement) string {
	return fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// state is the final state under check.
type state struct {
	p     *solver.Problem
	nodes []*vnode // nodes of the final state (launched type for planned claims)
	local []*vnode // nodes whose local rules are checked (every option)
}

// Plan checks plan against problem p and returns nil or the joined list of
// every violation found (see Violations).
func Plan(p *solver.Problem, plan *solver.Plan) error {
	r := &report{}
	if p == nil || plan == nil {
		r.add(CheckAccounting, "nil problem or plan")
		return r.err()
	}
	acct := newAccounting(r, p)
	st, nodesByName, cordoned := initialState(p)

	// Bindings to existing nodes and in-flight claims.
	for _, name := range sortedKeys(plan.ExistingBindings) {
		place := fmt.Sprintf("binding to %q", name)
		vn, ok := nodesByName[name]
		if !ok {
			r.add(CheckAccounting, "plan binds pods to %q, which is neither an existing node nor an in-flight NodeClaim", name)
		} else if cordoned[name] {
			r.add(CheckAccounting, "plan binds pods to cordoned node %q", name)
		}
		for _, ref := range plan.ExistingBindings[name] {
			if acct.note(ref, place) && vn != nil {
				vn.add(acct.pending[ref], true)
			}
		}
	}

	// Planned claims.
	var totalCost float64
	poolLaunched := map[string]solver.Resources{}
	poolMax := map[string]solver.Resources{}
	for i := range plan.NodeClaims {
		c := &plan.NodeClaims[i]
		totalCost += c.PricePerHour
		st.placeClaim(r, acct, i, c)
		// NodePool limits.
		if launchedIT := findInstanceType(p, c.InstanceType); launchedIT != nil {
			addRes(poolLaunched, c.NodePool, launchedIT.Capacity)
		}
		addRes(poolMax, c.NodePool, maxCapacity(p, c.InstanceTypeOptions))
		// Each claim is one node against limits.nodes.
		addRes(poolLaunched, c.NodePool, solver.Resources{solver.ResourceNodes: 1})
		addRes(poolMax, c.NodePool, solver.Resources{solver.ResourceNodes: 1})
	}

	for _, u := range plan.Unschedulable {
		acct.note(u.Pod, "unschedulable list")
	}
	acct.checkEveryPodOnce()

	if !priceEqual(totalCost, plan.CostPerHour) {
		r.add(CheckCost, "CostPerHour %v differs from the sum of the claims' prices %v", plan.CostPerHour, totalCost)
	}
	checkPoolLimits(r, p, poolLaunched, poolMax)

	st.checkLocal(r)
	st.checkInterPod(r, true, true)
	return r.err()
}

// accounting counts where a plan puts each pending pod.
type accounting struct {
	r         *report
	pods      []*solver.Pod
	pending   map[solver.PodRef]*solver.Pod
	seenCount map[solver.PodRef]int
	where     map[solver.PodRef][]string
}

func newAccounting(r *report, p *solver.Problem) *accounting {
	a := &accounting{
		r:         r,
		pods:      p.Pods,
		pending:   map[solver.PodRef]*solver.Pod{},
		seenCount: map[solver.PodRef]int{},
		where:     map[solver.PodRef][]string{},
	}
	for _, pod := range p.Pods {
		a.pending[pod.Ref()] = pod
	}
	return a
}

// note records that place lists pod ref, reporting it and returning false
// when ref is not a pending pod.
func (a *accounting) note(ref solver.PodRef, place string) bool {
	if _, ok := a.pending[ref]; !ok {
		a.r.add(CheckAccounting, "%s lists pod %s, which is not a pending pod of the problem", place, ref)
		return false
	}
	a.seenCount[ref]++
	a.where[ref] = append(a.where[ref], place)
	return true
}

// checkEveryPodOnce reports pending pods listed nowhere or more than once.
func (a *accounting) checkEveryPodOnce() {
	for _, pod := range a.pods {
		ref := pod.Ref()
		switch n := a.seenCount[ref]; {
		case n == 0:
			a.r.add(CheckAccounting, "pending pod %s is neither placed nor reported unschedulable", ref)
		case n > 1:
			a.r.add(CheckAccounting, "pending pod %s appears %d times: %s", ref, n, strings.Join(a.where[ref], ", "))
		}
	}
}

// initialState is the cluster before the plan: the existing nodes and the
// in-flight claims, also by name (an existing node wins over a claim of
// the same name), and which existing nodes are cordoned.
func initialState(p *solver.Problem) (st *state, byName map[string]*vnode, cordoned map[string]bool) {
	st = &state{p: p}
	byName = map[string]*vnode{}
	cordoned = map[string]bool{}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		vn := existingNode(n)
		byName[n.Name] = vn
		cordoned[n.Name] = n.Unschedulable
		st.nodes = append(st.nodes, vn)
		st.local = append(st.local, vn)
	}
	for i := range p.NodeClaims {
		c := &p.NodeClaims[i]
		vn := inFlightNode(p, c)
		if _, dup := byName[c.Name]; !dup {
			byName[c.Name] = vn
		}
		st.nodes = append(st.nodes, vn)
		st.local = append(st.local, vn)
	}
	return st, byName, cordoned
}

// placeClaim checks planned claim i and places its pods on every one of
// its instance type options.
func (st *state) placeClaim(r *report, acct *accounting, i int, c *solver.PlannedNodeClaim) {
	desc := fmt.Sprintf("claim %d (NodePool %q)", i, c.NodePool)
	options, launched := claimCheck(r, st.p, c, desc, fmt.Sprintf("verify-planned-claim-%d", i))
	var pods []*solver.Pod
	for _, ref := range c.Pods {
		if acct.note(ref, desc) {
			pods = append(pods, acct.pending[ref])
		}
	}
	for _, vn := range options {
		for _, pod := range pods {
			vn.add(pod, true)
		}
	}
	st.local = append(st.local, options...)
	if launched == nil && len(options) > 0 {
		launched = options[0] // already reported; still place its pods
	}
	if launched != nil {
		st.nodes = append(st.nodes, launched)
	}
}

// maxCapacity is, per resource, the largest capacity among the named
// instance types.
func maxCapacity(p *solver.Problem, names []string) solver.Resources {
	maxCap := solver.Resources{}
	for _, name := range names {
		if it := findInstanceType(p, name); it != nil {
			for k, v := range it.Capacity {
				if v > maxCap[k] {
					maxCap[k] = v
				}
			}
		}
	}
	return maxCap
}

// checkPoolLimits reports NodePools whose usage plus the capacity of the
// new claims, as launched or at their largest options, exceeds a limit.
func checkPoolLimits(r *report, p *solver.Problem, poolLaunched, poolMax map[string]solver.Resources) {
	for i := range p.NodePools {
		pool := &p.NodePools[i]
		if poolLaunched[pool.Name] == nil && poolMax[pool.Name] == nil {
			continue // no new claims: usage over a limit is not this plan's doing
		}
		for _, res := range sortedKeys(pool.Limits) {
			limit := pool.Limits[res]
			if got := pool.Usage[res] + poolLaunched[pool.Name][res]; got > limit {
				r.add(CheckLimits, "NodePool %q: %s usage %d + launched capacity %d = %d exceeds limit %d",
					pool.Name, res, pool.Usage[res], poolLaunched[pool.Name][res], got, limit)
			}
			if got := pool.Usage[res] + poolMax[pool.Name][res]; got > limit {
				r.add(CheckLimits, "NodePool %q: %s usage %d + largest options' capacity %d = %d exceeds limit %d",
					pool.Name, res, pool.Usage[res], poolMax[pool.Name][res], got, limit)
			}
		}
	}
}

func addRes(m map[string]solver.Resources, pool string, res solver.Resources) {
	if m[pool] == nil {
		m[pool] = solver.Resources{}
	}
	for k, v := range res {
		m[pool][k] += v
	}
}

// checkLocal checks the node-local rules on every node the plan changed.
func (st *state) checkLocal(r *report) {
	for _, n := range st.local {
		if !n.check {
			continue
		}
		// Resources.
		total := solver.Resources{}
		count := int64(0)
		add := func(p *solver.Pod) {
			count++
			for k, v := range p.Requests {
				if k == solver.ResourcePods {
					continue
				}
				total[k] += v
			}
		}
		for _, vp := range n.pods {
			add(vp.pod)
		}
		for _, d := range n.daemons {
			add(d)
		}
		total[solver.ResourcePods] = count
		for _, res := range sortedKeys(total) {
			if alloc := n.allocatableOf(res); total[res] > alloc {
				r.add(CheckResources, "%s: %s requested %d (%d pods incl. %d DaemonSet pods) exceeds allocatable %d",
					n.desc, res, total[res], count, len(n.daemons), alloc)
			}
		}
		// Per placed pod.
		for _, vp := range n.pods {
			if !vp.placed {
				continue
			}
			pod := vp.pod
			if !pod.NodeSelectorMatches(n.labels) {
				r.add(CheckNodeSelector, "pod %s on %s: node selector / required node affinity not met by labels %v", pod.Ref(), n.desc, n.labels)
			}
			if !pod.ToleratesHardTaints(n.taints) {
				r.add(CheckTaints, "pod %s on %s does not tolerate taints %v", pod.Ref(), n.desc, n.taints)
			}
			if !pod.VolumesMatch(n.labels) {
				r.add(CheckVolumes, "pod %s on %s: a volume's topology excludes the node (labels %v)", pod.Ref(), n.desc, n.labels)
			}
		}
		// Host ports.
		for i, a := range n.pods {
			for _, b := range n.pods[i+1:] {
				if !a.placed && !b.placed {
					continue
				}
				if pa, pb, ok := portConflict(a.pod, b.pod); ok {
					r.add(CheckHostPorts, "pods %s and %s on %s both use host port %s and %s",
						a.pod.Ref(), b.pod.Ref(), n.desc, portString(pa), portString(pb))
				}
			}
		}
		// The DaemonSet pods that would run on the node hold their host
		// ports too (kube-scheduler's NodePorts counts every pod).
		for _, a := range n.pods {
			if !a.placed {
				continue
			}
			for _, d := range n.daemons {
				if pa, pd, ok := portConflict(a.pod, d); ok {
					r.add(CheckHostPorts, "pod %s on %s uses host port %s, which DaemonSet pod %s holds as %s",
						a.pod.Ref(), n.desc, portString(pa), d.Ref(), portString(pd))
				}
			}
		}
	}
}

func normPort(hp solver.HostPort) solver.HostPort {
	if hp.Protocol == "" {
		hp.Protocol = "TCP"
	}
	if hp.HostIP == "" {
		hp.HostIP = "0.0.0.0"
	}
	return hp
}

func portString(hp solver.HostPort) string {
	hp = normPort(hp)
	return fmt.Sprintf("%s:%d/%s", hp.HostIP, hp.Port, hp.Protocol)
}

func portConflict(a, b *solver.Pod) (solver.HostPort, solver.HostPort, bool) {
	for _, x := range a.HostPorts {
		if x.Port <= 0 {
			continue
		}
		x = normPort(x)
		for _, y := range b.HostPorts {
			if y.Port <= 0 {
				continue
			}
			y = normPort(y)
			if x.Port == y.Port && x.Protocol == y.Protocol &&
				(x.HostIP == y.HostIP || x.HostIP == "0.0.0.0" || y.HostIP == "0.0.0.0") {
				return x, y, true
			}
		}
	}
	return solver.HostPort{}, solver.HostPort{}, false
}

// domainIndex groups the pods of the final state by topology key and value.
type domainIndex struct {
	nodes []*vnode
	byKey map[string]map[string][]*vpod
}

func (d *domainIndex) domain(key string) map[string][]*vpod {
	if m, ok := d.byKey[key]; ok {
		return m
	}
	m := map[string][]*vpod{}
	for _, n := range d.nodes {
		if v, ok := n.labels[key]; ok {
			m[v] = append(m[v], n.pods...)
		}
	}
	d.byKey[key] = m
	return m
}

// checkInterPod checks required pod anti-affinity (both directions), and
// optionally required pod affinity and DoNotSchedule topology spread, for
// the pods the plan places.
func (st *state) checkInterPod(r *report, affinity, spread bool) {
	idx := &domainIndex{nodes: st.nodes, byKey: map[string]map[string][]*vpod{}}
	anyPlaced := false
	var all []*vpod
	for _, n := range st.nodes {
		for _, vp := range n.pods {
			all = append(all, vp)
			anyPlaced = anyPlaced || vp.placed
		}
	}
	if !anyPlaced {
		return
	}
	ns := st.p.Namespaces
	for _, a := range all {
		checkAntiAffinity(r, idx, a, ns)
	}
	if affinity {
		for _, a := range all {
			if !a.placed {
				continue
			}
			for ti := range a.pod.PodAffinity.Required {
				checkAffinityTerm(r, idx, a, ti, ns)
			}
		}
	}
	if spread {
		cache := map[string]*spreadCounts{}
		for _, a := range all {
			if !a.placed {
				continue
			}
			st.checkSpread(r, a, cache)
		}
	}
}

// checkAntiAffinity checks pod a's required anti-affinity terms against
// every other pod B in the same domain that a term selects, at least one
// of them placed by the plan.
func checkAntiAffinity(r *report, idx *domainIndex, a *vpod, ns map[string]map[string]string) {
	for ti := range a.pod.PodAntiAffinity.Required {
		t := &a.pod.PodAntiAffinity.Required[ti]
		va, ok := a.node.labels[t.TopologyKey]
		if !ok {
			continue
		}
		for _, b := range idx.domain(t.TopologyKey)[va] {
			if b == a || b.pod == a.pod || (!a.placed && !b.placed) {
				continue
			}
			if t.Selects(a.pod, b.pod, ns) {
				r.add(CheckAntiAffinity, "pod %s on %s and pod %s on %s share %s=%q, but %s has required anti-affinity term %d selecting %s",
					a.pod.Ref(), a.node.desc, b.pod.Ref(), b.node.desc, t.TopologyKey, va, a.pod.Ref(), ti, b.pod.Ref())
			}
		}
	}
}

// checkAffinityTerm checks required pod affinity term ti of placed pod a:
// another pod the term selects must be in a's domain.
func checkAffinityTerm(r *report, idx *domainIndex, a *vpod, ti int, ns map[string]map[string]string) {
	t := &a.pod.PodAffinity.Required[ti]
	va, ok := a.node.labels[t.TopologyKey]
	if !ok {
		r.add(CheckAffinity, "pod %s on %s: node lacks topology key %q of required affinity term %d", a.pod.Ref(), a.node.desc, t.TopologyKey, ti)
		return
	}
	dom := idx.domain(t.TopologyKey)
	for _, b := range dom[va] {
		if b != a && b.pod != a.pod && t.Selects(a.pod, b.pod, ns) {
			return
		}
	}
	// The first pod of a group with affinity to itself: allowed
	// when it matches its own term and no other pod the term
	// selects is in any domain.
	elsewhere := selectedElsewhere(dom, a, t, ns)
	if t.Selects(a.pod, a.pod, ns) && elsewhere == "" {
		return
	}
	if elsewhere != "" {
		r.add(CheckAffinity, "pod %s on %s (%s=%q): required affinity term %d selects no pod in its domain, but selects %s",
			a.pod.Ref(), a.node.desc, t.TopologyKey, va, ti, elsewhere)
	} else {
		r.add(CheckAffinity, "pod %s on %s (%s=%q): required affinity term %d selects no pod anywhere and does not select the pod itself",
			a.pod.Ref(), a.node.desc, t.TopologyKey, va, ti)
	}
}

// selectedElsewhere describes the first pod other than a, in domain order,
// that term t selects, or is "" when there is none.
func selectedElsewhere(dom map[string][]*vpod, a *vpod, t *solver.PodAffinityTerm, ns map[string]map[string]string) string {
	for _, v := range sortedKeys(dom) {
		for _, b := range dom[v] {
			if b != a && b.pod != a.pod && t.Selects(a.pod, b.pod, ns) {
				return fmt.Sprintf("%s on %s (%s=%q)", b.pod.Ref(), b.node.desc, t.TopologyKey, v)
			}
		}
	}
	return ""
}

type spreadCounts struct {
	counts   map[string]int // per domain, over eligible nodes
	eligible map[*vnode]bool
	min      int
}

func hardSpread(p *solver.Pod) []*solver.TopologySpreadConstraint {
	var out []*solver.TopologySpreadConstraint
	for i := range p.TopologySpread {
		c := &p.TopologySpread[i]
		if c.WhenUnsatisfiable == solver.DoNotSchedule {
			out = append(out, c)
		}
	}
	return out
}

// checkSpread checks the DoNotSchedule topology spread constraints of a
// placed pod, with kube-scheduler's PodTopologySpread filter semantics
// applied to the final state.
func (st *state) checkSpread(r *report, a *vpod, cache map[string]*spreadCounts) {
	cons := hardSpread(a.pod)
	if len(cons) == 0 {
		return
	}
	var keys []string
	for _, c := range cons {
		keys = append(keys, c.TopologyKey)
	}
	for ci, c := range cons {
		va, ok := a.node.labels[c.TopologyKey]
		if !ok {
			r.add(CheckTopologySpread, "pod %s on %s: node lacks topology key %q of spread constraint", a.pod.Ref(), a.node.desc, c.TopologyKey)
			continue
		}
		sc := st.spreadCountsFor(a.pod, c, keys, cache)
		count := sc.counts[va]
		if !sc.eligible[a.node] && c.Selects(a.pod, a.pod) {
			count++
		}
		minDomains := int(c.MinDomains)
		if minDomains < 1 {
			minDomains = 1
		}
		min := sc.min
		if len(sc.counts) < minDomains {
			min = 0
		}
		if count-min > int(c.MaxSkew) {
			r.add(CheckTopologySpread, "pod %s on %s: constraint %d (%s, maxSkew %d) counts %d matching pods in %q but %d in the emptiest of %d eligible domains (minDomains %d): %v",
				a.pod.Ref(), a.node.desc, ci, c.TopologyKey, c.MaxSkew, count, va, min, len(sc.counts), minDomains, sc.counts)
		}
	}
}

func (st *state) spreadCountsFor(owner *solver.Pod, c *solver.TopologySpreadConstraint, keys []string, cache map[string]*spreadCounts) *spreadCounts {
	honorAffinity := c.NodeAffinityPolicy != solver.PolicyIgnore
	honorTaints := c.NodeTaintsPolicy == solver.PolicyHonor
	mlk := map[string]string{}
	for _, k := range c.MatchLabelKeys {
		if v, ok := owner.Labels[k]; ok {
			mlk[k] = v
		}
	}
	keyObj := struct {
		NS          string
		Key         string
		Sel         *solver.LabelSelector
		MLK         map[string]string
		Keys        []string
		NodeSel     map[string]string `json:",omitempty"`
		Affinity    []solver.NodeSelectorTerm
		Tolerations []solver.Toleration
	}{NS: owner.Namespace, Key: c.TopologyKey, Sel: c.LabelSelector, MLK: mlk, Keys: keys}
	if honorAffinity {
		keyObj.NodeSel, keyObj.Affinity = owner.NodeSelector, owner.RequiredNodeAffinity
	}
	if honorTaints {
		keyObj.Tolerations = owner.Tolerations
		if keyObj.Tolerations == nil {
			keyObj.Tolerations = []solver.Toleration{}
		}
	}
	kb, _ := json.Marshal(keyObj)
	if sc, ok := cache[string(kb)]; ok {
		return sc
	}
	sc := &spreadCounts{counts: map[string]int{}, eligible: map[*vnode]bool{}}
	for _, n := range st.nodes {
		okNode := true
		for _, k := range keys {
			if _, has := n.labels[k]; !has {
				okNode = false
			}
		}
		if okNode && honorAffinity && !owner.NodeSelectorMatches(n.labels) {
			okNode = false
		}
		if okNode && honorTaints && !owner.ToleratesHardTaints(n.spreadTaints) {
			okNode = false
		}
		if !okNode {
			continue
		}
		sc.eligible[n] = true
		v := n.labels[c.TopologyKey]
		sc.counts[v] += 0
		for _, vp := range n.pods {
			if c.Selects(owner, vp.pod) {
				sc.counts[v]++
			}
		}
	}
	sc.min = math.MaxInt
	for _, v := range sc.counts {
		sc.min = min(sc.min, v)
	}
	if sc.min == math.MaxInt {
		sc.min = 0
	}
	cache[string(kb)] = sc
	return sc
}
