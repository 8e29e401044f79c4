package instancetype

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Overhead defaults, as Karpenter's on EKS.
const (
	// VMMemoryOverheadPercent is the share of memory the hypervisor keeps.
	VMMemoryOverheadPercent = 0.075
	// GravitonCMAMiB is the memory arm64 (Graviton) types reserve for the
	// contiguous memory allocator, unusable by pods; Karpenter subtracts it
	// before the VM overhead.
	GravitonCMAMiB = 64
	// DefaultRootVolumeGi is the root volume size, the node's ephemeral storage.
	DefaultRootVolumeGi = 20
	mi                  = int64(1) << 20
	gi                  = int64(1) << 30
)

// Capacity is the machine's capacity as Kubernetes sees it: memory less
// the Graviton CMA reservation on arm64 and the VM overhead, pods from maxPods (or the ENI limit), ephemeral storage
// from the root volume of rootGi GiB (DefaultRootVolumeGi when not
// positive), GPUs, Neuron devices and cores, EFA interfaces and branch
// interfaces (vpc.amazonaws.com/pod-eni).
func Capacity(i Info, maxPods, rootGi int64) map[string]*resource.Quantity {
	if rootGi <= 0 {
		rootGi = DefaultRootVolumeGi
	}
	memMiB := i.MemoryMiB
	if i.Arch == "arm64" {
		memMiB -= GravitonCMAMiB
	}
	memMiB -= int64(math.Ceil(float64(memMiB) * VMMemoryOverheadPercent))
	c := map[string]*resource.Quantity{
		"cpu":               resource.NewQuantity(i.VCPU, resource.DecimalSI),
		"memory":            resource.NewQuantity(memMiB*mi, resource.BinarySI),
		"pods":              resource.NewQuantity(maxPods, resource.DecimalSI),
		"ephemeral-storage": resource.NewQuantity(rootGi*gi, resource.BinarySI),
	}
	if r := i.GPUResource(); r != "" {
		c[r] = resource.NewQuantity(i.GPUs, resource.DecimalSI)
	}
	for name, n := range map[string]int64{
		ResourceNeuron: i.NeuronDevices, ResourceNeuronCore: i.NeuronCores, ResourceEFA: i.EFAs, ResourcePodENI: i.BranchENIs,
	} {
		if n > 0 {
			c[name] = resource.NewQuantity(n, resource.DecimalSI)
		}
	}
	return c
}

// MaxPods is kubelet.maxPods when set, else the ENI limit, capped by
// kubelet.podsPerCore.
func MaxPods(i Info, k *launcherv1.KubeletConfiguration) int64 {
	n := i.MaxPodsENI()
	if k.GetMaxPods() > 0 {
		n = int64(k.GetMaxPods())
	}
	// kubelet.podsPerCore caps pods at that many per vCPU (Karpenter
	// applies the same cap when it computes pod capacity). Bottlerocket has
	// no such setting, so there the cap only makes planning conservative.
	if ppc := int64(k.GetPodsPerCore()); ppc > 0 && i.VCPU > 0 {
		n = min(n, ppc*i.VCPU)
	}
	return n
}

// kubeReservedCPU is Karpenter's EKS formula in millicores: 6% of the first
// core, 1% of the second, 0.5% of the third and fourth, 0.25% above.
func kubeReservedCPU(milli int64) int64 {
	ranges := []struct {
		start, end int64
		pct        float64
	}{{0, 1000, 0.06}, {1000, 2000, 0.01}, {2000, 4000, 0.005}, {4000, math.MaxInt64, 0.0025}}
	var r float64
	for _, rg := range ranges {
		if milli <= rg.start {
			break
		}
		r += float64(min(milli, rg.end)-rg.start) * rg.pct
	}
	return int64(r)
}

