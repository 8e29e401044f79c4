package integration

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// The oracle's workload generator: small random clusters (instance types,
// NodePools, DaemonSets, existing nodes with pods, an in-flight NodeClaim)
// and pending pods with every constraint kube-scheduler filters on. A seed
// determines the problem completely.

const (
	oracleMi          = int64(1) << 20
	oracleLabelCPUs   = "example.com/cpus"
	oracleLabelFamily = "example.com/family"
	oracleLabelTeam   = "example.com/team"
	oracleGPU         = "example.com/gpu"
)

var (
	oracleZones  = []string{"zone-1", "zone-2", "zone-3"}
	oracleArches = []string{"amd64", "arm64"}
	oracleCTs    = []string{solver.CapacityTypeSpot, solver.CapacityTypeOnDemand}
	oracleApps   = []string{"d0", "d1", "d2", "db", "cache"}
	// oracleNamespaces are the namespaces every case uses, with the labels
	// namespace selectors see (the API server adds the metadata.name one).
	oracleNamespaces = map[string]map[string]string{
		"default":     {"kubernetes.io/metadata.name": "default"},
		"team-a":      {"kubernetes.io/metadata.name": "team-a", "team": "a", "env": "prod"},
		"team-b":      {"kubernetes.io/metadata.name": "team-b", "team": "b", "env": "dev"},
		"kube-system": {"kubernetes.io/metadata.name": "kube-system"},
	}
)

// podShape is how a pod's requests split over containers, init
// containers (some of them restartable sidecars) and overhead, so that the
// scheduler derives the requests itself.
type podShape struct {
	containers []solver.Container
	inits      []solver.Container
	overhead   solver.Resources
}

// oracleCase is one generated problem and the container layout of each
// generated pod template (by owner).
type oracleCase struct {
	seed    uint64
	problem *solver.Problem
	shapes  map[string]podShape
}

type oracleGen struct {
	r      *rand.Rand
	p      *solver.Problem
	shapes map[string]podShape
	pools  []string
	teams  []string
}

func (g *oracleGen) chance(n int) bool         { return g.r.IntN(n) == 0 }
func (g *oracleGen) between(lo, hi int) int    { return lo + g.r.IntN(hi-lo+1) }
func (g *oracleGen) pick(xs ...string) string  { return xs[g.r.IntN(len(xs))] }
func (g *oracleGen) pickInt(xs ...int64) int64 { return xs[g.r.IntN(len(xs))] }

// genOracleCase builds the problem for one seed.
func genOracleCase(seed uint64) *oracleCase {
	g := &oracleGen{
		r:      rand.New(rand.NewPCG(seed, 0x6f7261636c65)),
		p:      &solver.Problem{Namespaces: oracleNamespaces},
		shapes: map[string]podShape{},
	}
	g.p.Options.ImproveRounds = int(g.pickInt(1, 3, 12))
	if g.chance(3) {
		g.p.Options.MinSpotInstanceTypes = -1
	}
	if g.chance(6) {
		g.p.Options.IgnorePreferences = true
	}
	g.instanceTypes()
	g.nodePools()
	g.daemonSets()
	g.existingNodes()
	g.inFlight()
	g.pods()
	return &oracleCase{seed: seed, problem: g.p, shapes: g.shapes}
}

