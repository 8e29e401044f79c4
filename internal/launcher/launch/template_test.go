package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func baseConfig(family string) templateConfig {
	return templateConfig{
		Cluster: "test", NodeClass: "default", ImageID: "ami-1", Family: family, UserData: "#!/bin/sh",
		SecurityGroupIDs: []string{"sg-1", "sg-2"}, InstanceProfile: "profile", Tags: map[string]string{"team": "infra"},
	}
}

// exampleClass is the launch part of examples/karpenter/ec2nodeclass.yaml.
func exampleClass() *launcherv1.NodeClass {
	hops := int32(1)
	return &launcherv1.NodeClass{
		Name: "default",
		BlockDeviceMappings: []*launcherv1.BlockDeviceMapping{{
			DeviceName: "/dev/xvda",
			Ebs: &launcherv1.Ebs{
				VolumeSizeGib: aws.Int64(100), VolumeType: "gp3", Iops: aws.Int64(3000), Throughput: aws.Int64(125),
				Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
			},
		}},
		MetadataOptions: &launcherv1.MetadataOptions{
			HttpEndpoint: "enabled", HttpProtocolIpv6: "disabled", HttpPutResponseHopLimit: &hops, HttpTokens: "required",
		},
	}
}

func TestTemplateDataFamilyDefaults(t *testing.T) {
	for _, tc := range []struct {
		family  string
		devices map[string]int32
	}{
		{nodeclass.FamilyAL2023, map[string]int32{"/dev/xvda": 20}},
		{nodeclass.FamilyAL2, map[string]int32{"/dev/xvda": 20}},
		{nodeclass.FamilyBottlerocket, map[string]int32{"/dev/xvda": 4, "/dev/xvdb": 20}},
	} {
		cfg := baseConfig(tc.family)
		cfg.launchSettings = launchSettingsOf(&launcherv1.NodeClass{})
		d := cfg.data()
		if len(d.BlockDeviceMappings) != len(tc.devices) {
			t.Fatalf("%s: %d mappings, want %d", tc.family, len(d.BlockDeviceMappings), len(tc.devices))
		}
		for _, m := range d.BlockDeviceMappings {
			e := m.Ebs
			if tc.devices[*m.DeviceName] != *e.VolumeSize || e.VolumeType != ec2types.VolumeTypeGp3 || !*e.Encrypted || !*e.DeleteOnTermination {
				t.Errorf("%s: %s %+v", tc.family, *m.DeviceName, *e)
			}
		}
		assertMetadata(t, d, "enabled", "disabled", 1, "required")
		if d.Monitoring != nil || d.NetworkInterfaces != nil || len(d.SecurityGroupIds) != 2 {
			t.Errorf("%s: monitoring %v interfaces %v groups %v", tc.family, d.Monitoring, d.NetworkInterfaces, d.SecurityGroupIds)
		}
	}
}

func assertMetadata(t *testing.T, d *ec2types.RequestLaunchTemplateData, endpoint, ipv6 string, hops int32, tokens string) {
	t.Helper()
	m := d.MetadataOptions
	if string(m.HttpEndpoint) != endpoint || string(m.HttpProtocolIpv6) != ipv6 || *m.HttpPutResponseHopLimit != hops || string(m.HttpTokens) != tokens {
		t.Errorf("metadata options %s %s %d %s, want %s %s %d %s",
			m.HttpEndpoint, m.HttpProtocolIpv6, *m.HttpPutResponseHopLimit, m.HttpTokens, endpoint, ipv6, hops, tokens)
	}
}

func TestTemplateDataExampleVolume(t *testing.T) {
	for _, family := range []string{nodeclass.FamilyAL2023, nodeclass.FamilyBottlerocket} {
		cfg := baseConfig(family)
		cfg.launchSettings = launchSettingsOf(exampleClass())
		d := cfg.data()
		if len(d.BlockDeviceMappings) != 1 {
			t.Fatalf("%s: mappings %+v", family, d.BlockDeviceMappings)
		}
		m := d.BlockDeviceMappings[0]
		e := m.Ebs
		if *m.DeviceName != "/dev/xvda" || *e.VolumeSize != 100 || e.VolumeType != ec2types.VolumeTypeGp3 || *e.Iops != 3000 ||
			*e.Throughput != 125 || !*e.Encrypted || !*e.DeleteOnTermination || e.KmsKeyId != nil || e.SnapshotId != nil {
			t.Errorf("%s: mapping %s %+v", family, *m.DeviceName, *e)
		}
		assertMetadata(t, d, "enabled", "disabled", 1, "required")
	}
}

