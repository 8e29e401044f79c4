package workload

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Karpenter's fake instance types reserve 100m CPU and 10Mi per node and
// are priced on their capacity.
func TestKarpenterBenchmarkCatalog(t *testing.T) {
	for _, n := range []int{KarpenterMixInstanceTypes, BenchSyntheticInstanceTypes} {
		types, plain := KarpenterBenchmarkCatalogN(n), KarpenterMixCatalogN(n)
		if len(types) != n {
			t.Fatalf("got %d types, want %d", len(types), n)
		}
		for i, it := range types {
			want := plain[i]
			if it.Name != want.Name || !reflect.DeepEqual(it.Capacity, want.Capacity) ||
				!reflect.DeepEqual(it.Offerings, want.Offerings) || !reflect.DeepEqual(it.Labels, want.Labels) {
				t.Fatalf("type %d: %+v differs from KarpenterMixCatalogN's %+v beyond allocatable", i, it, want)
			}
			c := it.Capacity
			wantAlloc := solver.Resources{
				solver.ResourceCPU:    c[solver.ResourceCPU] - 100,
				solver.ResourceMemory: c[solver.ResourceMemory] - 10<<20,
				solver.ResourcePods:   c[solver.ResourcePods],
			}
			if !reflect.DeepEqual(it.Allocatable, wantAlloc) {
				t.Fatalf("%s: allocatable %v, want %v (capacity %v)", it.Name, it.Allocatable, wantAlloc, c)
			}
			for _, o := range it.Offerings {
				if math.Abs(o.PricePerHour-MixPrice(c[solver.ResourceCPU], c[solver.ResourceMemory])) > 1e-12 {
					t.Fatalf("%s: price %v not that of the capacity", it.Name, o.PricePerHour)
				}
			}
		}
	}
	// fake-it-0: 1 vCPU, 2Gi: 900m and 2038Mi allocatable, $0.3147483648/h.
	it := KarpenterBenchmarkCatalog()[0]
	if it.Name != "fake-it-0" || it.Allocatable[solver.ResourceCPU] != 900 || it.Allocatable[solver.ResourceMemory] != 2038<<20 ||
		math.Abs(it.Offerings[0].PricePerHour-0.3147483648) > 1e-12 {
		t.Fatalf("fake-it-0: %+v", it)
	}
}

// benchmarkKind is the kind of a KarpenterBenchmarkMix pod, from its name.
func benchmarkKind(t *testing.T, p *solver.Pod) string {
	t.Helper()
	for _, k := range Shares {
		if rest, ok := strings.CutPrefix(p.Name, k+"-"); ok && !strings.ContainsRune(rest, '-') {
			return k
		}
	}
	t.Fatalf("pod %s: no kind", p.Name)
	return ""
}

func TestKarpenterBenchmarkMixKinds(t *testing.T) {
	for _, n := range []int{0, 1, 4, 7, 1000, 1003} {
		p := KarpenterBenchmarkMix(n, DefaultBenchSeed)
		if len(p.Pods) != n || len(p.InstanceTypes) != 400 || len(p.Nodes) != 0 || len(p.NodeClaims) != 0 {
			t.Fatalf("n=%d: %d pods, %d types, %d nodes, %d claims", n, len(p.Pods), len(p.InstanceTypes), len(p.Nodes), len(p.NodeClaims))
		}
		np := p.NodePools
		if len(np) != 1 || np[0].Name != "default" || len(np[0].Requirements) != 0 ||
			np[0].Limits[solver.ResourceCPU] != 1e10 || np[0].Limits[solver.ResourceMemory] != 10_000_000<<30 {
			t.Fatalf("n=%d: NodePools %+v", n, np)
		}
		// Karpenter's order: n/5 of each kind, then the remainder as
		// plain pods.
		per := n / 5
		var want []string
		for _, k := range Shares {
			for i := 0; i < per; i++ {
				want = append(want, k)
			}
		}
		for len(want) < n {
			want = append(want, SharePlain)
		}
		names := map[string]bool{}
		for i, pod := range p.Pods {
			if k := benchmarkKind(t, pod); k != want[i] {
				t.Fatalf("n=%d: pod %d is %s (%s), want %s", n, i, k, pod.Name, want[i])
			}
			if names[pod.Name] {
				t.Fatalf("n=%d: duplicate name %s", n, pod.Name)
			}
			names[pod.Name] = true
			checkBenchmarkPod(t, want[i], pod)
		}
	}
}

