package instancetype

import (
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"strconv"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Well-known labels.
const (
	LabelInstanceType    = "node.kubernetes.io/instance-type"
	LabelArch            = "kubernetes.io/arch"
	LabelOS              = "kubernetes.io/os"
	LabelZone            = "topology.kubernetes.io/zone"
	LabelCapacityType    = "karpenter.sh/capacity-type"
	LabelFamily          = "karpenter.k8s.aws/instance-family"
	LabelSize            = "karpenter.k8s.aws/instance-size"
	LabelCategory        = "karpenter.k8s.aws/instance-category"
	LabelGeneration      = "karpenter.k8s.aws/instance-generation"
	LabelCPU             = "karpenter.k8s.aws/instance-cpu"
	LabelMemory          = "karpenter.k8s.aws/instance-memory"
	LabelGPUName         = "karpenter.k8s.aws/instance-gpu-name"
	LabelGPUManufacturer = "karpenter.k8s.aws/instance-gpu-manufacturer"
	LabelGPUCount        = "karpenter.k8s.aws/instance-gpu-count"
	LabelHypervisor      = "karpenter.k8s.aws/instance-hypervisor"
)

// Capacity types.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
	// CapacityTypeReserved is capacity reserved ahead (On-Demand Capacity
	// Reservations, Capacity Blocks); the launcher offers none yet, but
	// callers may mark it unavailable.
	CapacityTypeReserved = "reserved"
)

// Info is what DescribeInstanceTypes says about a type that matters here.
type Info struct {
	Name       string
	VCPU       int64
	MemoryMiB  int64
	Arch       string // amd64 or arm64
	GPUs       int64
	GPUName    string // lower case, e.g. t4
	GPUMaker   string // lower case: nvidia, amd or habana
	ENIs       int64
	IPv4PerENI int64
	Hypervisor string // nitro, xen or "" (bare metal)
}

// MaxPodsENI is the VPC CNI pod limit: ENIs × (IPv4 per ENI − 1) + 2.
func (i Info) MaxPodsENI() int64 { return i.ENIs*(i.IPv4PerENI-1) + 2 }

// infoFromEC2 converts a DescribeInstanceTypes entry; ok is false for
// types without the fields a node needs.
func infoFromEC2(t ec2types.InstanceTypeInfo) (Info, bool) {
	if t.VCpuInfo == nil || t.MemoryInfo == nil || t.ProcessorInfo == nil || t.NetworkInfo == nil {
		return Info{}, false
	}
	info := Info{
		Name:       string(t.InstanceType),
		VCPU:       int64(deref(t.VCpuInfo.DefaultVCpus)),
		MemoryMiB:  deref(t.MemoryInfo.SizeInMiB),
		ENIs:       int64(deref(t.NetworkInfo.MaximumNetworkInterfaces)),
		IPv4PerENI: int64(deref(t.NetworkInfo.Ipv4AddressesPerInterface)),
		Hypervisor: string(t.Hypervisor),
	}
	for _, a := range t.ProcessorInfo.SupportedArchitectures {
		switch a {
		case ec2types.ArchitectureTypeX8664:
			info.Arch = "amd64"
		case ec2types.ArchitectureTypeArm64:
			info.Arch = "arm64"
		}
		if info.Arch != "" {
			break
		}
	}
	if info.Arch == "" {
		return Info{}, false
	}
	if t.GpuInfo != nil {
		for _, g := range t.GpuInfo.Gpus {
			info.GPUs += int64(deref(g.Count))
			info.GPUName = strings.ToLower(deref(g.Name))
			info.GPUMaker = strings.ToLower(deref(g.Manufacturer))
		}
	}
	return info, true
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// GPUResource is the extended resource name of the type's GPUs, or "".
func (i Info) GPUResource() string {
	if i.GPUs == 0 {
		return ""
	}
	switch i.GPUMaker {
	case "nvidia":
		return "nvidia.com/gpu"
	case "amd":
		return "amd.com/gpu"
	case "habana":
		return "habana.ai/gaudi"
	}
	return ""
}

// Labels are the type's well-known labels.
func (i Info) Labels() map[string]string {
	out := map[string]string{
		LabelInstanceType: i.Name,
		LabelArch:         i.Arch,
		LabelOS:           "linux",
		LabelCPU:          strconv.FormatInt(i.VCPU, 10),
		LabelMemory:       strconv.FormatInt(i.MemoryMiB, 10),
	}
	if i.Hypervisor != "" {
		out[LabelHypervisor] = i.Hypervisor
	}
	if i.GPUs > 0 {
		out[LabelGPUCount] = strconv.FormatInt(i.GPUs, 10)
		out[LabelGPUName] = i.GPUName
		out[LabelGPUManufacturer] = i.GPUMaker
	}
	family, size, category, generation := ec2catalog.ParseName(i.Name)
	for k, v := range map[string]string{LabelFamily: family, LabelSize: size, LabelCategory: category, LabelGeneration: generation} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// InfoFromSpec is what DescribeInstanceTypes says of an embedded catalog
// row, as ec2sim answers it: nitro, bare metal without a hypervisor.
func InfoFromSpec(s ec2catalog.Spec) Info {
	hv := "nitro"
	if strings.Contains(s.Name, ".metal") {
		hv = ""
	}
	return Info{
		Name: s.Name, VCPU: int64(s.VCPU), MemoryMiB: s.MemoryMiB, Arch: s.Arch,
		GPUs: int64(s.GPUs), GPUMaker: s.GPUManufacturer, ENIs: int64(s.ENIs), IPv4PerENI: int64(s.IPv4PerENI), Hypervisor: hv,
	}
}