func TestTemplateDataPassesEBSFieldsThrough(t *testing.T) {
	cfg := baseConfig(nodeclass.FamilyAL2023)
	cfg.launchSettings = launchSettingsOf(&launcherv1.NodeClass{BlockDeviceMappings: []*launcherv1.BlockDeviceMapping{
		{DeviceName: "/dev/xvda", RootVolume: true, Ebs: &launcherv1.Ebs{VolumeSizeGib: aws.Int64(50), VolumeType: "io2", Iops: aws.Int64(10000), KmsKeyId: "alias/nodes", Encrypted: aws.Bool(true)}},
		{DeviceName: "/dev/xvdb", Ebs: &launcherv1.Ebs{SnapshotId: "snap-1", DeleteOnTermination: aws.Bool(false)}},
	}})
	d := cfg.data()
	if len(d.BlockDeviceMappings) != 2 {
		t.Fatalf("mappings %+v", d.BlockDeviceMappings)
	}
	root, data := d.BlockDeviceMappings[0].Ebs, d.BlockDeviceMappings[1].Ebs
	if *root.VolumeSize != 50 || root.VolumeType != ec2types.VolumeTypeIo2 || *root.Iops != 10000 || *root.KmsKeyId != "alias/nodes" || root.Throughput != nil || root.DeleteOnTermination != nil {
		t.Errorf("root %+v", *root)
	}
	if *data.SnapshotId != "snap-1" || data.VolumeSize != nil || data.VolumeType != "" || *data.DeleteOnTermination || data.Encrypted != nil {
		t.Errorf("data volume %+v", *data)
	}
}

func TestTemplateDataPublicIPAndMonitoring(t *testing.T) {
	for _, public := range []bool{true, false} {
		cfg := baseConfig(nodeclass.FamilyAL2023)
		hops := int32(2)
		cfg.launchSettings = launchSettingsOf(&launcherv1.NodeClass{
			AssociatePublicIpAddress: aws.Bool(public), DetailedMonitoring: true,
			MetadataOptions: &launcherv1.MetadataOptions{HttpPutResponseHopLimit: &hops, HttpTokens: "optional", HttpProtocolIpv6: "enabled"},
		})
		d := cfg.data()
		if d.SecurityGroupIds != nil || len(d.NetworkInterfaces) != 1 {
			t.Fatalf("public %v: groups %v interfaces %+v", public, d.SecurityGroupIds, d.NetworkInterfaces)
		}
		ni := d.NetworkInterfaces[0]
		if *ni.DeviceIndex != 0 || *ni.AssociatePublicIpAddress != public || len(ni.Groups) != 2 || ni.Groups[0] != "sg-1" {
			t.Errorf("public %v: interface %+v", public, ni)
		}
		if d.Monitoring == nil || !*d.Monitoring.Enabled {
			t.Errorf("public %v: monitoring %+v", public, d.Monitoring)
		}
		assertMetadata(t, d, "enabled", "enabled", 2, "optional")
	}
}

// TestTemplateNameFollowsSettings checks each setting changes the template
// name, explicit defaults do not, and a class setting none keeps the name
// it had before node classes carried launch settings.
func TestTemplateNameFollowsSettings(t *testing.T) {
	base := baseConfig(nodeclass.FamilyAL2023)
	plain := base
	plain.launchSettings = launchSettingsOf(&launcherv1.NodeClass{})
	// The configuration's JSON before launch settings existed.
	old, _ := json.Marshal(struct {
		Cluster          string            `json:"cluster"`
		NodeClass        string            `json:"nodeClass"`
		ImageID          string            `json:"imageId"`
		Family           string            `json:"family"`
		UserData         string            `json:"userData"`
		SecurityGroupIDs []string          `json:"securityGroupIds"`
		InstanceProfile  string            `json:"instanceProfile"`
		Tags             map[string]string `json:"tags"`
	}{base.Cluster, base.NodeClass, base.ImageID, base.Family, base.UserData, base.SecurityGroupIDs, base.InstanceProfile, base.Tags})
	sum := sha256.Sum256(old)
	if want := fmt.Sprintf("flotilla-test-%s", hex.EncodeToString(sum[:])[:20]); plain.name() != want {
		t.Errorf("name without settings %s, want the old %s", plain.name(), want)
	}
	hops := int32(1)
	explicit := base
	explicit.launchSettings = launchSettingsOf(&launcherv1.NodeClass{MetadataOptions: &launcherv1.MetadataOptions{
		HttpEndpoint: "enabled", HttpProtocolIpv6: "disabled", HttpPutResponseHopLimit: &hops, HttpTokens: "required",
	}})
	if explicit.name() != plain.name() {
		t.Error("explicit default metadata options changed the name")
	}
	seen := map[string]string{plain.name(): "plain"}
	hops2 := int32(2)
	for label, nc := range map[string]*launcherv1.NodeClass{
		"example":    exampleClass(),
		"size":       {BlockDeviceMappings: []*launcherv1.BlockDeviceMapping{{DeviceName: "/dev/xvda", Ebs: &launcherv1.Ebs{VolumeSizeGib: aws.Int64(101)}}}},
		"hops":       {MetadataOptions: &launcherv1.MetadataOptions{HttpPutResponseHopLimit: &hops2}},
		"monitoring": {DetailedMonitoring: true},
		"public":     {AssociatePublicIpAddress: aws.Bool(true)},
		"private":    {AssociatePublicIpAddress: aws.Bool(false)},
	} {
		c := base
		c.launchSettings = launchSettingsOf(nc)
		if other, dup := seen[c.name()]; dup {
			t.Errorf("%s has the same name as %s", label, other)
		}
		seen[c.name()] = label
	}
}