func checkBenchmarkPod(t *testing.T, kind string, p *solver.Pod) {
	t.Helper()
	cpu, mem := p.Requests[solver.ResourceCPU], p.Requests[solver.ResourceMemory]
	if !containsInt([]int64{100, 250, 500, 1000, 1500}, cpu) || !containsInt([]int64{100 << 20, 256 << 20, 512 << 20, 1 << 30, 2 << 30, 4 << 30}, mem) || len(p.Requests) != 2 {
		t.Fatalf("%s: requests %v", p.Name, p.Requests)
	}
	if p.Namespace != "default" || p.Owner != "" || p.DaemonSet || p.Labels[LabelDiscovery] != "unspecified" {
		t.Fatalf("%s: namespace %q owner %q labels %v: want a bare pod in default", p.Name, p.Namespace, p.Owner, p.Labels)
	}
	nSpread, nAff, nAnti := len(p.TopologySpread), len(p.PodAffinity.Required), len(p.PodAntiAffinity.Required)
	if len(p.Labels) != 2 || len(p.NodeSelector) != 0 || len(p.RequiredNodeAffinity) != 0 || len(p.Tolerations) != 0 ||
		len(p.PodAffinity.Preferred) != 0 || len(p.PodAntiAffinity.Preferred) != 0 {
		t.Fatalf("%s: unexpected labels or constraints %+v", p.Name, p)
	}
	switch kind {
	case SharePlain:
		if nSpread+nAff+nAnti != 0 || !containsStr(BenchmarkLabelValues, p.Labels[LabelMyLabel]) {
			t.Fatalf("%s: plain pod %+v", p.Name, p)
		}
	case ShareZonalSpread, ShareHostnameSpread:
		key := solver.LabelZone
		if kind == ShareHostnameSpread {
			key = solver.LabelHostname
		}
		if nSpread != 1 || nAff+nAnti != 0 || !containsStr(BenchmarkLabelValues, p.Labels[LabelMyLabel]) {
			t.Fatalf("%s: spread pod %+v", p.Name, p)
		}
		c := p.TopologySpread[0]
		sel := c.LabelSelector
		if c.MaxSkew != 1 || c.TopologyKey != key || c.WhenUnsatisfiable != solver.DoNotSchedule || sel == nil ||
			len(sel.MatchLabels) != 1 || len(sel.MatchExpressions) != 0 || !containsStr(BenchmarkLabelValues, sel.MatchLabels[LabelMyLabel]) {
			t.Fatalf("%s: spread %+v", p.Name, c)
		}
	case ShareZonalAffinity:
		v := p.Labels[LabelMyAffininity]
		if nAff != 1 || nSpread+nAnti != 0 || !containsStr(BenchmarkLabelValues, v) {
			t.Fatalf("%s: affinity pod %+v", p.Name, p)
		}
		term := p.PodAffinity.Required[0]
		if term.TopologyKey != solver.LabelZone || !reflect.DeepEqual(term.LabelSelector.MatchLabels, map[string]string{"my-affininity": v}) {
			t.Fatalf("%s: affinity %+v", p.Name, term)
		}
	case ShareAntiAffinity:
		if nAnti != 1 || nSpread+nAff != 0 || p.Labels["app"] != "nginx" {
			t.Fatalf("%s: anti-affinity pod %+v", p.Name, p)
		}
		term := p.PodAntiAffinity.Required[0]
		if term.TopologyKey != solver.LabelHostname || !reflect.DeepEqual(term.LabelSelector.MatchLabels, map[string]string{"app": "nginx"}) {
			t.Fatalf("%s: anti-affinity %+v", p.Name, term)
		}
	}
}

