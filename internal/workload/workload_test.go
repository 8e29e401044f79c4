package workload

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

func TestKarpenterMixCatalog(t *testing.T) {
	types := KarpenterMixCatalog()
	if len(types) != 400 {
		t.Fatalf("got %d types, want 400", len(types))
	}
	for i, it := range types {
		n := int64(i + 1)
		if want := "fake-it-" + strconv.Itoa(i); it.Name != want {
			t.Fatalf("type %d named %q, want %q", i, it.Name, want)
		}
		want := solver.Resources{solver.ResourceCPU: 1000 * n, solver.ResourceMemory: 2 * n << 30, solver.ResourcePods: 10 * n}
		if !reflect.DeepEqual(it.Capacity, want) || !reflect.DeepEqual(it.Allocatable, want) {
			t.Fatalf("%s: capacity %v allocatable %v, want %v", it.Name, it.Capacity, it.Allocatable, want)
		}
		if it.Labels[solver.LabelArch] != "amd64" || it.Labels[solver.LabelOS] != "linux" || it.Labels[solver.LabelInstanceType] != it.Name {
			t.Fatalf("%s: labels %v", it.Name, it.Labels)
		}
		price := 0.1*float64(n) + 0.1*float64(2*n<<30)/1e9
		got := map[string]int{}
		for _, o := range it.Offerings {
			if !o.Available || math.Abs(o.PricePerHour-price) > 1e-12 {
				t.Fatalf("%s: offering %+v, want available at %v", it.Name, o, price)
			}
			got[o.CapacityType+"/"+o.Zone]++
		}
		want2 := map[string]int{
			"spot/test-zone-1": 1, "spot/test-zone-2": 1,
			"on-demand/test-zone-1": 1, "on-demand/test-zone-2": 1, "on-demand/test-zone-3": 1,
		}
		if !reflect.DeepEqual(got, want2) {
			t.Fatalf("%s: offerings %v, want %v", it.Name, got, want2)
		}
	}
	// fake-it-0: 1 vCPU and 2 GiB = 2.147483648 GB: $0.1 + $0.2147483648.
	if p := types[0].Offerings[0].PricePerHour; math.Abs(p-0.3147483648) > 1e-12 {
		t.Fatalf("fake-it-0 price %v", p)
	}
}

func TestKarpenterMixShares(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000, 1003} {
		p := KarpenterMix(n, 42)
		if len(p.Pods) != n {
			t.Fatalf("n=%d: got %d pods", n, len(p.Pods))
		}
		if len(p.NodePools) != 1 || p.NodePools[0].Name != "default" || len(p.NodePools[0].Requirements) != 0 {
			t.Fatalf("n=%d: NodePools %+v", n, p.NodePools)
		}
		if len(p.InstanceTypes) != 400 || len(p.Nodes) != 0 || len(p.NodeClaims) != 0 {
			t.Fatalf("n=%d: %d types, %d nodes, %d claims", n, len(p.InstanceTypes), len(p.Nodes), len(p.NodeClaims))
		}
		count := map[string]int{}
		names := map[string]bool{}
		for _, pod := range p.Pods {
			if pod.Namespace != "default" || names[pod.Name] {
				t.Fatalf("pod %s/%s: bad namespace or duplicate name", pod.Namespace, pod.Name)
			}
			names[pod.Name] = true
			share := pod.Labels[LabelWorkload]
			count[share]++
			checkMixPod(t, share, pod)
		}
		for i, s := range Shares {
			want := n / 5
			if i == 0 {
				want += n % 5
			}
			if count[s] != want {
				t.Fatalf("n=%d: share %s has %d pods, want %d", n, s, count[s], want)
			}
		}
	}
}