func (g *oracleGen) instanceTypes() {
	for i, n := 0, g.between(1, 6); i < n; i++ {
		name := fmt.Sprintf("it-%d", i)
		cpus := g.pickInt(1, 2, 4, 8, 16)
		memPerCPU := g.pickInt(2, 4, 8)
		reserved := g.pickInt(0, 100, 250)
		pods := g.pickInt(3, 8, 30, 110, 110)
		capacity := solver.Resources{solver.ResourceCPU: cpus * 1000, solver.ResourceMemory: cpus * memPerCPU * gib, solver.ResourcePods: pods}
		alloc := solver.Resources{solver.ResourceCPU: cpus*1000 - reserved, solver.ResourceMemory: cpus*memPerCPU*gib - 256*oracleMi, solver.ResourcePods: pods}
		if !g.chance(5) {
			capacity[solver.ResourceEphemeralStorage], alloc[solver.ResourceEphemeralStorage] = 20*gib, 18*gib
		}
		labels := map[string]string{
			solver.LabelArch:         g.pick(oracleArches...),
			solver.LabelOS:           "linux",
			solver.LabelInstanceType: name,
			oracleLabelCPUs:          strconv.FormatInt(cpus, 10),
			oracleLabelFamily:        g.pick("c", "m", "r"),
		}
		if g.chance(5) {
			gpus := g.pickInt(1, 4)
			capacity[oracleGPU], alloc[oracleGPU] = gpus, gpus
			labels[oracleLabelFamily] = "g"
		}
		base := 0.04*float64(cpus) + 0.005*float64(cpus*memPerCPU)
		var offerings []solver.Offering
		for _, z := range oracleZones {
			for _, ct := range oracleCTs {
				if g.chance(3) {
					continue
				}
				price := base * (1 + float64(g.r.IntN(21))/100)
				if ct == solver.CapacityTypeSpot {
					price *= 0.4
				}
				offerings = append(offerings, solver.Offering{Zone: z, CapacityType: ct, PricePerHour: price, Available: !g.chance(8)})
			}
		}
		g.p.InstanceTypes = append(g.p.InstanceTypes, solver.InstanceType{Name: name, Capacity: capacity, Allocatable: alloc, Labels: labels, Offerings: offerings})
	}
}

func (g *oracleGen) poolRequirements() []solver.Requirement {
	var reqs []solver.Requirement
	if g.chance(6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelCapacityType, Operator: solver.OpIn, Values: []string{g.pick(oracleCTs...)}})
	}
	if g.chance(6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelArch, Operator: solver.OpIn, Values: []string{g.pick(oracleArches...)}})
	}
	if g.chance(6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelZone, Operator: solver.OpNotIn, Values: []string{g.pick(oracleZones...)}})
	}
	if g.chance(6) {
		reqs = append(reqs, solver.Requirement{Key: oracleLabelCPUs, Operator: solver.OpGt, Values: []string{"1"}})
	}
	if g.chance(6) {
		reqs = append(reqs, solver.Requirement{Key: oracleLabelFamily, Operator: solver.OpIn, Values: []string{"c", "m", "g"}})
	}
	if g.chance(8) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelInstanceType, Operator: solver.OpExists, MinValues: 2})
	}
	return reqs
}

func (g *oracleGen) nodePools() {
	for i, n := 0, g.between(1, 3); i < n; i++ {
		name := fmt.Sprintf("pool-%d", i)
		np := solver.NodePool{Name: name, Weight: int32(g.r.IntN(101)), Requirements: g.poolRequirements()}
		if g.chance(3) {
			team := "team-" + strconv.Itoa(i)
			np.Labels = map[string]string{oracleLabelTeam: team}
			g.teams = append(g.teams, team)
		}
		if g.chance(5) {
			effect := []solver.TaintEffect{solver.EffectNoSchedule, solver.EffectNoExecute, solver.EffectPreferNoSchedule}[g.r.IntN(3)]
			np.Taints = []solver.Taint{{Key: "dedicated", Value: name, Effect: effect}}
		}
		if g.chance(6) {
			np.StartupTaints = []solver.Taint{{Key: "example.com/not-ready", Effect: solver.EffectNoSchedule}}
		}
		if g.chance(5) {
			np.Limits = solver.Resources{solver.ResourceCPU: g.pickInt(4000, 16000, 64000)}
		}
		g.p.NodePools = append(g.p.NodePools, np)
		g.pools = append(g.pools, name)
	}
}

// shapeFor splits requests into a container layout whose effective
// requests are exactly req (sometimes with an init container, a sidecar
// and pod overhead on top, which then raise the requests).
func (g *oracleGen) shapeFor(req solver.Resources) (podShape, solver.Resources) {
	var s podShape
	if g.chance(2) {
		s.containers = []solver.Container{{Requests: req}}
	} else {
		a, b := solver.Resources{}, solver.Resources{}
		for k, v := range req {
			a[k] = v / 2
			b[k] = v - v/2
		}
		s.containers = []solver.Container{{Requests: a}, {Requests: b}}
	}
	if g.chance(5) { // an init container bigger than the app on CPU
		s.inits = append(s.inits, solver.Container{Requests: solver.Resources{solver.ResourceCPU: req[solver.ResourceCPU] + 500, solver.ResourceMemory: 64 * oracleMi}})
	}
	if g.chance(6) { // a sidecar, which adds to everything after it
		s.inits = append(s.inits, solver.Container{RestartPolicyAlways: true, Requests: solver.Resources{solver.ResourceCPU: 50, solver.ResourceMemory: 32 * oracleMi}})
	}
	if g.chance(8) {
		s.overhead = solver.Resources{solver.ResourceCPU: 100, solver.ResourceMemory: 120 * oracleMi}
	}
	return s, solver.EffectiveRequests(s.containers, s.inits, s.overhead)
}

