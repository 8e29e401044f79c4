package verify

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Property tests: random small problems, solved by the solver, must give
// plans this package accepts.
//
// They run with a fixed rapid seed (propertySeed) so that `go test` is
// reproducible; explore further with -rapid.seed=N (or RAPID_SEED=N) and
// more cases with -rapid.checks=N, e.g.
//
//	go test ./internal/verify -run Property -rapid.checks=20000 -rapid.seed=7
//
// Fail files are not written unless -rapid.nofailfile=false is given; the
// failure message names the seed that reproduces it.

const propertySeed = "20261126"

func TestMain(m *testing.M) {
	flag.Parse()
	given := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["rapid.seed"] && os.Getenv("RAPID_SEED") == "" {
		_ = flag.Set("rapid.seed", propertySeed)
	}
	if !given["rapid.nofailfile"] && os.Getenv("RAPID_NOFAILFILE") == "" {
		_ = flag.Set("rapid.nofailfile", "true")
	}
	os.Exit(m.Run())
}

var (
	propZones  = []string{"zone-1", "zone-2", "zone-3"}
	propArches = []string{"amd64", "arm64"}
	propCTs    = []string{solver.CapacityTypeSpot, solver.CapacityTypeOnDemand}
)

const (
	labelCPUs   = "example.com/cpus"
	labelFamily = "example.com/family"
	labelTeam   = "example.com/team"
	mi          = int64(1) << 20
)

type genOpts struct {
	plainOnly     bool // pods with requests only, one NodePool without constraints, no nodes
	consolidation bool // no pending pods; existing nodes with pods
}

type genState struct {
	p     *solver.Problem
	pools []string
	teams []string
}

// chance reports true with probability about 1/n; it shrinks to false, so
// that minimized counterexamples drop optional features.
func chance(t *rapid.T, label string, n int) bool {
	return rapid.IntRange(0, n-1).Draw(t, label) == n-1
}

func genInstanceTypes(t *rapid.T) []solver.InstanceType {
	n := rapid.IntRange(1, 5).Draw(t, "instanceTypes")
	var out []solver.InstanceType
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("it-%d", i)
		cpus := rapid.SampledFrom([]int64{4, 8, 16, 2, 1}).Draw(t, name+"/cpus")
		memPerCPU := rapid.SampledFrom([]int64{4, 8, 2}).Draw(t, name+"/memPerCPU")
		pods := rapid.SampledFrom([]int64{30, 110, 8, 3}).Draw(t, name+"/pods")
		reserved := rapid.SampledFrom([]int64{0, 100, 250}).Draw(t, name+"/reservedCPU")
		capacity := solver.Resources{solver.ResourceCPU: cpus * 1000, solver.ResourceMemory: cpus * memPerCPU * gi, solver.ResourcePods: pods}
		alloc := solver.Resources{solver.ResourceCPU: cpus*1000 - reserved, solver.ResourceMemory: cpus*memPerCPU*gi - 256*mi, solver.ResourcePods: pods}
		base := 0.04*float64(cpus) + 0.005*float64(cpus*memPerCPU)
		var offerings []solver.Offering
		for _, z := range propZones {
			for _, ct := range propCTs {
				if chance(t, name+"/noOffer/"+z+"/"+ct, 3) {
					continue
				}
				price := base * (1 + float64(rapid.IntRange(0, 20).Draw(t, name+"/jitter/"+z+"/"+ct))/100)
				if ct == solver.CapacityTypeSpot {
					price *= 0.4
				}
				offerings = append(offerings, solver.Offering{
					Zone: z, CapacityType: ct, PricePerHour: price,
					Available: !chance(t, name+"/unavailable/"+z+"/"+ct, 8),
				})
			}
		}
		out = append(out, solver.InstanceType{
			Name:        name,
			Capacity:    capacity,
			Allocatable: alloc,
			Labels: map[string]string{
				solver.LabelArch:         rapid.SampledFrom(propArches).Draw(t, name+"/arch"),
				solver.LabelOS:           "linux",
				solver.LabelInstanceType: name,
				labelCPUs:                strconv.FormatInt(cpus, 10),
				labelFamily:              rapid.SampledFrom([]string{"c", "m", "r"}).Draw(t, name+"/family"),
			},
			Offerings: offerings,
		})
	}
	return out
}

