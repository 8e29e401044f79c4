package nodeclass_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func example(t *testing.T) *awsv1.EC2NodeClass {
	t.Helper()
	b, err := os.ReadFile("../../../examples/karpenter/ec2nodeclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nc := &awsv1.EC2NodeClass{}
	if err := yaml.UnmarshalStrict(b, nc); err != nil {
		t.Fatal(err)
	}
	return nc
}

func TestFromEC2NodeClassCarriesExampleLaunchSettings(t *testing.T) {
	out := nodeclass.FromEC2NodeClass(example(t))
	if len(out.GetBlockDeviceMappings()) != 1 {
		t.Fatalf("mappings %v", out.GetBlockDeviceMappings())
	}
	m := out.GetBlockDeviceMappings()[0]
	e := m.GetEbs()
	if m.GetDeviceName() != "/dev/xvda" || m.GetRootVolume() || e.GetVolumeSizeGib() != 100 || e.GetVolumeType() != "gp3" ||
		e.GetIops() != 3000 || e.GetThroughput() != 125 || !e.GetEncrypted() || !e.GetDeleteOnTermination() ||
		e.KmsKeyId != "" || e.SnapshotId != "" {
		t.Errorf("mapping %v", m)
	}
	md := out.GetMetadataOptions()
	if md.GetHttpEndpoint() != "enabled" || md.GetHttpProtocolIpv6() != "disabled" || md.HttpPutResponseHopLimit == nil ||
		md.GetHttpPutResponseHopLimit() != 1 || md.GetHttpTokens() != "required" {
		t.Errorf("metadata options %v", md)
	}
	if out.GetDetailedMonitoring() || out.AssociatePublicIpAddress != nil {
		t.Errorf("monitoring %v public ip %v", out.GetDetailedMonitoring(), out.AssociatePublicIpAddress)
	}
	if err := nodeclass.Validate(out); err != nil {
		t.Errorf("the launcher rejects the example: %v", err)
	}
}

func TestFromEC2NodeClassOptionalSettings(t *testing.T) {
	nc := example(t)
	nc.Spec.BlockDeviceMappings, nc.Spec.MetadataOptions = nil, nil
	out := nodeclass.FromEC2NodeClass(nc)
	if out.BlockDeviceMappings != nil || out.MetadataOptions != nil || out.AssociatePublicIpAddress != nil {
		t.Errorf("unset settings converted to %v", out)
	}
	yes, no, key, snap := true, false, "alias/nodes", "snap-1"
	nc.Spec.DetailedMonitoring, nc.Spec.AssociatePublicIPAddress = &yes, &no
	nc.Spec.BlockDeviceMappings = []*awsv1.BlockDeviceMapping{{
		RootVolume: true, EBS: &awsv1.BlockDevice{SnapshotID: &snap, KMSKeyID: &key},
	}}
	out = nodeclass.FromEC2NodeClass(nc)
	if !out.GetDetailedMonitoring() || out.AssociatePublicIpAddress == nil || out.GetAssociatePublicIpAddress() {
		t.Errorf("monitoring %v public ip %v", out.GetDetailedMonitoring(), out.AssociatePublicIpAddress)
	}
	m := out.GetBlockDeviceMappings()[0]
	if !m.GetRootVolume() || m.GetEbs().VolumeSizeGib != nil || m.GetEbs().GetSnapshotId() != snap || m.GetEbs().GetKmsKeyId() != key {
		t.Errorf("mapping %v", m)
	}
	// No device name: carried over empty, and the launcher names the field.
	err := nodeclass.Validate(out)
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "block_device_mappings[0].device_name") {
		t.Errorf("Validate: %v", err)
	}
}

func TestGiBCeil(t *testing.T) {
	for q, want := range map[string]int64{
		"100Gi": 100, "1Gi": 1, "1": 1, "1Mi": 1, "1025Mi": 2, "100G": 94, "64Ti": 65536, "1.5Gi": 2,
		"0": 0, "-1Gi": -1, "1Ei": 1 << 30, "100Ei": 1 << 32,
	} {
		if got := nodeclass.GiBCeil(resource.MustParse(q)); got != want {
			t.Errorf("GiBCeil(%s) = %d, want %d", q, got, want)
		}
	}
}

