package instancetype

import (
	"math"
	"strconv"
	"strings"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Well-known labels.
const (
	LabelInstanceType    = "node.kubernetes.io/instance-type"
	LabelArch            = "kubernetes.io/arch"
	LabelOS              = "kubernetes.io/os"
	LabelZone            = "topology.kubernetes.io/zone"
	LabelRegion          = "topology.kubernetes.io/region"
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
	LabelGPUMemory       = "karpenter.k8s.aws/instance-gpu-memory"

	LabelAcceleratorName         = "karpenter.k8s.aws/instance-accelerator-name"
	LabelAcceleratorManufacturer = "karpenter.k8s.aws/instance-accelerator-manufacturer"
	LabelAcceleratorCount        = "karpenter.k8s.aws/instance-accelerator-count"
	LabelCapabilityFlex          = "karpenter.k8s.aws/instance-capability-flex"
	// LabelTenancy is default on every type: Flotilla launches shared
	// tenancy only. (Karpenter puts tenancy on its offerings' requirements;
	// Flotilla's offerings carry only zone and capacity type.)
	LabelTenancy              = "karpenter.k8s.aws/instance-tenancy"
	LabelCPUManufacturer      = "karpenter.k8s.aws/instance-cpu-manufacturer"
	LabelCPUSustainedClockMHz = "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz"
	LabelEBSBandwidth         = "karpenter.k8s.aws/instance-ebs-bandwidth"
	LabelEncryptionInTransit  = "karpenter.k8s.aws/instance-encryption-in-transit-supported"
	LabelLocalNVMe            = "karpenter.k8s.aws/instance-local-nvme"
	LabelNetworkBandwidth     = "karpenter.k8s.aws/instance-network-bandwidth"
)

// Extended resources besides GPUs.
const (
	ResourceNeuron     = "aws.amazon.com/neuron"
	ResourceNeuronCore = "aws.amazon.com/neuroncore"
	ResourceEFA        = "vpc.amazonaws.com/efa"
	ResourcePodENI     = "vpc.amazonaws.com/pod-eni"
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

// Info is what DescribeInstanceTypes says about a type that matters here
// (with network bandwidth and branch interfaces, which Karpenter takes
// from generated tables, from the embedded catalog).
type Info struct {
	Name      string
	VCPU      int64
	MemoryMiB int64
	Arch      string // amd64 or arm64
	GPUs      int64
	// GPUName is the GPU model as DescribeInstanceTypes names it; a type
	// may name a model with a GPU count of 0 (fractional GPUs).
	GPUName      string
	GPUMaker     string // nvidia, amd or habana
	GPUMemoryMiB int64  // per GPU
	ENIs         int64
	// DefaultCardENIs is the interfaces of the default network card, the
	// only ones the VPC CNI gives pods; ENIs when 0.
	DefaultCardENIs int64
	IPv4PerENI      int64
	Hypervisor      string // nitro, xen or "" (bare metal)

	CPUManufacturer      string // intel, amd or aws
	SustainedClockMHz    int64
	EBSBandwidthMbps     int64 // 0 when not EBS-optimized by default
	NetworkBandwidthMbps int64
	EncryptionInTransit  bool
	LocalNVMeGB          int64
	// Accelerator* name Neuron devices or inference accelerators.
	AcceleratorName, AcceleratorMaker string
	Accelerators                      int64
	NeuronDevices, NeuronCores        int64
	EFAs                              int64
	BranchENIs                        int64
}

// MaxPodsENI is the VPC CNI pod limit: the default network card's ENIs ×
// (IPv4 per ENI − 1) + 2.
func (i Info) MaxPodsENI() int64 {
	enis := i.ENIs
	if i.DefaultCardENIs > 0 {
		enis = i.DefaultCardENIs
	}
	return enis*(i.IPv4PerENI-1) + 2
}

// InfoFromEC2 converts a DescribeInstanceTypes entry; ok is false for
// types without the fields a node needs.
func InfoFromEC2(t ec2types.InstanceTypeInfo) (Info, bool) {
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
			info.GPUName = deref(g.Name)
			info.GPUMaker = strings.ToLower(deref(g.Manufacturer))
			if g.MemoryInfo != nil {
				info.GPUMemoryMiB = int64(deref(g.MemoryInfo.SizeInMiB))
			}
		}
	}
	processorFacts(&info, t)
	networkFacts(&info, t)
	acceleratorFacts(&info, t)
	if s := t.InstanceStorageInfo; s != nil && s.NvmeSupport != ec2types.EphemeralNvmeSupportUnsupported {
		info.LocalNVMeGB = deref(s.TotalSizeInGB)
	}
	if e := t.EbsInfo; e != nil && e.EbsOptimizedInfo != nil && e.EbsOptimizedSupport == ec2types.EbsOptimizedSupportDefault {
		info.EBSBandwidthMbps = int64(deref(e.EbsOptimizedInfo.MaximumBandwidthInMbps))
	}
	// Network bandwidth and branch interfaces are not in
	// DescribeInstanceTypes; Karpenter has generated tables, Flotilla the
	// embedded catalog.
	if spec, ok := ec2catalog.Lookup(info.Name); ok {
		info.NetworkBandwidthMbps = int64(spec.NetworkBandwidthMbps)
		info.BranchENIs = int64(spec.BranchENIs)
	}
	return info, true
}

func processorFacts(info *Info, t ec2types.InstanceTypeInfo) {
	info.CPUManufacturer = strings.ToLower(deref(t.ProcessorInfo.Manufacturer))
	info.SustainedClockMHz = int64(math.Round(deref(t.ProcessorInfo.SustainedClockSpeedInGhz) * 1000))
}