func genPoolRequirements(t *rapid.T, name string) []solver.Requirement {
	var reqs []solver.Requirement
	if chance(t, name+"/ct?", 6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelCapacityType, Operator: solver.OpIn,
			Values: []string{rapid.SampledFrom(propCTs).Draw(t, name+"/ct")}})
	}
	if chance(t, name+"/arch?", 6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelArch, Operator: solver.OpIn,
			Values: []string{rapid.SampledFrom(propArches).Draw(t, name+"/arch")}})
	}
	if chance(t, name+"/zone?", 6) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelZone, Operator: solver.OpNotIn,
			Values: []string{rapid.SampledFrom(propZones).Draw(t, name+"/zone")}})
	}
	if chance(t, name+"/cpus?", 6) {
		reqs = append(reqs, solver.Requirement{Key: labelCPUs, Operator: solver.OpGt, Values: []string{"1"}})
	}
	if chance(t, name+"/family?", 6) {
		reqs = append(reqs, solver.Requirement{Key: labelFamily, Operator: solver.OpIn, Values: []string{"c", "m"}})
	}
	if chance(t, name+"/minValues?", 8) {
		reqs = append(reqs, solver.Requirement{Key: solver.LabelInstanceType, Operator: solver.OpExists, MinValues: 2})
	}
	return reqs
}

func genNodePools(t *rapid.T, g *genState, plain bool) {
	n := 1
	if !plain {
		n = rapid.IntRange(1, 3).Draw(t, "nodePools")
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("pool-%d", i)
		np := solver.NodePool{Name: name, Weight: int32(rapid.IntRange(0, 100).Draw(t, name+"/weight"))}
		if !plain {
			np.Requirements = genPoolRequirements(t, name)
			if chance(t, name+"/team?", 3) {
				team := "team-" + strconv.Itoa(i)
				np.Labels = map[string]string{labelTeam: team}
				g.teams = append(g.teams, team)
			}
			if chance(t, name+"/taint?", 6) {
				np.Taints = []solver.Taint{{Key: "dedicated", Value: name, Effect: solver.EffectNoSchedule}}
			}
			if chance(t, name+"/startupTaint?", 6) {
				np.StartupTaints = []solver.Taint{{Key: "example.com/not-ready", Effect: solver.EffectNoSchedule}}
			}
			if chance(t, name+"/limits?", 4) {
				np.Limits = solver.Resources{solver.ResourceCPU: rapid.SampledFrom([]int64{4000, 16000, 64000}).Draw(t, name+"/cpuLimit")}
			}
			if chance(t, name+"/nodesLimit?", 4) {
				if np.Limits == nil {
					np.Limits = solver.Resources{}
				}
				np.Limits[solver.ResourceNodes] = rapid.Int64Range(0, 4).Draw(t, name+"/nodesLimit")
				np.Usage = solver.Resources{solver.ResourceNodes: rapid.Int64Range(0, 2).Draw(t, name+"/nodesUsage")}
			}
		}
		g.p.NodePools = append(g.p.NodePools, np)
		g.pools = append(g.pools, name)
	}
}