// TestBadValuesFailValidation checks values the CRD would refuse but a
// stale or unvalidated object may hold reach the launcher as invalid.
func TestBadValuesFailValidation(t *testing.T) {
	zero := resource.MustParse("0")
	hops := int64(1 << 40)
	gp2 := "gp2"
	for field, mutate := range map[string]func(*awsv1.EC2NodeClass){
		"ebs.volume_size_gib": func(nc *awsv1.EC2NodeClass) { nc.Spec.BlockDeviceMappings[0].EBS.VolumeSize = &zero },
		"ebs.iops":            func(nc *awsv1.EC2NodeClass) { nc.Spec.BlockDeviceMappings[0].EBS.VolumeType = &gp2 },
		"http_put_response_hop_limit": func(nc *awsv1.EC2NodeClass) {
			nc.Spec.MetadataOptions.HTTPPutResponseHopLimit = &hops
		},
		"block_device_mappings[1].device_name": func(nc *awsv1.EC2NodeClass) {
			nc.Spec.BlockDeviceMappings = append(nc.Spec.BlockDeviceMappings, nil)
		},
	} {
		nc := example(t)
		mutate(nc)
		err := nodeclass.Validate(nodeclass.FromEC2NodeClass(nc))
		if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// Every field Karpenter has that the launcher does not receive is named,
// so the watcher's FieldsHonored condition cannot leave one out silently.
func TestUnhonoredFields(t *testing.T) {
	nc := &awsv1.EC2NodeClass{}
	if got := nodeclass.UnhonoredFields(nc); len(got) != 0 {
		t.Fatalf("an empty class: %v", got)
	}
	one := int32(1)
	ctx := "arn:aws:outposts:us-east-1:111122223333:outpost/op-0123"
	nc.Spec.Context = &ctx
	nc.Spec.CapacityReservationSelectorTerms = []awsv1.CapacityReservationSelectorTerm{{ID: "cr-0123"}}
	nc.Spec.PlacementGroupSelector = &awsv1.PlacementGroupSelector{Name: "pg"}
	nc.Spec.NetworkInterfaces = []awsv1.NetworkInterface{{InterfaceType: "interface"}}
	nc.Spec.IPPrefixCount = &one
	nc.Spec.CPUOptions = &awsv1.CPUOptions{NestedVirtualization: "enabled"}
	nc.Spec.ConnectionTracking = &awsv1.ConnectionTracking{UDPTimeout: &one}
	nc.Spec.BlockDeviceMappings = []*awsv1.BlockDeviceMapping{{EBS: &awsv1.BlockDevice{VolumeInitializationRate: &one}}}
	got := strings.Join(nodeclass.UnhonoredFields(nc), "; ")
	for _, want := range []string{"spec.context", "spec.capacityReservationSelectorTerms", "spec.placementGroupSelector", "spec.networkInterfaces",
		"spec.ipPrefixCount", "spec.cpuOptions", "spec.connectionTracking", "spec.blockDeviceMappings[0].ebs.volumeInitializationRate"} {
		if !strings.Contains(got, want) {
			t.Errorf("UnhonoredFields does not name %s: %s", want, got)
		}
	}
}

// amiFamily Custom goes with an alias (the alias picks the image, the user
// data is the class's own); another family must match the alias's.
func TestFamilyOfCustomWithAlias(t *testing.T) {
	nc := &launcherv1.NodeClass{AmiSelectorTerms: []*launcherv1.SelectorTerm{{Alias: "al2023@latest"}}}
	if f := nodeclass.FamilyOf(nc); f != "al2023" {
		t.Errorf("alias alone: %s", f)
	}
	nc.AmiFamily = "Custom"
	if f := nodeclass.FamilyOf(nc); f != "custom" {
		t.Errorf("Custom with an alias: %s", f)
	}
	nc.AmiFamily = "Bottlerocket"
	nc.SubnetSelectorTerms = []*launcherv1.SelectorTerm{{Id: "subnet-1"}}
	nc.SecurityGroupSelectorTerms = []*launcherv1.SelectorTerm{{Id: "sg-1"}}
	nc.Role = "r"
	if err := nodeclass.Validate(nc); err == nil || !strings.Contains(err.Error(), "node_class.ami_family") {
		t.Errorf("Bottlerocket with an al2023 alias: %v", err)
	}
}