func (g *oracleGen) daemonSets() {
	for i, n := 0, g.between(0, 2); i < n; i++ {
		name := fmt.Sprintf("ds-%d", i)
		owner := "DaemonSet/kube-system/" + name
		shape, req := g.shapeFor(solver.Resources{
			solver.ResourceCPU:    g.pickInt(50, 100, 200),
			solver.ResourceMemory: g.pickInt(64, 128, 256) * oracleMi,
		})
		g.shapes[owner] = shape
		tmpl := solver.Pod{Namespace: "kube-system", Name: name, Labels: map[string]string{"ds": name}, Owner: owner, DaemonSet: true, Requests: req}
		if g.chance(3) {
			tmpl.NodeSelector = map[string]string{solver.LabelArch: g.pick(oracleArches...)}
		}
		switch g.r.IntN(4) {
		case 0:
			tmpl.Tolerations = []solver.Toleration{{Operator: "Exists"}}
		case 1:
			tmpl.Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
		}
		g.p.DaemonSets = append(g.p.DaemonSets, solver.DaemonSet{Namespace: "kube-system", Name: name, Template: tmpl})
	}
}

func oracleCheapest(it *solver.InstanceType) (solver.Offering, bool) {
	var best solver.Offering
	found := false
	for _, o := range it.Offerings {
		if !found || o.PricePerHour < best.PricePerHour {
			best, found = o, true
		}
	}
	return best, found
}

func oracleNodeLabels(np *solver.NodePool, it *solver.InstanceType, o solver.Offering, hostname string) map[string]string {
	labels := map[string]string{}
	for k, v := range it.Labels {
		labels[k] = v
	}
	for k, v := range np.Labels {
		labels[k] = v
	}
	labels[solver.LabelZone] = o.Zone
	labels[solver.LabelCapacityType] = o.CapacityType
	labels[solver.LabelNodePool] = np.Name
	labels[solver.LabelHostname] = hostname
	return labels
}

// existingPod makes a pod already bound to a node; some carry anti-
// affinity or host ports that pending pods must respect.
func (g *oracleGen) existingPod(name string) *solver.Pod {
	app := g.pick(oracleApps...)
	ns := g.pick("default", "default", "team-a", "team-b")
	pod := &solver.Pod{
		Namespace: ns, Name: name,
		Labels: map[string]string{"app": app, "tier": g.pick("web", "api")},
		Owner:  "ReplicaSet/" + ns + "/" + app + "-old",
		Requests: solver.Resources{
			solver.ResourceCPU:    g.pickInt(100, 250, 500, 1000),
			solver.ResourceMemory: g.pickInt(128, 512, 1024) * oracleMi,
		},
		Tolerations: []solver.Toleration{{Operator: "Exists"}},
	}
	switch g.r.IntN(6) {
	case 0:
		pod.PodAntiAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: g.pick(solver.LabelHostname, solver.LabelZone),
			LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": g.pick(oracleApps...)}}}}
	case 1:
		pod.HostPorts = []solver.HostPort{{Port: int32(g.pickInt(8080, 9090)), Protocol: g.pick("TCP", "UDP")}}
	}
	return pod
}

func oracleFits(used, alloc, req solver.Resources) bool {
	for k, v := range req {
		if used[k]+v > alloc[k] {
			return false
		}
	}
	max, ok := alloc[solver.ResourcePods]
	if !ok {
		max = 110
	}
	return used[solver.ResourcePods]+1 <= max
}

func oracleAdd(used, req solver.Resources) {
	for k, v := range req {
		used[k] += v
	}
	used[solver.ResourcePods]++
}

