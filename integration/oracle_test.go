package integration

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/verify"
)

// Flags of TestSchedulerOracle.
var (
	oracleCases = flag.Int("oracle.cases", 5000, "TestSchedulerOracle: number of random cases")
	oracleSeed  = flag.Uint64("oracle.seed", 20261201, "TestSchedulerOracle: seed of the first case")
	oracleShow  = flag.Int("oracle.show", 10, "TestSchedulerOracle: failing seeds reported in full (the rest by one line)")
)

// oracleStats counts what the cases exercised.
type oracleStats struct {
	cases, plannedPods, daemonPods, claims, unschedulable int
	features                                              map[string]int
}

func (s *oracleStats) add(o *oracleStats) {
	s.cases += o.cases
	s.plannedPods += o.plannedPods
	s.daemonPods += o.daemonPods
	s.claims += o.claims
	s.unschedulable += o.unschedulable
	if s.features == nil {
		s.features = map[string]int{}
	}
	for k, v := range o.features {
		s.features[k] += v
	}
}

// TestSchedulerOracle checks the solver's plans against kube-scheduler's
// own filter plugins. For each seed it generates a small cluster and a
// batch of pending pods (resources over several containers, init
// containers, sidecars and overhead; node selectors; required and
// preferred node affinity; taints and tolerations; pod affinity and
// anti-affinity with namespaces, namespace selectors, match and mismatch
// label keys; topology spread with skews, minDomains, inclusion policies
// and match label keys; host ports), solves it, and builds the cluster
// kube-scheduler would see: existing nodes with their pods, the in-flight
// NodeClaim with its pods, and one Node per planned NodeClaim with the
// labels of its instance type, zone, capacity type and NodePool, its taints
// and the instance type's allocatable resources, plus the DaemonSet pods
// the DaemonSet controller would put on each new node.
//
// It then asks a real scheduler framework (NodeUnschedulable,
// NodeResourcesFit, NodePorts, NodeAffinity, TaintToleration,
// InterPodAffinity and PodTopologySpread with the default profile's
// arguments) to run PreFilter and Filter for every pod on its planned node,
// twice:
//
//   - final state: every other pod bound where the plan puts it (the
//     solver's own contract, as internal/verify checks it, and how
//     Karpenter counts topology);
//   - binding order: pods bind one at a time, each accepted given the pods
//     bound before it; the plan passes when the search finds an order that
//     binds every pod (see checkOrder).
//
// Anti-affinity is symmetric and only gets harder as pods bind, so both
// checks agree on it; pod affinity and topology spread can pass one and
// fail the other, and a failure says which.
//
// Seeds are oracle.seed, oracle.seed+1, ...; rerun one case with
// -oracle.seed=S -oracle.cases=1 and explore with more cases, e.g.
//
//	go test -run TestSchedulerOracle -oracle.cases=50000 -oracle.seed=7 .
func TestSchedulerOracle(t *testing.T) {
	if *oracleCases <= 0 {
		t.Fatalf("-oracle.cases must be positive, got %d", *oracleCases)
	}
	start := time.Now()
	workers := min(runtime.GOMAXPROCS(0), *oracleCases)
	var (
		mu       sync.Mutex
		total    oracleStats
		failures []string
		wg       sync.WaitGroup
	)
	next := make(chan uint64)
	for w := 0; w < workers; w++ {
		o, err := newSchedOracle(oracleNamespaces)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := oracleStats{features: map[string]int{}}
			for seed := range next {
				if msg := runOracleCase(o, seed, &local); msg != "" {
					mu.Lock()
					failures = append(failures, msg)
					mu.Unlock()
				}
			}
			mu.Lock()
			total.add(&local)
			mu.Unlock()
		}()
	}
	for i := 0; i < *oracleCases; i++ {
		next <- *oracleSeed + uint64(i)
	}
	close(next)
	wg.Wait()

	sort.Strings(failures)
	for i, msg := range failures {
		if i < *oracleShow {
			t.Error(msg)
			continue
		}
		first, _, _ := strings.Cut(msg, "\n")
		t.Error(first)
	}
	var feats []string
	for _, k := range sortedKeys(total.features) {
		feats = append(feats, fmt.Sprintf("%s=%d", k, total.features[k]))
	}
	t.Logf("%d cases (seeds %d..%d) in %.1fs on %d workers: %d planned pods and %d DaemonSet pods checked on %d planned NodeClaims (%d pods left unschedulable by the plans); %d failing cases",
		total.cases, *oracleSeed, *oracleSeed+uint64(*oracleCases)-1, time.Since(start).Seconds(), workers,
		total.plannedPods, total.daemonPods, total.claims, total.unschedulable, len(failures))
	t.Logf("planned pods by feature: %s", strings.Join(feats, " "))
}