// The spread pods' labels and selectors are drawn independently from 7
// values: about one spread pod in 7 matches its own selector (Karpenter's
// mix-1000 has 48 of 400), and each selector matches plain pods too.
func TestKarpenterBenchmarkMixSelectorsOverlap(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, DefaultBenchSeed, 7777} {
		p := KarpenterBenchmarkMix(1000, seed)
		spread, self := 0, 0
		var plain []*solver.Pod
		for _, pod := range p.Pods {
			if len(pod.TopologySpread) == 0 && len(pod.PodAffinity.Required) == 0 && len(pod.PodAntiAffinity.Required) == 0 {
				plain = append(plain, pod)
			}
		}
		for _, pod := range p.Pods {
			if len(pod.TopologySpread) == 0 {
				continue
			}
			spread++
			sel := pod.TopologySpread[0].LabelSelector
			if sel.Matches(pod.Labels) {
				self++
			}
			matchesPlain := false
			for _, q := range plain {
				matchesPlain = matchesPlain || sel.Matches(q.Labels)
			}
			if !matchesPlain {
				t.Fatalf("seed %d: %s's selector %v matches no plain pod", seed, pod.Name, sel.MatchLabels)
			}
		}
		// Binomial(400, 1/7): mean 57, sd 7; [30, 85] is about 4 sd.
		if spread != 400 || self < 30 || self > 85 {
			t.Fatalf("seed %d: %d of %d spread pods match their own selector, want 30..85 of 400", seed, self, spread)
		}
		// Seed 42 draws in Karpenter's order from the generator its
		// benchmark seeds with 42; issue 17 counted 48 on Karpenter's
		// own karpenter-mix-1000 pods.
		if seed == DefaultBenchSeed && self != 48 {
			t.Fatalf("seed 42: %d spread pods match their own selector, want Karpenter's 48", self)
		}
		t.Logf("seed %d: %d of %d spread pods match their own selector", seed, self, spread)
	}
}

// The zonal-affinity pods use all 7 values under the misspelt key, and
// the draws cover every choice.
func TestKarpenterBenchmarkMixDraws(t *testing.T) {
	a, b, c := KarpenterBenchmarkMix(1000, 1), KarpenterBenchmarkMix(1000, 1), KarpenterBenchmarkMix(1000, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different problems")
	}
	if reflect.DeepEqual(a.Pods, c.Pods) {
		t.Fatal("different seeds gave the same pods")
	}
	affinity, myLabel, selector := map[string]int{}, map[string]int{}, map[string]int{}
	cpus, mems := map[int64]int{}, map[int64]int{}
	for _, p := range a.Pods {
		if v, ok := p.Labels[LabelMyAffininity]; ok {
			affinity[v]++
		}
		if _, ok := p.Labels["my-affinity"]; ok {
			t.Fatalf("%s: labelled with the correctly spelt key", p.Name)
		}
		if v, ok := p.Labels[LabelMyLabel]; ok {
			myLabel[v]++
		}
		if len(p.TopologySpread) > 0 {
			selector[p.TopologySpread[0].LabelSelector.MatchLabels[LabelMyLabel]]++
		}
		cpus[p.Requests[solver.ResourceCPU]]++
		mems[p.Requests[solver.ResourceMemory]]++
	}
	if len(BenchmarkLabelValues) != 7 || len(affinity) != 7 || len(myLabel) != 7 || len(selector) != 7 || len(cpus) != 5 || len(mems) != 6 {
		t.Fatalf("values drawn: affinity %v, my-label %v, selectors %v, cpus %v, memory %v", affinity, myLabel, selector, cpus, mems)
	}
	// 200 affinity pods over 7 values: no value is far from 28.6.
	for v, k := range affinity {
		if k < 10 || k > 50 {
			t.Fatalf("affinity value %s drawn %d times of 200", v, k)
		}
	}
}
