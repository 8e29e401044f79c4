package instancetype

import (
	"errors"
	"testing"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

var m5large = Info{Name: "m5.large", VCPU: 2, MemoryMiB: 8192, Arch: "amd64", ENIs: 3, IPv4PerENI: 10, Hypervisor: "nitro"}

func TestConvertMatchesKarpenter(t *testing.T) {
	it, err := Convert(m5large, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Karpenter's m5.large: 29 pods, 7577Mi capacity, 1930m/6903Mi/17Gi allocatable.
	want := map[string]string{"cpu": "2", "memory": "7577Mi", "pods": "29", "ephemeral-storage": "20Gi"}
	for k, v := range want {
		if it.Capacity[k] != v {
			t.Errorf("capacity %s = %s, want %s", k, it.Capacity[k], v)
		}
	}
	wantAlloc := map[string]string{"cpu": "1930m", "memory": "6903Mi", "pods": "29", "ephemeral-storage": "17Gi"}
	for k, v := range wantAlloc {
		if it.Allocatable[k] != v {
			t.Errorf("allocatable %s = %s, want %s", k, it.Allocatable[k], v)
		}
	}
	labels := map[string]string{
		LabelInstanceType: "m5.large", LabelArch: "amd64", LabelOS: "linux", LabelFamily: "m5", LabelSize: "large",
		LabelCategory: "m", LabelGeneration: "5", LabelCPU: "2", LabelMemory: "8192", LabelHypervisor: "nitro",
	}
	for k, v := range labels {
		if it.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, it.Labels[k], v)
		}
	}
	if _, ok := it.Labels[LabelGPUCount]; ok {
		t.Error("gpu-count label on a type without GPUs")
	}
}

func TestKubeletOverrides(t *testing.T) {
	k := &launcherv1.KubeletConfiguration{
		MaxPods:        110,
		KubeReserved:   map[string]string{"cpu": "200m"},
		SystemReserved: map[string]string{"memory": "100Mi"},
		EvictionHard:   map[string]string{"memory.available": "5%", "nodefs.available": "1Gi"},
	}
	it, err := Convert(m5large, nil, k, 0)
	if err != nil {
		t.Fatal(err)
	}
	// memory: 7577Mi − (11×110+255)Mi − 100Mi − ceil(5% of 7577Mi).
	capBytes := int64(7577) << 20
	evict := (capBytes*5 + 99) / 100
	wantMem := capBytes - (11*110+255)<<20 - 100<<20 - evict
	checks := map[string]string{"pods": "110", "cpu": "1800m", "ephemeral-storage": "18Gi"}
	for r, v := range checks {
		if it.Allocatable[r] != v {
			t.Errorf("allocatable %s = %s, want %s", r, it.Allocatable[r], v)
		}
	}
	alloc, _ := Allocatable(Capacity(m5large, 110, 0), k)
	if got := alloc["memory"].Value(); got != wantMem {
		t.Errorf("allocatable memory %d, want %d", got, wantMem)
	}
}

func TestGPULabelsAndResources(t *testing.T) {
	g := Info{Name: "g4dn.xlarge", VCPU: 4, MemoryMiB: 16384, Arch: "amd64", GPUs: 1, GPUName: "t4", GPUMaker: "nvidia", ENIs: 3, IPv4PerENI: 10}
	it, err := Convert(g, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if it.Capacity["nvidia.com/gpu"] != "1" || it.Allocatable["nvidia.com/gpu"] != "1" {
		t.Errorf("gpu capacity %v allocatable %v", it.Capacity, it.Allocatable)
	}
	if it.Labels[LabelGPUName] != "t4" || it.Labels[LabelGPUManufacturer] != "nvidia" || it.Labels[LabelGPUCount] != "1" {
		t.Errorf("gpu labels %v", it.Labels)
	}
	h := Info{Name: "dl1.24xlarge", VCPU: 96, MemoryMiB: 786432, Arch: "amd64", GPUs: 8, GPUMaker: "habana", ENIs: 60, IPv4PerENI: 50}
	if h.GPUResource() != "habana.ai/gaudi" {
		t.Errorf("habana resource %q", h.GPUResource())
	}
}

func TestBadKubeletIsInvalidArgument(t *testing.T) {
	_, err := Convert(m5large, nil, &launcherv1.KubeletConfiguration{KubeReserved: map[string]string{"memory": "lots"}}, 0)
	if !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Fatalf("err %v, want invalid argument", err)
	}
}

func TestArm64MemoryLessCMA(t *testing.T) {
	g := Info{Name: "m6g.large", VCPU: 2, MemoryMiB: 8192, Arch: "arm64", ENIs: 3, IPv4PerENI: 10, Hypervisor: "nitro"}
	it, err := Convert(g, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Karpenter's m6g.large: (8192−64) − ceil(7.5% of 8128) = 7518Mi capacity, 6844Mi allocatable.
	if it.Capacity["memory"] != "7518Mi" || it.Allocatable["memory"] != "6844Mi" {
		t.Errorf("memory capacity %s allocatable %s, want 7518Mi and 6844Mi", it.Capacity["memory"], it.Allocatable["memory"])
	}
}

func TestGPUNameSanitizedAndDefaultCardPods(t *testing.T) {
	g := Info{Name: "g4ad.xlarge", VCPU: 4, MemoryMiB: 16384, Arch: "amd64", GPUs: 1, GPUName: "Radeon Pro V520", GPUMaker: "AMD", GPUMemoryMiB: 8192, ENIs: 2, IPv4PerENI: 8}
	if l := g.Labels(); l[LabelGPUName] != "radeon-pro-v520" || l[LabelGPUManufacturer] != "amd" || l[LabelGPUMemory] != "8192" {
		t.Errorf("gpu labels %v", l)
	}
	p := Info{Name: "p4d.24xlarge", VCPU: 96, MemoryMiB: 1179648, Arch: "amd64", ENIs: 60, DefaultCardENIs: 15, IPv4PerENI: 50, EFAs: 4, BranchENIs: 62}
	it, err := Convert(p, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Karpenter's p4d.24xlarge: 737 pods (15 of the 60 interfaces on the default card), 4 EFA, 62 branch ENIs.
	for r, v := range map[string]string{"pods": "737", ResourceEFA: "4", ResourcePodENI: "62"} {
		if it.Allocatable[r] != v {
			t.Errorf("allocatable %s = %s, want %s", r, it.Allocatable[r], v)
		}
	}
}

// podsPerCore caps pod capacity at that many per vCPU, below maxPods or
// the ENI limit.
func TestMaxPodsPodsPerCore(t *testing.T) {
	m5xl := Info{Name: "m5.xlarge", VCPU: 4, ENIs: 4, IPv4PerENI: 15}
	four := int32(4)
	for _, c := range []struct {
		k    *launcherv1.KubeletConfiguration
		want int64
	}{
		{nil, 58},
		{&launcherv1.KubeletConfiguration{MaxPods: 110}, 110},
		{&launcherv1.KubeletConfiguration{PodsPerCore: &four}, 16},
		{&launcherv1.KubeletConfiguration{MaxPods: 10, PodsPerCore: &four}, 10},
	} {
		if got := MaxPods(m5xl, c.k); got != c.want {
			t.Errorf("MaxPods(%v) = %d, want %d", c.k, got, c.want)
		}
	}
}