func checkMixPod(t *testing.T, share string, p *solver.Pod) {
	t.Helper()
	cpu, mem := p.Requests[solver.ResourceCPU], p.Requests[solver.ResourceMemory]
	if !containsInt([]int64{100, 250, 500, 1000, 1500}, cpu) || !containsInt([]int64{100 << 20, 256 << 20, 512 << 20, 1 << 30, 2 << 30, 4 << 30}, mem) || len(p.Requests) != 2 {
		t.Fatalf("%s: requests %v", p.Name, p.Requests)
	}
	if !strings.HasPrefix(p.Name, share+"-") {
		t.Fatalf("%s: not named after share %s", p.Name, share)
	}
	hasSpread, hasAff, hasAnti := len(p.TopologySpread) > 0, len(p.PodAffinity.Required) > 0, len(p.PodAntiAffinity.Required) > 0
	switch share {
	case SharePlain:
		if hasSpread || hasAff || hasAnti {
			t.Fatalf("%s: plain pod has constraints", p.Name)
		}
	case ShareZonalSpread, ShareHostnameSpread:
		key := solver.LabelZone
		if share == ShareHostnameSpread {
			key = solver.LabelHostname
		}
		if len(p.TopologySpread) != 1 || hasAff || hasAnti {
			t.Fatalf("%s: constraints %+v", p.Name, p)
		}
		c := p.TopologySpread[0]
		if c.MaxSkew != 1 || c.TopologyKey != key || c.WhenUnsatisfiable != solver.DoNotSchedule || !c.Selects(p, p) {
			t.Fatalf("%s: spread %+v", p.Name, c)
		}
	case ShareZonalAffinity:
		if len(p.PodAffinity.Required) != 1 || hasSpread || hasAnti {
			t.Fatalf("%s: constraints %+v", p.Name, p)
		}
		term := p.PodAffinity.Required[0]
		if term.TopologyKey != solver.LabelZone || !term.Selects(p, p, nil) || !containsStr(AffinityValues, p.Labels[LabelAffinity]) {
			t.Fatalf("%s: affinity %+v labels %v", p.Name, term, p.Labels)
		}
	case ShareAntiAffinity:
		if len(p.PodAntiAffinity.Required) != 1 || hasSpread || hasAff || p.Labels["app"] != "nginx" {
			t.Fatalf("%s: constraints %+v", p.Name, p)
		}
		term := p.PodAntiAffinity.Required[0]
		if term.TopologyKey != solver.LabelHostname || !term.Selects(p, p, nil) {
			t.Fatalf("%s: anti-affinity %+v", p.Name, term)
		}
	default:
		t.Fatalf("%s: unknown share %q", p.Name, share)
	}
}