func genDaemonSets(t *rapid.T, g *genState) {
	n := rapid.IntRange(0, 2).Draw(t, "daemonSets")
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("ds-%d", i)
		tmpl := solver.Pod{
			Namespace: "kube-system",
			Name:      name,
			Labels:    map[string]string{"ds": name},
			Owner:     "DaemonSet/kube-system/" + name,
			DaemonSet: true,
			Requests: solver.Resources{
				solver.ResourceCPU:    rapid.SampledFrom([]int64{50, 100, 200}).Draw(t, name+"/cpu"),
				solver.ResourceMemory: rapid.SampledFrom([]int64{64, 128, 256}).Draw(t, name+"/mem") * mi,
			},
		}
		if chance(t, name+"/arch?", 3) {
			tmpl.NodeSelector = map[string]string{solver.LabelArch: rapid.SampledFrom(propArches).Draw(t, name+"/arch")}
		}
		if chance(t, name+"/tolerateAll", 2) {
			tmpl.Tolerations = []solver.Toleration{{Operator: "Exists"}}
		}
		if chance(t, name+"/hostPort?", 3) {
			// The port app pods may also want (genPodTemplate).
			tmpl.HostPorts = []solver.HostPort{{Port: 8080, Protocol: "TCP",
				HostIP: rapid.SampledFrom([]string{"", "10.0.0.1", "10.0.0.2"}).Draw(t, name+"/hostIP")}}
		}
		g.p.DaemonSets = append(g.p.DaemonSets, solver.DaemonSet{Namespace: "kube-system", Name: name, Template: tmpl})
	}
}

func cheapestOffering(it *solver.InstanceType) (solver.Offering, bool) {
	var best solver.Offering
	found := false
	for _, o := range it.Offerings {
		if !found || o.PricePerHour < best.PricePerHour {
			best, found = o, true
		}
	}
	return best, found
}

