package nodeclass

// The one conversion of a karpenter.k8s.aws/v1 EC2NodeClass into the
// launcher's NodeClass: the launcher reads classes by name from the API
// server and converts them here; the watcher (ListInstanceTypes of a class
// it holds) and `flotilla plan` (offline instance types) use the same
// function, so both sides read a class alike.

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/api/resource"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// FromEC2NodeClass converts an EC2NodeClass to the launcher's NodeClass. Values
// are carried over as written (volume sizes become whole GiB, rounded up),
// never dropped: Validate checks them, so a bad value fails ResolveNodeClass
// (the class's Ready condition says which field) and Launch with
// InvalidArgument.
func FromEC2NodeClass(nc *awsv1.EC2NodeClass) *launcherv1.NodeClass {
	out := &launcherv1.NodeClass{
		Name: nc.Name, Role: nc.Spec.Role, Tags: nc.Spec.Tags,
		BlockDeviceMappings:      blockDeviceMappings(nc.Spec.BlockDeviceMappings),
		MetadataOptions:          metadataOptions(nc.Spec.MetadataOptions),
		DetailedMonitoring:       nc.Spec.DetailedMonitoring != nil && *nc.Spec.DetailedMonitoring,
		AssociatePublicIpAddress: nc.Spec.AssociatePublicIPAddress,
	}
	for _, t := range nc.Spec.SubnetSelectorTerms {
		out.SubnetSelectorTerms = append(out.SubnetSelectorTerms, &launcherv1.SelectorTerm{Tags: t.Tags, Id: t.ID})
	}
	for _, t := range nc.Spec.SecurityGroupSelectorTerms {
		out.SecurityGroupSelectorTerms = append(out.SecurityGroupSelectorTerms, &launcherv1.SelectorTerm{Tags: t.Tags, Id: t.ID, Name: t.Name})
	}
	for _, t := range nc.Spec.AMISelectorTerms {
		out.AmiSelectorTerms = append(out.AmiSelectorTerms, &launcherv1.SelectorTerm{
			Tags: t.Tags, Id: t.ID, Name: t.Name, Owner: t.Owner, Alias: t.Alias, SsmParameter: t.SSMParameter,
		})
	}
	if nc.Spec.InstanceProfile != nil {
		out.InstanceProfile = *nc.Spec.InstanceProfile
	}
	if nc.Spec.UserData != nil {
		out.UserData = *nc.Spec.UserData
	}
	if nc.Spec.AMIFamily != nil {
		out.AmiFamily = *nc.Spec.AMIFamily
	}
	if nc.Spec.InstanceStorePolicy != nil {
		out.InstanceStorePolicy = string(*nc.Spec.InstanceStorePolicy)
	}
	out.Kubelet = kubelet(nc.Spec.Kubelet)
	return out
}

// kubelet converts every kubelet field of the class; the launcher renders
// each into the node's user data.
func kubelet(k *awsv1.KubeletConfiguration) *launcherv1.KubeletConfiguration {
	if k == nil {
		return nil
	}
	out := &launcherv1.KubeletConfiguration{
		KubeReserved: k.KubeReserved, SystemReserved: k.SystemReserved, EvictionHard: k.EvictionHard, EvictionSoft: k.EvictionSoft,
		ClusterDns: k.ClusterDNS, PodsPerCore: k.PodsPerCore, EvictionMaxPodGracePeriod: k.EvictionMaxPodGracePeriod,
		ImageGcHighThresholdPercent: k.ImageGCHighThresholdPercent, ImageGcLowThresholdPercent: k.ImageGCLowThresholdPercent,
		CpuCfsQuota: k.CPUCFSQuota,
	}
	if k.MaxPods != nil {
		out.MaxPods = *k.MaxPods
	}
	for signal, d := range k.EvictionSoftGracePeriod {
		if out.EvictionSoftGracePeriod == nil {
			out.EvictionSoftGracePeriod = map[string]string{}
		}
		out.EvictionSoftGracePeriod[signal] = d.Duration.String()
	}
	return out
}

