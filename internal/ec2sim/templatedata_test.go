package ec2sim_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

// TestLaunchTemplateKeepsVolumesAndMetadata checks a template's block
// device mappings, metadata options, monitoring and network interface are
// kept for tests to read, and that data EC2 refuses is refused.
func TestLaunchTemplateKeepsVolumesAndMetadata(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	data := &types.RequestLaunchTemplateData{
		ImageId: aws.String("ami-0123456789abcdef0"),
		BlockDeviceMappings: []types.LaunchTemplateBlockDeviceMappingRequest{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.LaunchTemplateEbsBlockDeviceRequest{
				VolumeSize: aws.Int32(100), VolumeType: types.VolumeTypeGp3, Iops: aws.Int32(3000), Throughput: aws.Int32(125),
				Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/nodes"),
			},
		}},
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens: types.LaunchTemplateHttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(2),
		},
		Monitoring: &types.LaunchTemplatesMonitoringRequest{Enabled: aws.Bool(true)},
		NetworkInterfaces: []types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{
			DeviceIndex: aws.Int32(0), AssociatePublicIpAddress: aws.Bool(true), Groups: []string{"sg-1", "sg-2"},
		}},
	}
	if _, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("volumes"), LaunchTemplateData: data}); err != nil {
		t.Fatal(err)
	}
	lts := f.sim.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d templates", len(lts))
	}
	d, md := lts[0].Data, lts[0].MetadataOptions
	for k, want := range map[string]string{
		"BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.VolumeSize": "100",
		"BlockDeviceMapping.1.Ebs.VolumeType": "gp3", "BlockDeviceMapping.1.Ebs.Iops": "3000",
		"BlockDeviceMapping.1.Ebs.Throughput": "125", "BlockDeviceMapping.1.Ebs.KmsKeyId": "alias/nodes",
		"Monitoring.Enabled": "true", "NetworkInterface.1.AssociatePublicIpAddress": "true",
		"NetworkInterface.1.SecurityGroupId.2": "sg-2",
	} {
		if d[k] != want {
			t.Errorf("%s = %q, want %q", k, d[k], want)
		}
	}
	if md["HttpTokens"] != "optional" || md["HttpPutResponseHopLimit"] != "2" {
		t.Errorf("metadata options %v", md)
	}

	bad := map[string]func(*types.RequestLaunchTemplateData){
		"InvalidParameterCombination": func(d *types.RequestLaunchTemplateData) { d.SecurityGroupIds = []string{"sg-1"} },
		"InvalidParameterValue": func(d *types.RequestLaunchTemplateData) {
			d.NetworkInterfaces = nil
			d.BlockDeviceMappings[0].Ebs.VolumeType = "gp9"
		},
	}
	for code, mutate := range bad {
		c := *data
		c.BlockDeviceMappings = []types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String("/dev/xvda"), Ebs: &types.LaunchTemplateEbsBlockDeviceRequest{VolumeSize: aws.Int32(20)}}}
		mutate(&c)
		_, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("bad-" + strings.ToLower(code)), LaunchTemplateData: &c})
		if err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("%s: got %v", code, err)
		}
	}
	hops := *data
	hops.NetworkInterfaces, hops.MetadataOptions = nil, &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)}
	if _, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("bad-hops"), LaunchTemplateData: &hops}); err == nil || !strings.Contains(err.Error(), "HttpPutResponseHopLimit") {
		t.Errorf("hop limit 65: got %v", err)
	}
	if n := len(f.sim.LaunchTemplates()); n != 1 {
		t.Errorf("%d templates after refused creates", n)
	}
}