// nodeLabels returns the labels of a node or in-flight claim of pool np
// launched as it in offering o.
func nodeLabels(np *solver.NodePool, it *solver.InstanceType, o solver.Offering, hostname string) map[string]string {
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

// genExistingPod makes a pod already bound to a node with these labels.
func genExistingPod(t *rapid.T, name string, labels map[string]string, consolidation bool) *solver.Pod {
	app := rapid.SampledFrom([]string{"db", "d0", "d1", "cache"}).Draw(t, name+"/app")
	pod := &solver.Pod{
		Namespace: "default",
		Name:      name,
		Labels:    map[string]string{"app": app},
		Owner:     "ReplicaSet/default/" + app,
		Requests: solver.Resources{
			solver.ResourceCPU:    rapid.SampledFrom([]int64{100, 250, 500, 1000}).Draw(t, name+"/cpu"),
			solver.ResourceMemory: rapid.SampledFrom([]int64{128, 512, 1024}).Draw(t, name+"/mem") * mi,
		},
	}
	if consolidation {
		if chance(t, name+"/doNotDisrupt?", 7) {
			pod.Annotations = map[string]string{solver.AnnotationDoNotDisrupt: "true"}
		}
		switch rapid.IntRange(0, 5).Draw(t, name+"/constraint") {
		case 2: // a selector its current node meets
			pod.NodeSelector = map[string]string{solver.LabelArch: labels[solver.LabelArch]}
		case 3:
			pod.NodeSelector = map[string]string{solver.LabelZone: labels[solver.LabelZone]}
		case 4:
			pod.PodAntiAffinity.Required = []solver.PodAffinityTerm{{TopologyKey: solver.LabelHostname,
				LabelSelector: &solver.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
		case 5:
			pod.HostPorts = []solver.HostPort{{Port: 8080, Protocol: "TCP"}}
		}
		pod.Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Exists"}}
	}
	return pod
}

func fits(used, alloc solver.Resources, req solver.Resources) bool {
	for k, v := range req {
		if used[k]+v > alloc[k] {
			return false
		}
	}
	return used[solver.ResourcePods]+1 <= alloc[solver.ResourcePods]
}

func addUsed(used, req solver.Resources) {
	for k, v := range req {
		used[k] += v
	}
	used[solver.ResourcePods]++
}

func genExistingNodes(t *rapid.T, g *genState, consolidation bool) {
	lo, hi := 0, 3
	if consolidation {
		lo, hi = 1, 5
	}
	n := rapid.IntRange(lo, hi).Draw(t, "nodes")
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		np := &g.p.NodePools[rapid.IntRange(0, len(g.p.NodePools)-1).Draw(t, name+"/pool")]
		it := &g.p.InstanceTypes[rapid.IntRange(0, len(g.p.InstanceTypes)-1).Draw(t, name+"/type")]
		o, ok := cheapestOffering(it)
		if !ok {
			o = solver.Offering{Zone: rapid.SampledFrom(propZones).Draw(t, name+"/zone"), CapacityType: solver.CapacityTypeOnDemand, PricePerHour: 0.1}
		}
		labels := nodeLabels(np, it, o, name)
		node := solver.Node{
			Name: name, NodePool: np.Name, Labels: labels, Taints: np.Taints,
			Allocatable: it.Allocatable, InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType, PricePerHour: o.PricePerHour,
			Unschedulable: chance(t, name+"/cordoned", 7),
		}
		if node.Unschedulable {
			// As in a real cluster: the node controller taints cordoned nodes.
			node.Taints = append(append([]solver.Taint(nil), node.Taints...),
				solver.Taint{Key: "node.kubernetes.io/unschedulable", Effect: solver.EffectNoSchedule})
		}
		if consolidation && chance(t, name+"/doNotDisrupt?", 7) {
			node.Annotations = map[string]string{solver.AnnotationDoNotDisrupt: "true"}
		}
		used := solver.Resources{}
		for di := range g.p.DaemonSets {
			tmpl := g.p.DaemonSets[di].Template
			if tmpl.NodeSelectorMatches(labels) && tmpl.ToleratesHardTaints(node.Taints) && fits(used, node.Allocatable, tmpl.Requests) {
				ds := tmpl
				ds.Name = tmpl.Name + "-" + name
				node.Pods = append(node.Pods, &ds)
				addUsed(used, ds.Requests)
			}
		}
		maxPods := 3
		if consolidation {
			maxPods = 4
		}
		for j, m := 0, rapid.IntRange(0, maxPods).Draw(t, name+"/pods"); j < m; j++ {
			pod := genExistingPod(t, fmt.Sprintf("%s-pod-%d", name, j), labels, consolidation)
			if fits(used, node.Allocatable, pod.Requests) {
				node.Pods = append(node.Pods, pod)
				addUsed(used, pod.Requests)
			}
		}
		g.p.Nodes = append(g.p.Nodes, node)
		if np.Usage == nil {
			np.Usage = solver.Resources{}
		}
		for k, v := range it.Capacity {
			np.Usage[k] += v
		}
	}
}

func genInFlight(t *rapid.T, g *genState) {
	if rapid.IntRange(0, 3).Draw(t, "inFlight?") != 0 {
		return
	}
	name := "inflight-0"
	np := &g.p.NodePools[rapid.IntRange(0, len(g.p.NodePools)-1).Draw(t, name+"/pool")]
	it := &g.p.InstanceTypes[rapid.IntRange(0, len(g.p.InstanceTypes)-1).Draw(t, name+"/type")]
	o, ok := cheapestOffering(it)
	if !ok {
		return
	}
	c := solver.NodeClaim{
		Name: name, NodePool: np.Name, InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType,
		PricePerHour: o.PricePerHour, Labels: nodeLabels(np, it, o, name), Taints: np.Taints, Allocatable: it.Allocatable,
	}
	used := solver.Resources{}
	for di := range g.p.DaemonSets {
		tmpl := g.p.DaemonSets[di].Template
		if tmpl.NodeSelectorMatches(c.Labels) && tmpl.ToleratesHardTaints(c.Taints) {
			addUsed(used, tmpl.Requests)
		}
	}
	for j, m := 0, rapid.IntRange(0, 2).Draw(t, name+"/pods"); j < m; j++ {
		pod := genExistingPod(t, fmt.Sprintf("%s-pod-%d", name, j), c.Labels, false)
		if fits(used, c.Allocatable, pod.Requests) {
			c.Pods = append(c.Pods, pod)
			addUsed(used, pod.Requests)
		}
	}
	g.p.NodeClaims = append(g.p.NodeClaims, c)
	if np.Usage == nil {
		np.Usage = solver.Resources{}
	}
	for k, v := range it.Capacity {
		np.Usage[k] += v
	}
}

func genNodeAffinity(t *rapid.T, name string, g *genState) []solver.NodeSelectorTerm {
	var terms []solver.NodeSelectorTerm
	for i, n := 0, rapid.IntRange(1, 2).Draw(t, name+"/terms"); i < n; i++ {
		var term solver.NodeSelectorTerm
		for j, m := 0, rapid.IntRange(1, 2).Draw(t, name+"/reqs"); j < m; j++ {
			id := fmt.Sprintf("%s/term%d/req%d", name, i, j)
			var r solver.Requirement
			switch rapid.IntRange(0, 6).Draw(t, id+"/kind") {
			case 0:
				r = solver.Requirement{Key: solver.LabelZone, Operator: rapid.SampledFrom([]solver.Operator{solver.OpIn, solver.OpNotIn}).Draw(t, id+"/op"),
					Values: []string{rapid.SampledFrom(propZones).Draw(t, id+"/v")}}
			case 1:
				r = solver.Requirement{Key: solver.LabelArch, Operator: rapid.SampledFrom([]solver.Operator{solver.OpIn, solver.OpNotIn}).Draw(t, id+"/op"),
					Values: []string{rapid.SampledFrom(propArches).Draw(t, id+"/v")}}
			case 2:
				r = solver.Requirement{Key: labelCPUs, Operator: rapid.SampledFrom([]solver.Operator{solver.OpGt, solver.OpLt}).Draw(t, id+"/op"),
					Values: []string{rapid.SampledFrom([]string{"1", "2", "4", "8"}).Draw(t, id+"/v")}}
			case 3:
				r = solver.Requirement{Key: solver.LabelCapacityType, Operator: solver.OpIn,
					Values: []string{rapid.SampledFrom(propCTs).Draw(t, id+"/v")}}
			case 4:
				r = solver.Requirement{Key: labelFamily, Operator: rapid.SampledFrom([]solver.Operator{solver.OpIn, solver.OpNotIn}).Draw(t, id+"/op"),
					Values: []string{"c", rapid.SampledFrom([]string{"m", "r"}).Draw(t, id+"/v")}}
			case 5:
				op := rapid.SampledFrom([]solver.Operator{solver.OpExists, solver.OpDoesNotExist}).Draw(t, id+"/op")
				r = solver.Requirement{Key: rapid.SampledFrom([]string{labelTeam, "example.com/missing"}).Draw(t, id+"/key"), Operator: op}
			case 6:
				teams := append([]string{"team-x"}, g.teams...)
				r = solver.Requirement{Key: labelTeam, Operator: solver.OpIn, Values: []string{rapid.SampledFrom(teams).Draw(t, id+"/v")}}
			}
			term.Requirements = append(term.Requirements, r)
		}
		terms = append(terms, term)
	}
	return terms
}

func genPods(t *rapid.T, g *genState, plain bool) {
	total := rapid.IntRange(1, 40).Draw(t, "pods")
	deployments := rapid.IntRange(1, 6).Draw(t, "deployments")
	if plain {
		deployments = total
	}
	made := 0
	for d := 0; d < deployments && made < total; d++ {
		name := fmt.Sprintf("d%d", d)
		replicas := 1
		if !plain {
			replicas = rapid.IntRange(1, 10).Draw(t, name+"/replicas")
		}
		if d == deployments-1 && !plain {
			replicas = total - made
		}
		replicas = min(replicas, total-made)
		tmpl := solver.Pod{
			Namespace: "default",
			Labels:    map[string]string{"app": name},
			Owner:     "ReplicaSet/default/" + name,
			Requests: solver.Resources{
				solver.ResourceCPU:    rapid.SampledFrom([]int64{100, 250, 500, 1000, 1500, 3000}).Draw(t, name+"/cpu"),
				solver.ResourceMemory: rapid.SampledFrom([]int64{128, 512, 1024, 2048, 4096}).Draw(t, name+"/mem") * mi,
			},
		}
		if chance(t, name+"/huge?", 10) { // often too big for any instance type
			tmpl.Requests[solver.ResourceCPU] = rapid.SampledFrom([]int64{7000, 20000}).Draw(t, name+"/hugeCPU")
			tmpl.Requests[solver.ResourceMemory] = 16384 * mi
		}
		if !plain {
			genPodConstraints(t, g, name, d, &tmpl)
		}
		for r := 0; r < replicas; r++ {
			pod := tmpl
			pod.Name = fmt.Sprintf("%s-%d", name, r)
			g.p.Pods = append(g.p.Pods, &pod)
			made++
		}
	}
}

func genPodConstraints(t *rapid.T, g *genState, name string, d int, tmpl *solver.Pod) {
	appSel := func(app string) *solver.LabelSelector {
		return &solver.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	otherApp := func(id string) string {
		return rapid.SampledFrom([]string{name, "db", "cache", "d0", "d1", "d2"}).Draw(t, id)
	}
	topoKey := func(id string) string {
		return rapid.SampledFrom([]string{solver.LabelHostname, solver.LabelZone}).Draw(t, id)
	}
	switch rapid.IntRange(0, 9).Draw(t, name+"/nodeSelector") {
	case 6:
		tmpl.NodeSelector = map[string]string{solver.LabelArch: rapid.SampledFrom(propArches).Draw(t, name+"/ns/arch")}
	case 7:
		tmpl.NodeSelector = map[string]string{solver.LabelZone: rapid.SampledFrom(propZones).Draw(t, name+"/ns/zone")}
	case 8:
		tmpl.NodeSelector = map[string]string{solver.LabelCapacityType: rapid.SampledFrom(propCTs).Draw(t, name+"/ns/ct")}
	case 9:
		if len(g.teams) > 0 {
			tmpl.NodeSelector = map[string]string{labelTeam: rapid.SampledFrom(g.teams).Draw(t, name+"/ns/team")}
		}
	}
	if chance(t, name+"/affinity?", 4) {
		tmpl.RequiredNodeAffinity = genNodeAffinity(t, name+"/na", g)
	}
	switch rapid.IntRange(0, 4).Draw(t, name+"/tolerations") {
	case 3:
		tmpl.Tolerations = []solver.Toleration{{Operator: "Exists"}}
	case 4:
		tmpl.Tolerations = []solver.Toleration{{Key: "dedicated", Operator: "Equal",
			Value: rapid.SampledFrom(g.pools).Draw(t, name+"/tol/pool"), Effect: solver.EffectNoSchedule}}
	}
	if chance(t, name+"/anti?", 5) {
		tmpl.PodAntiAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: appSel(otherApp(name + "/anti/app")), TopologyKey: topoKey(name + "/anti/key")}}
	}
	if chance(t, name+"/aff?", 6) {
		tmpl.PodAffinity.Required = []solver.PodAffinityTerm{{
			LabelSelector: appSel(otherApp(name + "/aff/app")), TopologyKey: topoKey(name + "/aff/key")}}
	}
	if chance(t, name+"/spread?", 4) {
		c := solver.TopologySpreadConstraint{
			MaxSkew:           int32(rapid.IntRange(1, 2).Draw(t, name+"/spread/skew")),
			TopologyKey:       topoKey(name + "/spread/key"),
			WhenUnsatisfiable: solver.DoNotSchedule,
			LabelSelector:     appSel(name),
		}
		if chance(t, name+"/spread/anyway", 4) {
			c.WhenUnsatisfiable = solver.ScheduleAnyway
		}
		if chance(t, name+"/spread/minDomains?", 5) {
			c.MinDomains = int32(rapid.IntRange(2, 3).Draw(t, name+"/spread/minDomains"))
		}
		if chance(t, name+"/spread/taintsHonor", 5) {
			c.NodeTaintsPolicy = solver.PolicyHonor
		}
		if chance(t, name+"/spread/affinityIgnore", 7) {
			c.NodeAffinityPolicy = solver.PolicyIgnore
		}
		tmpl.TopologySpread = []solver.TopologySpreadConstraint{c}
	}
	if chance(t, name+"/hostPort?", 7) {
		tmpl.HostPorts = []solver.HostPort{{Port: 8080, Protocol: "TCP",
			HostIP: rapid.SampledFrom([]string{"", "10.0.0.1"}).Draw(t, name+"/hostIP")}}
	}
	if chance(t, name+"/volume?", 10) {
		tmpl.Volumes = []solver.VolumeTopology{{Name: name + "-data", Terms: []solver.NodeSelectorTerm{{Requirements: []solver.Requirement{
			{Key: solver.LabelZone, Operator: solver.OpIn, Values: []string{rapid.SampledFrom(propZones).Draw(t, name+"/volume/zone")}}}}}}}
	}
}

func genProblem(t *rapid.T, opts genOpts) *solver.Problem {
	g := &genState{p: &solver.Problem{}}
	g.p.InstanceTypes = genInstanceTypes(t)
	genNodePools(t, g, opts.plainOnly)
	if !opts.plainOnly {
		genDaemonSets(t, g)
		genExistingNodes(t, g, opts.consolidation)
		if !opts.consolidation {
			genInFlight(t, g)
		} else {
			genDisruptionLimits(t, g)
		}
	}
	if !opts.consolidation {
		genPods(t, g, opts.plainOnly)
	}
	return g.p
}

// dump renders a problem or plan as compact JSON for failure messages
// (pod references as "namespace/name").
func dump(v any) string {
	if cp, ok := v.(*solver.ConsolidationPlan); ok && cp != nil {
		type action struct {
			solver.ConsolidationAction
			Bindings map[string]string
		}
		out := struct {
			Actions []action
			Blocked []solver.BlockedCandidate
		}{Blocked: cp.Blocked}
		for _, a := range cp.Actions {
			b := map[string]string{}
			for k, v := range a.Bindings {
				b[k.String()] = v
			}
			out.Actions = append(out.Actions, action{ConsolidationAction: a, Bindings: b})
		}
		v = out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

func TestPropertySolvePlansAreValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genProblem(t, genOpts{})
		// Every strategy, whatever the time: the plan must not depend on speed.
		p.Options.ImproveRounds = 100
		plan, err := solver.Solve(context.Background(), p)
		if err != nil {
			t.Fatalf("Solve: %v\nproblem: %s", err, dump(p))
		}
		if verr := Plan(p, plan); verr != nil {
			t.Fatalf("invalid plan:\n%v\nproblem: %s\nplan: %s", verr, dump(p), dump(plan))
		}
		if plan.LowerBoundPerHour < 0 || plan.LowerBoundPerHour > plan.CostPerHour+1e-9 {
			t.Fatalf("lower bound %v exceeds the plan's cost %v\nproblem: %s\nplan: %s", plan.LowerBoundPerHour, plan.CostPerHour, dump(p), dump(plan))
		}
		for _, u := range plan.Unschedulable {
			if u.Reason == "" {
				t.Fatalf("pod %s reported unschedulable without a reason\nproblem: %s", u.Pod, dump(p))
			}
		}
		again, err := solver.Solve(context.Background(), p)
		if err != nil || !reflect.DeepEqual(plan, again) {
			t.Fatalf("Solve is not deterministic (err %v)\nfirst: %s\nsecond: %s\nproblem: %s", err, dump(plan), dump(again), dump(p))
		}
	})
}