// runOracleCase solves one seed's problem and replays the plan; it
// returns a failure message, or "" when every pod is accepted.
func runOracleCase(o *schedOracle, seed uint64, stats *oracleStats) string {
	c := genOracleCase(seed)
	fail := func(format string, args ...any) string {
		return fmt.Sprintf("seed %d (rerun: go test -run TestSchedulerOracle -oracle.seed=%d -oracle.cases=1 .): %s",
			seed, seed, fmt.Sprintf(format, args...))
	}
	plan, err := solver.Solve(context.Background(), c.problem)
	if err != nil {
		return fail("solve: %v\nproblem: %s", err, compactJSON(c.problem))
	}
	cl, err := buildOracleCluster(c, plan)
	if err != nil {
		return fail("%v", err)
	}
	stats.cases++
	stats.claims += len(plan.NodeClaims)
	stats.unschedulable += len(plan.Unschedulable)
	for _, u := range plan.Unschedulable {
		r := u.Reason
		if i := strings.IndexAny(r, ":(0123456789"); i > 0 {
			r = r[:i]
		}
		stats.features["unschedulable: "+r]++
	}
	for _, pl := range cl.todo {
		if pl.daemon {
			stats.daemonPods++
			continue
		}
		stats.plannedPods++
		for _, f := range podFeatures(pl.pod) {
			stats.features[f]++
		}
	}
	ctx := context.Background()
	bad := o.checkFinal(ctx, cl)
	order := o.checkOrder(ctx, cl)
	verr := verify.Plan(c.problem, plan)
	if len(bad) == 0 && len(order) == 0 {
		if verr != nil {
			return fail("kube-scheduler accepts the plan but verify.Plan rejects it: %v", verr)
		}
		return ""
	}
	var b strings.Builder
	summary := fmt.Sprintf("final state: %d of %d placements rejected; binding order: %d left unbound; verify.Plan agrees: %v",
		len(bad), len(cl.todo), len(order), verr != nil)
	if len(bad) > 0 {
		summary += "; first: " + bad[0].rej.Plugin
	} else {
		summary += "; first: " + order[0].rej.Plugin
	}
	fmt.Fprintf(&b, "%s\n  verify.Plan: %v", summary, verr)
	bad = append(bad, order...)
	for i, f := range bad {
		if i == 3 {
			fmt.Fprintf(&b, "\n  ... %d more", len(bad)-3)
			break
		}
		fmt.Fprintf(&b, "\n  %s pod %s\n    on node %s\n    rejected (%s) by %s", f.kind(), describePod(f.pod), describeNode(cl.node(f.node), f.podsOnNode), f.check, f.rej)
	}
	fmt.Fprintf(&b, "\n  problem: %s\n  plan: %s", compactJSON(c.problem), compactJSON(plan))
	return fail("%s", b.String())
}

// placement is one pod the replay must bind to node.
type placement struct {
	pod    *corev1.Pod
	node   string
	daemon bool
}

func (p placement) kind() string {
	if p.daemon {
		return "DaemonSet"
	}
	return "planned"
}

