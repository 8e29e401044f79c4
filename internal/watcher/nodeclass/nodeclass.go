// Package nodeclass connects EC2NodeClasses to the launcher: it converts an
// EC2NodeClass to the launcher's NodeClass message, caches the instance
// types each class can launch, and turns a ResolveNodeClass answer into the
// class's status.
package nodeclass

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// ToLauncher converts an EC2NodeClass to the launcher's NodeClass. Values
// are carried over as written (volume sizes become whole GiB, rounded up),
// never dropped: the launcher validates them, so a bad value fails
// ResolveNodeClass (the class's Ready condition says which field) and
// Launch with InvalidArgument.
func ToLauncher(nc *awsv1.EC2NodeClass) *launcherv1.NodeClass {
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
		out.AmiSelectorTerms = append(out.AmiSelectorTerms, &launcherv1.SelectorTerm{Tags: t.Tags, Id: t.ID, Name: t.Name, Owner: t.Owner, Alias: t.Alias})
	}
	if nc.Spec.InstanceProfile != nil {
		out.InstanceProfile = *nc.Spec.InstanceProfile
	}
	if nc.Spec.UserData != nil {
		out.UserData = *nc.Spec.UserData
	}
	if k := nc.Spec.Kubelet; k != nil {
		out.Kubelet = &launcherv1.KubeletConfiguration{
			KubeReserved: k.KubeReserved, SystemReserved: k.SystemReserved, EvictionHard: k.EvictionHard,
		}
		if k.MaxPods != nil {
			out.Kubelet.MaxPods = *k.MaxPods
		}
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

// Types caches, per EC2NodeClass generation, the instance types the
// launcher lists for it.
type Types struct {
	Launcher launcherv1.LauncherServiceClient
	// TTL is how long a list is reused; the launcher caches too, so this
	// mostly saves round trips within a batch.
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedTypes
}

type cachedTypes struct {
	generation int64
	at         time.Time
	types      []*typesv1.InstanceType
}

// InstanceTypes returns the types nc can launch.
func (t *Types) InstanceTypes(ctx context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	now := t.now()
	t.mu.Lock()
	c, ok := t.cache[nc.Name]
	t.mu.Unlock()
	if ok && c.generation == nc.Generation && now.Sub(c.at) < t.TTL {
		return c.types, nil
	}
	resp, err := t.Launcher.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: ToLauncher(nc)})
	if err != nil {
		return nil, fmt.Errorf("list instance types: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil {
		t.cache = map[string]cachedTypes{}
	}
	t.cache[nc.Name] = cachedTypes{generation: nc.Generation, at: now, types: resp.GetInstanceTypes()}
	return resp.GetInstanceTypes(), nil
}

// Invalidate forgets every cached list, after a capacity error made some
// offerings unavailable.
func (t *Types) Invalidate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache = nil
}

func (t *Types) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// ApplyResolution writes a ResolveNodeClass answer into the class's status
// and reports whether the class is ready (every condition True, at least
// one subnet and image).
func ApplyResolution(nc *awsv1.EC2NodeClass, res *launcherv1.ResolveNodeClassResponse) bool {
	st := &nc.Status
	st.Subnets = nil
	for _, s := range res.GetSubnets() {
		st.Subnets = append(st.Subnets, awsv1.Subnet{ID: s.GetId(), Zone: s.GetZone()})
	}
	st.SecurityGroups = nil
	for _, id := range res.GetSecurityGroupIds() {
		st.SecurityGroups = append(st.SecurityGroups, awsv1.SecurityGroup{ID: id})
	}
	st.AMIs = nil
	for _, im := range res.GetImages() {
		ami := awsv1.AMI{ID: im.GetId(), Name: im.GetName()}
		for _, r := range im.GetRequirements() {
			ami.Requirements = append(ami.Requirements, corev1.NodeSelectorRequirement{
				Key: r.GetKey(), Operator: corev1.NodeSelectorOperator(r.GetOperator()), Values: r.GetValues(),
			})
		}
		st.AMIs = append(st.AMIs, ami)
	}
	st.InstanceProfile = res.GetInstanceProfile()
	ready := len(st.Subnets) > 0 && len(st.AMIs) > 0
	msg := ""
	for _, c := range res.GetConditions() {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: c.GetType(), Status: metav1.ConditionStatus(c.GetStatus()), Reason: reason(c.GetReason(), c.GetStatus()),
			Message: c.GetMessage(), ObservedGeneration: nc.Generation,
		})
		if c.GetStatus() != string(metav1.ConditionTrue) {
			ready = false
			msg = c.GetType() + ": " + c.GetMessage()
		}
	}
	SetReady(nc, ready, msg)
	return ready
}

// SetReady sets the class's Ready condition.
func SetReady(nc *awsv1.EC2NodeClass, ready bool, message string) {
	c := metav1.Condition{Type: karpv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: nc.Generation}
	if !ready {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "NotReady", message
		if c.Message == "" {
			c.Message = "no subnet or no image selected"
		}
	}
	meta.SetStatusCondition(&nc.Status.Conditions, c)
}

// IsReady says whether the class's Ready condition is True.
func IsReady(nc *awsv1.EC2NodeClass) bool {
	return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionReady)
}

// reason makes a condition reason valid for metav1.Condition (CamelCase,
// non-empty).
func reason(r, status string) string {
	if r != "" {
		return r
	}
	if status == string(metav1.ConditionTrue) {
		return "Resolved"
	}
	return "Unresolved"
}