// KubeReserved is the default kube-reserved (cpu formula, 11Mi×pods+255Mi
// memory, 1Gi ephemeral storage) with the node class's values replacing
// defaults key by key.
func KubeReserved(cpuMilli, maxPods int64, k *launcherv1.KubeletConfiguration) (map[string]*resource.Quantity, error) {
	r := map[string]*resource.Quantity{
		"cpu":               resource.NewMilliQuantity(kubeReservedCPU(cpuMilli), resource.DecimalSI),
		"memory":            resource.NewQuantity((11*maxPods+255)*mi, resource.BinarySI),
		"ephemeral-storage": resource.NewQuantity(gi, resource.BinarySI),
	}
	return r, overlay(r, k.GetKubeReserved(), "node_class.kubelet.kube_reserved")
}

// SystemReserved is the node class's system-reserved (none by default).
func SystemReserved(k *launcherv1.KubeletConfiguration) (map[string]*resource.Quantity, error) {
	r := map[string]*resource.Quantity{}
	return r, overlay(r, k.GetSystemReserved(), "node_class.kubelet.system_reserved")
}

func overlay(dst map[string]*resource.Quantity, src map[string]string, field string) error {
	for _, key := range sortedKeys(src) {
		q, err := resource.ParseQuantity(src[key])
		if err != nil || q.Sign() < 0 {
			return fmt.Errorf("%w: %s[%q]: %q is not a non-negative quantity", apierr.ErrInvalidArgument, field, key, src[key])
		}
		dst[key] = &q
	}
	return nil
}

// Eviction returns the hard-eviction reservations: memory.available (100Mi
// by default) against memory and nodefs.available (10% by default) against
// ephemeral storage; a value may be a quantity or a percentage of capacity.
func Eviction(capacity map[string]*resource.Quantity, k *launcherv1.KubeletConfiguration) (map[string]*resource.Quantity, error) {
	signals := map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"}
	for s, v := range k.GetEvictionHard() {
		signals[s] = v
	}
	out := map[string]*resource.Quantity{}
	for signal, res := range map[string]string{"memory.available": "memory", "nodefs.available": "ephemeral-storage"} {
		q, err := threshold(signals[signal], capacity[res])
		if err != nil {
			return nil, fmt.Errorf("%w: node_class.kubelet.eviction_hard[%q]: %w", apierr.ErrInvalidArgument, signal, err)
		}
		out[res] = q
	}
	return out, nil
}

func threshold(v string, capacity *resource.Quantity) (*resource.Quantity, error) {
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		var p float64
		if _, err := fmt.Sscanf(pct, "%g", &p); err != nil || p < 0 || p > 100 {
			return nil, fmt.Errorf("%q is not a percentage", v)
		}
		return resource.NewQuantity(int64(math.Ceil(float64(capacity.Value())*p/100)), resource.BinarySI), nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		return nil, fmt.Errorf("%q is not a non-negative quantity", v)
	}
	return &q, nil
}

// Allocatable is capacity minus kube-reserved, system-reserved and eviction
// thresholds, floored at zero.
func Allocatable(capacity map[string]*resource.Quantity, k *launcherv1.KubeletConfiguration) (map[string]*resource.Quantity, error) {
	kube, err := KubeReserved(capacity["cpu"].MilliValue(), capacity["pods"].Value(), k)
	if err != nil {
		return nil, err
	}
	sys, err := SystemReserved(k)
	if err != nil {
		return nil, err
	}
	evict, err := Eviction(capacity, k)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*resource.Quantity, len(capacity))
	for name, c := range capacity {
		a := c.DeepCopy()
		for _, minus := range []map[string]*resource.Quantity{kube, sys, evict} {
			if q, ok := minus[name]; ok {
				a.Sub(*q)
			}
		}
		if a.Sign() < 0 {
			a = *resource.NewQuantity(0, c.Format)
		}
		out[name] = &a
	}
	return out, nil
}

func quantityStrings(m map[string]*resource.Quantity) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.String()
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