// oracleCluster is the scheduler's view of a plan: every node, the pods
// already bound, and the pods to bind (DaemonSet pods of new nodes first).
type oracleCluster struct {
	nodes []*corev1.Node
	bound []*corev1.Pod
	todo  []placement
}

func (c *oracleCluster) node(name string) *corev1.Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	return &corev1.Node{}
}

func buildOracleCluster(c *oracleCase, plan *solver.Plan) (*oracleCluster, error) {
	p := c.problem
	cl := &oracleCluster{}
	shape := func(pod *solver.Pod) *podShape {
		if s, ok := c.shapes[pod.Owner]; ok {
			return &s
		}
		return nil
	}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		cl.nodes = append(cl.nodes, oracleNode(n.Name, n.Labels, n.Taints, n.Allocatable, n.Unschedulable))
		for _, pod := range n.Pods {
			cl.bound = append(cl.bound, bind(oraclePod(pod, shape(pod)), n.Name))
		}
	}
	// New nodes get their DaemonSet pods before anything else binds there.
	var fresh []*corev1.Node
	for i := range p.NodeClaims {
		nc := &p.NodeClaims[i]
		node := oracleNode(nc.Name, inFlightLabels(nc), nc.Taints, nc.Allocatable, false)
		cl.nodes = append(cl.nodes, node)
		hasDS := false
		for _, pod := range nc.Pods {
			cl.bound = append(cl.bound, bind(oraclePod(pod, shape(pod)), nc.Name))
			hasDS = hasDS || pod.DaemonSet
		}
		if !hasDS {
			fresh = append(fresh, node)
		}
	}
	specs, err := plannedNodes(p, plan)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	for _, s := range specs {
		node := oracleNode(s.name, s.labels, s.taints, s.allocatable, false)
		cl.nodes = append(cl.nodes, node)
		fresh = append(fresh, node)
	}
	for _, node := range fresh {
		for i := range p.DaemonSets {
			ds := &p.DaemonSets[i]
			tmpl := ds.Template
			tmpl.Name = ds.Name + "-" + node.Name
			pod := oraclePod(&tmpl, shape(&ds.Template))
			if daemonShouldRun(pod, node) {
				cl.todo = append(cl.todo, placement{pod: pod, node: node.Name, daemon: true})
			}
		}
	}
	return cl, addPlannedPods(cl, c, plan, specs, shape)
}

// inFlightLabels are an in-flight NodeClaim's labels with the well-known
// ones the claim implies filled in where missing.
func inFlightLabels(nc *solver.NodeClaim) map[string]string {
	labels := map[string]string{}
	for k, v := range nc.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{
		solver.LabelZone: nc.Zone, solver.LabelCapacityType: nc.CapacityType, solver.LabelInstanceType: nc.InstanceType,
		solver.LabelNodePool: nc.NodePool, solver.LabelHostname: nc.Name,
	} {
		if _, ok := labels[k]; !ok && v != "" {
			labels[k] = v
		}
	}
	return labels
}

// addPlannedPods adds every pending pod the plan places, in the order of
// the problem, and checks that the plan places each at most once.
func addPlannedPods(cl *oracleCluster, c *oracleCase, plan *solver.Plan, specs []nodeSpec, shape func(*solver.Pod) *podShape) error {
	target := map[solver.PodRef]string{}
	place := func(ref solver.PodRef, node string) error {
		if prev, ok := target[ref]; ok {
			return fmt.Errorf("plan places %s twice: on %s and on %s", ref, prev, node)
		}
		target[ref] = node
		return nil
	}
	for i, nc := range plan.NodeClaims {
		for _, ref := range nc.Pods {
			if err := place(ref, specs[i].name); err != nil {
				return err
			}
		}
	}
	for _, node := range sortedKeys(plan.ExistingBindings) {
		for _, ref := range plan.ExistingBindings[node] {
			if err := place(ref, node); err != nil {
				return err
			}
		}
	}
	for _, pod := range c.problem.Pods {
		if node, ok := target[pod.Ref()]; ok {
			cl.todo = append(cl.todo, placement{pod: oraclePod(pod, shape(pod)), node: node})
			delete(target, pod.Ref())
		}
	}
	if len(target) > 0 {
		return fmt.Errorf("plan places pods the problem does not have: %v", target)
	}
	return nil
}