// blockDeviceMappings converts the class's volumes; a nil entry becomes a
// mapping without a device name, which the launcher rejects.
func blockDeviceMappings(in []*awsv1.BlockDeviceMapping) []*launcherv1.BlockDeviceMapping {
	var out []*launcherv1.BlockDeviceMapping
	for _, m := range in {
		if m == nil {
			out = append(out, &launcherv1.BlockDeviceMapping{})
			continue
		}
		bdm := &launcherv1.BlockDeviceMapping{RootVolume: m.RootVolume, Ebs: ebs(m.EBS)}
		if m.DeviceName != nil {
			bdm.DeviceName = *m.DeviceName
		}
		out = append(out, bdm)
	}
	return out
}

func ebs(in *awsv1.BlockDevice) *launcherv1.Ebs {
	if in == nil {
		return nil
	}
	out := &launcherv1.Ebs{
		Iops: in.IOPS, Throughput: in.Throughput, Encrypted: in.Encrypted, DeleteOnTermination: in.DeleteOnTermination,
	}
	if in.VolumeSize != nil {
		gib := GiBCeil(*in.VolumeSize)
		out.VolumeSizeGib = &gib
	}
	if in.VolumeType != nil {
		out.VolumeType = *in.VolumeType
	}
	if in.KMSKeyID != nil {
		out.KmsKeyId = *in.KMSKeyID
	}
	if in.SnapshotID != nil {
		out.SnapshotId = *in.SnapshotID
	}
	return out
}

// GiBCeil is q in GiB (2^30 bytes), rounded up: 100Gi is 100, 100G is 94,
// 1 is 1. Zero and negative quantities give zero or less, and quantities
// beyond 2^62 bytes saturate; both are out of range for the launcher.
func GiBCeil(q resource.Quantity) int64 {
	const gib = 1 << 30
	if v, ok := q.AsInt64(); ok {
		if v <= 0 {
			return v / gib
		}
		return (v-1)/gib + 1
	}
	f := math.Ceil(q.AsApproximateFloat64() / gib)
	switch {
	case f >= 1<<32:
		return 1 << 32
	case f <= -(1 << 32):
		return -(1 << 32)
	}
	return int64(f)
}

func metadataOptions(in *awsv1.MetadataOptions) *launcherv1.MetadataOptions {
	if in == nil {
		return nil
	}
	out := &launcherv1.MetadataOptions{}
	if in.HTTPEndpoint != nil {
		out.HttpEndpoint = *in.HTTPEndpoint
	}
	if in.HTTPProtocolIPv6 != nil {
		out.HttpProtocolIpv6 = *in.HTTPProtocolIPv6
	}
	if in.HTTPTokens != nil {
		out.HttpTokens = *in.HTTPTokens
	}
	if in.HTTPPutResponseHopLimit != nil {
		// Out-of-int32 values saturate; the launcher rejects anything
		// beyond 64 naming the field.
		hops := int32(max(min(*in.HTTPPutResponseHopLimit, math.MaxInt32), math.MinInt32)) //nolint:gosec // clamped above
		out.HttpPutResponseHopLimit = &hops
	}
	return out
}

// UnhonoredFields lists the EC2NodeClass fields that Karpenter's CRD has,
// that Flotilla's CRD therefore accepts, but that FromEC2NodeClass does not
// carry to the launcher: launches ignore them. The watcher names them in
// the class's FieldsHonored condition.
func UnhonoredFields(nc *awsv1.EC2NodeClass) []string {
	var out []string
	s := nc.Spec
	add := func(set bool, field string) {
		if set {
			out = append(out, field)
		}
	}
	add(s.Context != nil, "spec.context")
	add(len(s.CapacityReservationSelectorTerms) > 0, "spec.capacityReservationSelectorTerms (capacity reservations and the reserved capacity type)")
	add(s.PlacementGroupSelector != nil, "spec.placementGroupSelector")
	add(len(s.NetworkInterfaces) > 0, "spec.networkInterfaces")
	add(s.IPPrefixCount != nil, "spec.ipPrefixCount")
	add(s.CPUOptions != nil, "spec.cpuOptions")
	add(s.ConnectionTracking != nil, "spec.connectionTracking")
	for i, m := range s.BlockDeviceMappings {
		add(m != nil && m.EBS != nil && m.EBS.VolumeInitializationRate != nil, fmt.Sprintf("spec.blockDeviceMappings[%d].ebs.volumeInitializationRate", i))
	}
	if len(out) > 0 {
		out[0] = "not acted on by Flotilla yet: " + out[0]
	}
	return out
}