// fitsAlone reports whether some instance type with an available offering
// that the NodePool allows could hold the pod by itself.
func fitsAlone(p *solver.Problem, pod *solver.Pod) bool {
	for i := range p.InstanceTypes {
		it := &p.InstanceTypes[i]
		available := false
		for _, o := range it.Offerings {
			available = available || o.Available
		}
		if available && fits(solver.Resources{}, it.Allocatable, pod.Requests) {
			return true
		}
	}
	return false
}

func TestPropertyPlainPodsArePlaced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genProblem(t, genOpts{plainOnly: true})
		plan, err := solver.Solve(context.Background(), p)
		if err != nil {
			t.Fatalf("Solve: %v\nproblem: %s", err, dump(p))
		}
		if verr := Plan(p, plan); verr != nil {
			t.Fatalf("invalid plan:\n%v\nproblem: %s\nplan: %s", verr, dump(p), dump(plan))
		}
		unschedulable := map[solver.PodRef]string{}
		for _, u := range plan.Unschedulable {
			unschedulable[u.Pod] = u.Reason
		}
		for _, pod := range p.Pods {
			reason, bad := unschedulable[pod.Ref()]
			if fitsAlone(p, pod) && bad {
				t.Fatalf("pod %s (requests %v) fits an instance type alone but is unschedulable: %s\nproblem: %s\nplan: %s",
					pod.Ref(), pod.Requests, reason, dump(p), dump(plan))
			}
		}
	})
}