func containsInt(xs []int64, v int64) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func containsStr(xs []string, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func TestKarpenterMixSeed(t *testing.T) {
	a, b, c := KarpenterMix(500, 1), KarpenterMix(500, 1), KarpenterMix(500, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different problems")
	}
	if reflect.DeepEqual(a.Pods, c.Pods) {
		t.Fatal("different seeds gave the same pods")
	}
	// The draws are spread over the choices.
	values := map[string]int{}
	cpus := map[int64]int{}
	for _, p := range a.Pods {
		if v, ok := p.Labels[LabelAffinity]; ok {
			values[v]++
		}
		cpus[p.Requests[solver.ResourceCPU]]++
	}
	if len(values) != len(AffinityValues) || len(cpus) != 5 {
		t.Fatalf("affinity values %v, cpus %v", values, cpus)
	}
}

func TestMixPrice(t *testing.T) {
	if got := MixPrice(4000, 8e9); math.Abs(got-1.2) > 1e-12 {
		t.Fatalf("MixPrice(4 vCPU, 8 GB) = %v, want 1.2", got)
	}
}

func sharedData(t testing.TB) string {
	t.Helper()
	dir, ok := FindSharedData()
	if !ok {
		t.Skip("shared/data not found above the working directory (expected ../shared/data beside the repository); skipping trace test")
	}
	return dir
}

func TestTrace(t *testing.T) {
	p, err := Trace(sharedData(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Pods) != 8152 {
		t.Fatalf("got %d pods, want 8152", len(p.Pods))
	}
	if len(p.InstanceTypes) != 1101 {
		t.Fatalf("got %d instance types, want 1101", len(p.InstanceTypes))
	}
	if len(p.NodePools) != 1 || len(p.NodePools[0].Requirements) != 0 {
		t.Fatalf("NodePools %+v", p.NodePools)
	}
	first := p.Pods[0]
	want := solver.Resources{solver.ResourceCPU: 12000, solver.ResourceMemory: 16384 << 20, ResourceNVIDIAGPU: 1}
	if first.Name != "openb-pod-0000" || !reflect.DeepEqual(first.Requests, want) {
		t.Fatalf("first pod %+v", first)
	}
	gpuPods, names := 0, map[string]bool{}
	for _, pod := range p.Pods {
		if names[pod.Name] {
			t.Fatalf("duplicate pod %s", pod.Name)
		}
		names[pod.Name] = true
		if _, ok := pod.Requests[ResourceNVIDIAGPU]; ok {
			gpuPods++
		}
	}
	if gpuPods != 8152-1088 {
		t.Fatalf("%d GPU pods, want %d", gpuPods, 8152-1088)
	}
	byName := map[string]solver.InstanceType{}
	for _, it := range p.InstanceTypes {
		byName[it.Name] = it
	}
	checks := []struct {
		name string
		want solver.Resources
		arch string
	}{
		{"m5.large", solver.Resources{"cpu": 2000, "memory": 8192 << 20, "pods": 29}, "amd64"},
		{"a1.4xlarge", solver.Resources{"cpu": 16000, "memory": 32768 << 20, "pods": 110}, "arm64"}, // 234 capped at 110
		{"g4ad.xlarge", nil, "amd64"},
		{"dl1.24xlarge", nil, "amd64"},
		{"p3.16xlarge", nil, "amd64"},
	}
	for _, c := range checks {
		it, ok := byName[c.name]
		if !ok {
			t.Fatalf("no type %s", c.name)
		}
		if c.want != nil && !reflect.DeepEqual(it.Capacity, c.want) {
			t.Fatalf("%s: capacity %v, want %v", c.name, it.Capacity, c.want)
		}
		if !reflect.DeepEqual(it.Capacity, it.Allocatable) || it.Labels[solver.LabelArch] != c.arch {
			t.Fatalf("%s: allocatable %v labels %v", c.name, it.Allocatable, it.Labels)
		}
		if len(it.Offerings) != 3 {
			t.Fatalf("%s: offerings %+v", c.name, it.Offerings)
		}
		for i, o := range it.Offerings {
			if o.Zone != TraceZones[i] || o.CapacityType != solver.CapacityTypeOnDemand || !o.Available || o.PricePerHour <= 0 {
				t.Fatalf("%s: offering %+v", c.name, o)
			}
		}
	}
	if m5 := byName["m5.large"]; m5.Offerings[0].PricePerHour != 0.096 {
		t.Fatalf("m5.large price %v", m5.Offerings[0].PricePerHour)
	}
	if byName["g4ad.xlarge"].Capacity["amd.com/gpu"] != 1 || byName["dl1.24xlarge"].Capacity["habana.ai/gaudi"] != 8 ||
		byName["p3.16xlarge"].Capacity[ResourceNVIDIAGPU] != 8 {
		t.Fatalf("GPU resources: g4ad %v dl1 %v p3 %v", byName["g4ad.xlarge"].Capacity, byName["dl1.24xlarge"].Capacity, byName["p3.16xlarge"].Capacity)
	}
	for _, it := range p.InstanceTypes {
		limit := int64(110)
		if it.Capacity["cpu"] > 30000 {
			limit = 250
		}
		if it.Capacity["pods"] > limit || it.Capacity["pods"] <= 0 {
			t.Fatalf("%s: pods %d over cap %d", it.Name, it.Capacity["pods"], limit)
		}
	}
}

func TestTraceMissing(t *testing.T) {
	if _, err := Trace(t.TempDir()); err == nil {
		t.Fatal("Trace on an empty directory succeeded")
	}
}