func (g *oracleGen) existingNodes() {
	for i, n := 0, g.between(0, 3); i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		np := &g.p.NodePools[g.r.IntN(len(g.p.NodePools))]
		it := &g.p.InstanceTypes[g.r.IntN(len(g.p.InstanceTypes))]
		o, ok := oracleCheapest(it)
		if !ok {
			o = solver.Offering{Zone: g.pick(oracleZones...), CapacityType: solver.CapacityTypeOnDemand, PricePerHour: 0.1}
		}
		labels := oracleNodeLabels(np, it, o, name)
		node := solver.Node{
			Name: name, NodePool: np.Name, Labels: labels, Taints: np.Taints, Allocatable: it.Allocatable,
			InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType, PricePerHour: o.PricePerHour,
			Unschedulable: g.chance(7),
		}
		if node.Unschedulable {
			node.Taints = append(append([]solver.Taint(nil), node.Taints...), solver.Taint{Key: "node.kubernetes.io/unschedulable", Effect: solver.EffectNoSchedule})
		}
		used := solver.Resources{}
		for di := range g.p.DaemonSets {
			tmpl := g.p.DaemonSets[di].Template
			if tmpl.NodeSelectorMatches(labels) && tmpl.ToleratesHardTaints(node.Taints) && oracleFits(used, node.Allocatable, tmpl.Requests) {
				ds := tmpl
				ds.Name = tmpl.Name + "-" + name
				node.Pods = append(node.Pods, &ds)
				oracleAdd(used, ds.Requests)
			}
		}
		for j, m := 0, g.between(0, 3); j < m; j++ {
			pod := g.existingPod(fmt.Sprintf("%s-pod-%d", name, j))
			if oracleFits(used, node.Allocatable, pod.Requests) {
				node.Pods = append(node.Pods, pod)
				oracleAdd(used, pod.Requests)
			}
		}
		g.p.Nodes = append(g.p.Nodes, node)
		g.addUsage(np, it)
	}
}

func (g *oracleGen) addUsage(np *solver.NodePool, it *solver.InstanceType) {
	if np.Usage == nil {
		np.Usage = solver.Resources{}
	}
	for k, v := range it.Capacity {
		np.Usage[k] += v
	}
}

func (g *oracleGen) inFlight() {
	if !g.chance(4) {
		return
	}
	name := "inflight-0"
	np := &g.p.NodePools[g.r.IntN(len(g.p.NodePools))]
	it := &g.p.InstanceTypes[g.r.IntN(len(g.p.InstanceTypes))]
	o, ok := oracleCheapest(it)
	if !ok {
		return
	}
	c := solver.NodeClaim{
		Name: name, NodePool: np.Name, InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType,
		PricePerHour: o.PricePerHour, Labels: oracleNodeLabels(np, it, o, name), Taints: np.Taints, Allocatable: it.Allocatable,
	}
	used := solver.Resources{}
	for di := range g.p.DaemonSets {
		tmpl := g.p.DaemonSets[di].Template
		if tmpl.NodeSelectorMatches(c.Labels) && tmpl.ToleratesHardTaints(c.Taints) {
			if !oracleFits(used, c.Allocatable, tmpl.Requests) {
				return // the claim's DaemonSet pods would not fit: launch none
			}
			oracleAdd(used, tmpl.Requests)
		}
	}
	for j, m := 0, g.between(0, 2); j < m; j++ {
		pod := g.existingPod(fmt.Sprintf("%s-pod-%d", name, j))
		if oracleFits(used, c.Allocatable, pod.Requests) {
			c.Pods = append(c.Pods, pod)
			oracleAdd(used, pod.Requests)
		}
	}
	g.p.NodeClaims = append(g.p.NodeClaims, c)
	g.addUsage(np, it)
}

func (g *oracleGen) pods() {
	total := g.between(1, 40)
	deployments := g.between(1, 6)
	made := 0
	for d := 0; d < deployments && made < total; d++ {
		name := fmt.Sprintf("d%d", d)
		replicas := g.between(1, 10)
		if d == deployments-1 {
			replicas = total - made
		}
		replicas = min(replicas, total-made)
		ns := g.pick("default", "default", "team-a", "team-b")
		owner := "ReplicaSet/" + ns + "/" + name
		req := solver.Resources{
			solver.ResourceCPU:    g.pickInt(100, 250, 500, 1000, 1500, 3000),
			solver.ResourceMemory: g.pickInt(128, 512, 1024, 2048, 4096) * oracleMi,
		}
		if g.chance(10) { // often too big for any instance type
			req[solver.ResourceCPU] = g.pickInt(7000, 20000)
			req[solver.ResourceMemory] = 16384 * oracleMi
		}
		if g.chance(6) {
			req[solver.ResourceEphemeralStorage] = g.pickInt(1, 4, 10) * gib
		}
		if g.chance(8) {
			req[oracleGPU] = g.pickInt(1, 2)
		}
		shape, eff := g.shapeFor(req)
		g.shapes[owner] = shape
		tmpl := solver.Pod{
			Namespace: ns, Owner: owner, Requests: eff,
			Labels: map[string]string{"app": name, "tier": g.pick("web", "api"), "rev": g.pick("r1", "r2")},
		}
		g.constraints(name, &tmpl)
		for r := 0; r < replicas; r++ {
			pod := tmpl
			pod.Name = fmt.Sprintf("%s-%d", name, r)
			g.p.Pods = append(g.p.Pods, &pod)
			made++
		}
	}
}