// oracleFailure is a placement the scheduler rejects: in the plan's final
// state (every other pod bound where the plan puts it), or when no other
// pod can bind.
type oracleFailure struct {
	placement
	check      string
	rej        *rejection
	podsOnNode []*corev1.Pod
}

func snapshotError(check string, err error) []oracleFailure {
	return []oracleFailure{{placement: placement{pod: &corev1.Pod{}}, check: check, rej: &rejection{Plugin: "Snapshot", Code: "Error", Reasons: []string{err.Error()}}}}
}

// checkFinal binds every pod where the plan puts it and then checks each
// pod against the others: for resources, host ports, node constraints and
// anti-affinity this is the whole question; for topology spread it asks
// that the finished plan respects every constraint, as the solver's own
// checker (internal/verify) and Karpenter's topology counting do.
func (o *schedOracle) checkFinal(ctx context.Context, cl *oracleCluster) []oracleFailure {
	all := append([]*corev1.Pod(nil), cl.bound...)
	bound := make([]*corev1.Pod, len(cl.todo))
	for i, pl := range cl.todo {
		bound[i] = bind(pl.pod, pl.node)
		all = append(all, bound[i])
	}
	snap := cache.NewSnapshot(all, cl.nodes)
	if err := snap.StartMutations(); err != nil {
		return snapshotError("final state", err)
	}
	var bad []oracleFailure
	for i, pl := range cl.todo {
		if hasHostPorts(pl.pod) {
			// A node's used host ports are a set, not a count: removing
			// one of two pods with the same port would free it. Check such
			// pods against a snapshot built without them.
			others := make([]*corev1.Pod, 0, len(all)-1)
			for _, p := range all {
				if p != bound[i] {
					others = append(others, p)
				}
			}
			if rej := o.check(ctx, cache.NewSnapshot(others, cl.nodes), pl.pod, pl.node); rej != nil {
				bad = append(bad, oracleFailure{placement: pl, check: "final state", rej: rej, podsOnNode: podsOn(all, pl.node, bound[i])})
			}
			continue
		}
		if err := snap.RemovePod(klog.Background(), bound[i], pl.node); err != nil {
			return snapshotError("final state", err)
		}
		if rej := o.check(ctx, snap, pl.pod, pl.node); rej != nil {
			bad = append(bad, oracleFailure{placement: pl, check: "final state", rej: rej, podsOnNode: podsOn(all, pl.node, bound[i])})
		}
		info, err := framework.NewPodInfo(bound[i])
		if err == nil {
			err = snap.AddPod(info, pl.node)
		}
		if err != nil {
			return snapshotError("final state", err)
		}
	}
	return bad
}

func hasHostPorts(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				return true
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				return true
			}
		}
	}
	return false
}

func podsOn(pods []*corev1.Pod, node string, except *corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node && p != except {
			out = append(out, p)
		}
	}
	return out
}

// checkOrder looks for a binding order kube-scheduler accepts: pods bind
// one at a time, each after PreFilter and Filter accept it on its planned
// node given the pods bound so far. Only required pod affinity and topology
// spread depend on which pods bound earlier in a way that can favour an
// early bind (resources, ports, taints, node constraints and anti-affinity
// only get harder as pods bind), so the search binds every such
// order-sensitive pod it can first, and otherwise the next other pod that
// fits, one at a time. Binding an order-sensitive pod early can also hurt:
// a pod a self-selecting affinity term matches, bound in another domain,
// takes away the first pod of that group its "no matching pod anywhere"
// exception. When the plan order gets stuck, the search therefore starts
// over with the pods that have required pod affinity first. It returns
// the placements the first search left rejected when neither finds an
// order.
func (o *schedOracle) checkOrder(ctx context.Context, cl *oracleCluster) []oracleFailure {
	rejected := o.bindInOrder(ctx, cl, false)
	if rejected == nil || o.bindInOrder(ctx, cl, true) == nil {
		return nil
	}
	return rejected
}