// networkFacts reads the default network card's interfaces (the only ones
// the VPC CNI gives pods), EFA and encryption in transit.
func networkFacts(info *Info, t ec2types.InstanceTypeInfo) {
	n := t.NetworkInfo
	if n.DefaultNetworkCardIndex != nil {
		for _, c := range n.NetworkCards {
			if deref(c.NetworkCardIndex) == *n.DefaultNetworkCardIndex {
				info.DefaultCardENIs = int64(deref(c.MaximumNetworkInterfaces))
			}
		}
	}
	if n.EfaInfo != nil {
		info.EFAs = int64(deref(n.EfaInfo.MaximumEfaInterfaces))
	}
	info.EncryptionInTransit = deref(n.EncryptionInTransitSupported)
}

// acceleratorFacts reads Neuron devices or, on types without them,
// inference accelerators, as Karpenter labels them.
func acceleratorFacts(info *Info, t ec2types.InstanceTypeInfo) {
	if t.NeuronInfo != nil {
		for _, d := range t.NeuronInfo.NeuronDevices {
			n := int64(deref(d.Count))
			info.NeuronDevices += n
			if d.CoreInfo != nil {
				info.NeuronCores += n * int64(deref(d.CoreInfo.Count))
			}
			info.AcceleratorName, info.AcceleratorMaker = deref(d.Name), "aws"
		}
		info.Accelerators = info.NeuronDevices
		return
	}
	if t.InferenceAcceleratorInfo != nil {
		for _, a := range t.InferenceAcceleratorInfo.Accelerators {
			info.Accelerators += int64(deref(a.Count))
			info.AcceleratorName, info.AcceleratorMaker = deref(a.Name), deref(a.Manufacturer)
		}
	}
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
		LabelTenancy:      "default",
		LabelCPU:          strconv.FormatInt(i.VCPU, 10),
		LabelMemory:       strconv.FormatInt(i.MemoryMiB, 10),
	}
	if i.Hypervisor != "" {
		out[LabelHypervisor] = i.Hypervisor
	}
	if i.GPUName != "" || i.GPUs > 0 {
		out[LabelGPUCount] = strconv.FormatInt(i.GPUs, 10)
		out[LabelGPUName] = LabelValue(i.GPUName)
		out[LabelGPUManufacturer] = LabelValue(i.GPUMaker)
		if i.GPUMemoryMiB > 0 {
			out[LabelGPUMemory] = strconv.FormatInt(i.GPUMemoryMiB, 10)
		}
	}
	if i.AcceleratorName != "" {
		out[LabelAcceleratorName] = LabelValue(i.AcceleratorName)
		out[LabelAcceleratorManufacturer] = LabelValue(i.AcceleratorMaker)
		out[LabelAcceleratorCount] = strconv.FormatInt(i.Accelerators, 10)
	}
	if i.CPUManufacturer != "" {
		out[LabelCPUManufacturer] = LabelValue(i.CPUManufacturer)
	}
	// Karpenter labels the clock speed of every type, 0 when EC2 gives none.
	out[LabelCPUSustainedClockMHz] = strconv.FormatInt(i.SustainedClockMHz, 10)
	positive := map[string]int64{
		LabelEBSBandwidth:     i.EBSBandwidthMbps,
		LabelNetworkBandwidth: i.NetworkBandwidthMbps, LabelLocalNVMe: i.LocalNVMeGB,
	}
	for k, v := range positive {
		if v > 0 {
			out[k] = strconv.FormatInt(v, 10)
		}
	}
	out[LabelEncryptionInTransit] = strconv.FormatBool(i.EncryptionInTransit)
	family, size, category, generation := ec2catalog.ParseName(i.Name)
	out[LabelCapabilityFlex] = strconv.FormatBool(strings.Contains(family, "-flex"))
	for k, v := range map[string]string{LabelFamily: family, LabelSize: size, LabelCategory: category, LabelGeneration: generation} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// LabelValue is a label value as Karpenter writes one from an EC2 name:
// lower case, spaces turned into dashes ("Radeon Pro V520" becomes
// radeon-pro-v520), as Kubernetes label values allow no spaces.
func LabelValue(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, " ", "-"))
}

// InfoFromSpec is what DescribeInstanceTypes says of an embedded catalog
// row (ec2sim answers with the same facts). Without the catalog's facts
// the hypervisor is nitro, none for bare metal.
func InfoFromSpec(s ec2catalog.Spec) Info {
	hv := s.Hypervisor
	if !s.Known && !strings.Contains(s.Name, ".metal") {
		hv = "nitro"
	}
	return Info{
		Name: s.Name, VCPU: int64(s.VCPU), MemoryMiB: s.MemoryMiB, Arch: s.Arch,
		GPUs: int64(s.GPUs), GPUName: s.GPUName, GPUMaker: s.GPUManufacturer, GPUMemoryMiB: s.GPUMemoryMiB,
		ENIs: int64(s.ENIs), DefaultCardENIs: int64(s.DefaultCardENIs), IPv4PerENI: int64(s.IPv4PerENI), Hypervisor: hv,
		CPUManufacturer: s.CPUManufacturer, SustainedClockMHz: int64(s.SustainedClockMHz),
		EBSBandwidthMbps: int64(s.EBSBandwidthMbps), NetworkBandwidthMbps: int64(s.NetworkBandwidthMbps),
		EncryptionInTransit: s.EncryptionInTransit, LocalNVMeGB: int64(s.LocalNVMeGB),
		AcceleratorName: s.AcceleratorName, AcceleratorMaker: s.AcceleratorManufacturer, Accelerators: int64(s.Accelerators),
		NeuronDevices: int64(s.NeuronDevices), NeuronCores: int64(s.NeuronCores), EFAs: int64(s.EFAs), BranchENIs: int64(s.BranchENIs),
	}
}