func (g *oracleGen) constraints(name string, tmpl *solver.Pod) {
	switch g.r.IntN(10) {
	case 6:
		tmpl.NodeSelector = map[string]string{solver.LabelArch: g.pick(oracleArches...)}
	case 7:
		tmpl.NodeSelector = map[string]string{solver.LabelZone: g.pick(oracleZones...)}
	case 8:
		tmpl.NodeSelector = map[string]string{solver.LabelCapacityType: g.pick(oracleCTs...)}
	case 9:
		if len(g.teams) > 0 {
			tmpl.NodeSelector = map[string]string{oracleLabelTeam: g.pick(g.teams...)}
		}
	}
	if g.chance(4) {
		tmpl.RequiredNodeAffinity = g.nodeAffinity()
	}
	if g.chance(5) {
		tmpl.PreferredNodeAffinity = []solver.PreferredSchedulingTerm{{Weight: 10, Term: g.nodeAffinity()[0]}}
	}
	g.tolerations(tmpl)
	if g.chance(4) {
		tmpl.PodAntiAffinity.Required = []solver.PodAffinityTerm{g.affinityTerm(name)}
	}
	if g.chance(6) {
		tmpl.PodAffinity.Required = []solver.PodAffinityTerm{g.affinityTerm(name)}
	}
	if g.chance(6) {
		tmpl.PodAntiAffinity.Preferred = []solver.WeightedPodAffinityTerm{{Weight: 50, Term: g.affinityTerm(name)}}
	}
	if g.chance(3) {
		tmpl.TopologySpread = []solver.TopologySpreadConstraint{g.spread(name)}
		if g.chance(5) {
			tmpl.TopologySpread = append(tmpl.TopologySpread, g.spread(name))
		}
	}
	if g.chance(6) {
		tmpl.HostPorts = []solver.HostPort{{Port: int32(g.pickInt(8080, 9090)), Protocol: g.pick("TCP", "TCP", "UDP"),
			HostIP: g.pick("", "", "0.0.0.0", "10.0.0.1", "10.0.0.2")}}
	}
}

func (g *oracleGen) tolerations(tmpl *solver.Pod) {
	switch g.r.IntN(6) {
	case 3:
		tmpl.Tolerations = []solver.Toleration{{Operator: "Exists"}}
	case 4:
		tmpl.Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Equal", Value: g.pick(g.pools...),
			Effect: []solver.TaintEffect{solver.EffectNoSchedule, solver.EffectNoExecute, ""}[g.r.IntN(3)]}}
	case 5:
		tmpl.Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}, {Key: "example.com/not-ready", Operator: "Exists"}}
	}
}

func (g *oracleGen) nodeAffinity() []solver.NodeSelectorTerm {
	var terms []solver.NodeSelectorTerm
	for i, n := 0, g.between(1, 2); i < n; i++ {
		var term solver.NodeSelectorTerm
		for j, m := 0, g.between(1, 2); j < m; j++ {
			term.Requirements = append(term.Requirements, g.nodeRequirement())
		}
		terms = append(terms, term)
	}
	return terms
}