// bindInOrder runs one greedy binding search (see checkOrder); with
// affinityFirst, the order-sensitive pods with required pod affinity go
// before the others.
func (o *schedOracle) bindInOrder(ctx context.Context, cl *oracleCluster, affinityFirst bool) []oracleFailure {
	snap := cache.NewSnapshot(cl.bound, cl.nodes)
	if err := snap.StartMutations(); err != nil {
		return snapshotError("binding order", err)
	}
	all := append([]*corev1.Pod(nil), cl.bound...)
	var sensitive, others []placement
	for _, pl := range cl.todo {
		if orderSensitive(pl.pod) {
			sensitive = append(sensitive, pl)
		} else {
			others = append(others, pl)
		}
	}
	if affinityFirst {
		sort.SliceStable(sensitive, func(i, j int) bool {
			return hasPodAffinity(sensitive[i].pod) && !hasPodAffinity(sensitive[j].pod)
		})
	}
	var rejected []oracleFailure
	tryBind := func(pl placement) (bool, error) {
		if rej := o.check(ctx, snap, pl.pod, pl.node); rej != nil {
			rejected = append(rejected, oracleFailure{placement: pl, check: "binding order", rej: rej})
			return false, nil
		}
		b := bind(pl.pod, pl.node)
		info, err := framework.NewPodInfo(b)
		if err == nil {
			err = snap.AddPod(info, pl.node)
		}
		all = append(all, b)
		return true, err
	}
	for len(sensitive)+len(others) > 0 {
		rejected = rejected[:0]
		progress := false
		var kept []placement
		for _, pl := range sensitive {
			ok, err := tryBind(pl)
			if err != nil {
				return snapshotError("binding order", err)
			}
			progress = progress || ok
			if !ok {
				kept = append(kept, pl)
			}
		}
		sensitive = kept
		if progress {
			continue
		}
		kept = nil
		for i, pl := range others {
			ok, err := tryBind(pl)
			if err != nil {
				return snapshotError("binding order", err)
			}
			if ok {
				kept = append(kept, others[i+1:]...)
				progress = true
				break
			}
			kept = append(kept, pl)
		}
		others = kept
		if !progress {
			for i := range rejected {
				rejected[i].podsOnNode = podsOn(all, rejected[i].node, nil)
			}
			return rejected
		}
	}
	return nil
}

// orderSensitive reports whether a pod's verdict can get better as other
// pods bind: it has required pod affinity or a DoNotSchedule spread.
func orderSensitive(pod *corev1.Pod) bool {
	if hasPodAffinity(pod) {
		return true
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			return true
		}
	}
	return false
}

// hasPodAffinity reports whether a pod has a required pod affinity term.
func hasPodAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

// podFeatures names the scheduling features a pod uses, for coverage.
func podFeatures(pod *corev1.Pod) []string {
	var out []string
	s := &pod.Spec
	if len(s.InitContainers) > 0 || len(s.Containers) > 1 || len(s.Overhead) > 0 {
		out = append(out, "multiContainer")
	}
	if len(s.NodeSelector) > 0 {
		out = append(out, "nodeSelector")
	}
	if a := s.Affinity; a != nil {
		if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			out = append(out, "nodeAffinity")
		}
		if a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			out = append(out, "podAffinity")
		}
		if a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			out = append(out, "podAntiAffinity")
		}
	}
	if len(s.Tolerations) > 0 {
		out = append(out, "tolerations")
	}
	for _, c := range s.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			out = append(out, "spread")
			break
		}
	}
	if len(s.Containers[0].Ports) > 0 {
		out = append(out, "hostPorts")
	}
	return out
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