// genDisruptionLimits adds PodDisruptionBudgets over the apps of the
// existing pods (now and then one selecting every pod, so some pods have
// two) and NodePool disruption allowances.
func genDisruptionLimits(t *rapid.T, g *genState) {
	for _, app := range []string{"db", "d0", "d1", "cache"} {
		if chance(t, "pdb/"+app+"?", 2) {
			g.p.PodDisruptionBudgets = append(g.p.PodDisruptionBudgets, solver.PodDisruptionBudget{
				Namespace: "default", Name: "pdb-" + app, DisruptionsAllowed: rapid.IntRange(0, 3).Draw(t, "pdb/"+app),
				Selector: &solver.LabelSelector{MatchLabels: map[string]string{"app": app}},
			})
		}
	}
	if chance(t, "pdb/all?", 8) {
		g.p.PodDisruptionBudgets = append(g.p.PodDisruptionBudgets, solver.PodDisruptionBudget{
			Namespace: "default", Name: "pdb-all", DisruptionsAllowed: rapid.IntRange(0, 5).Draw(t, "pdb/all"), Selector: &solver.LabelSelector{}})
	}
	for i := range g.p.NodePools {
		name := g.p.NodePools[i].Name
		if chance(t, "allowance/"+name+"?", 2) {
			if g.p.DisruptionAllowance == nil {
				g.p.DisruptionAllowance = map[string]int{}
			}
			g.p.DisruptionAllowance[name] = rapid.IntRange(0, 2).Draw(t, "allowance/"+name)
		}
	}
}

func TestPropertyConsolidationIsValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := genProblem(t, genOpts{consolidation: true})
		cp, err := solver.Consolidate(context.Background(), p)
		if err != nil {
			t.Fatalf("Consolidate: %v\nproblem: %s", err, dump(p))
		}
		if verr := Consolidation(p, cp); verr != nil {
			t.Fatalf("invalid consolidation:\n%v\nproblem: %s\nplan: %s", verr, dump(p), dump(cp))
		}
		checkEveryCandidateAccounted(t, p, cp)
	})
}

// checkEveryCandidateAccounted fails unless every node with a NodePool is
// removed by exactly one action or blocked with a reason and a kind, and
// PDB and budget blocks name their PDB or NodePool.
func checkEveryCandidateAccounted(t *rapid.T, p *solver.Problem, cp *solver.ConsolidationPlan) {
	seen := map[string]string{}
	for _, a := range cp.Actions {
		for _, n := range a.Nodes {
			seen[n] = "removed"
		}
	}
	for _, b := range cp.Blocked {
		if prev, dup := seen[b.Node]; dup {
			t.Fatalf("node %s both %s and blocked (%s)\nproblem: %s\nplan: %s", b.Node, prev, b.Reason, dump(p), dump(cp))
		}
		seen[b.Node] = "blocked"
		ok := b.Reason != "" && b.Kind != ""
		switch b.Kind {
		case solver.BlockedPDB:
			ok = ok && strings.Contains(b.Reason, "PodDisruptionBudget")
		case solver.BlockedBudget:
			ok = ok && strings.Contains(b.Reason, "NodePool ")
		case solver.BlockedDoNotDisrupt:
			ok = ok && strings.Contains(b.Reason, solver.AnnotationDoNotDisrupt)
		}
		if !ok {
			t.Fatalf("blocked node %s has kind %q and reason %q\nproblem: %s", b.Node, b.Kind, b.Reason, dump(p))
		}
	}
	for i := range p.Nodes {
		if nd := &p.Nodes[i]; nd.NodePool != "" && seen[nd.Name] == "" {
			t.Fatalf("candidate %s is neither removed nor blocked\nproblem: %s\nplan: %s", nd.Name, dump(p), dump(cp))
		}
	}
}