func (g *oracleGen) nodeRequirement() solver.Requirement {
	inNotIn := func() solver.Operator { return []solver.Operator{solver.OpIn, solver.OpNotIn}[g.r.IntN(2)] }
	switch g.r.IntN(7) {
	case 0:
		return solver.Requirement{Key: solver.LabelZone, Operator: inNotIn(), Values: []string{g.pick(oracleZones...)}}
	case 1:
		return solver.Requirement{Key: solver.LabelArch, Operator: inNotIn(), Values: []string{g.pick(oracleArches...)}}
	case 2:
		return solver.Requirement{Key: oracleLabelCPUs, Operator: []solver.Operator{solver.OpGt, solver.OpLt}[g.r.IntN(2)],
			Values: []string{g.pick("1", "2", "4", "8")}}
	case 3:
		return solver.Requirement{Key: solver.LabelCapacityType, Operator: solver.OpIn, Values: []string{g.pick(oracleCTs...)}}
	case 4:
		return solver.Requirement{Key: oracleLabelFamily, Operator: inNotIn(), Values: []string{"c", g.pick("m", "r", "g")}}
	case 5:
		return solver.Requirement{Key: g.pick(oracleLabelTeam, "example.com/missing"),
			Operator: []solver.Operator{solver.OpExists, solver.OpDoesNotExist}[g.r.IntN(2)]}
	default:
		teams := append([]string{"team-x"}, g.teams...)
		return solver.Requirement{Key: oracleLabelTeam, Operator: solver.OpIn, Values: []string{g.pick(teams...)}}
	}
}

// selector selects pods of app (often the template's own), sometimes by
// expression.
func (g *oracleGen) selector(name string) *solver.LabelSelector {
	app := g.pick(name, name, "d0", "d1", "db", "cache")
	switch g.r.IntN(5) {
	case 0:
		return &solver.LabelSelector{MatchExpressions: []solver.LabelSelectorRequirement{{Key: "app", Operator: solver.OpIn, Values: []string{app, g.pick(oracleApps...)}}}}
	case 1:
		return &solver.LabelSelector{MatchLabels: map[string]string{"app": app},
			MatchExpressions: []solver.LabelSelectorRequirement{{Key: "tier", Operator: g.pick2ops()}}}
	default:
		return &solver.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
}

func (g *oracleGen) pick2ops() solver.Operator {
	return []solver.Operator{solver.OpExists, solver.OpDoesNotExist}[g.r.IntN(2)]
}

func (g *oracleGen) affinityTerm(name string) solver.PodAffinityTerm {
	t := solver.PodAffinityTerm{
		LabelSelector: g.selector(name),
		TopologyKey:   g.pick(solver.LabelHostname, solver.LabelHostname, solver.LabelZone, solver.LabelZone, solver.LabelCapacityType, oracleLabelTeam),
	}
	switch g.r.IntN(8) {
	case 0:
		t.Namespaces = []string{g.pick("default", "team-a", "team-b")}
	case 1:
		t.NamespaceSelector = &solver.LabelSelector{}
	case 2:
		t.NamespaceSelector = &solver.LabelSelector{MatchLabels: map[string]string{"env": g.pick("prod", "dev")}}
	}
	if g.chance(6) {
		t.MatchLabelKeys = []string{"rev"}
	}
	if g.chance(8) && !selectorUses(t.LabelSelector, "tier") {
		t.MismatchLabelKeys = []string{"tier"}
	}
	return t
}

func (g *oracleGen) spread(name string) solver.TopologySpreadConstraint {
	c := solver.TopologySpreadConstraint{
		MaxSkew:           int32(g.between(1, 2)),
		TopologyKey:       g.pick(solver.LabelHostname, solver.LabelZone, solver.LabelZone, solver.LabelCapacityType),
		WhenUnsatisfiable: solver.DoNotSchedule,
		LabelSelector:     g.selector(name),
	}
	if g.chance(4) {
		c.WhenUnsatisfiable = solver.ScheduleAnyway
	}
	if g.chance(5) && c.WhenUnsatisfiable == solver.DoNotSchedule {
		c.MinDomains = int32(g.between(2, 4))
	}
	if g.chance(5) {
		c.NodeTaintsPolicy = solver.PolicyHonor
	}
	if g.chance(7) {
		c.NodeAffinityPolicy = solver.PolicyIgnore
	}
	if g.chance(6) {
		c.MatchLabelKeys = []string{"rev"}
	}
	return c
}

// selectorUses reports whether s has a requirement on key (the API
// rejects a key in both the selector and matchLabelKeys or
// mismatchLabelKeys).
func selectorUses(s *solver.LabelSelector, key string) bool {
	if _, ok := s.MatchLabels[key]; ok {
		return true
	}
	for _, e := range s.MatchExpressions {
		if e.Key == key {
			return true
		}
	}
	return false
}
