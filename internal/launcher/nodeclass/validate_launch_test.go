package nodeclass

import (
	"errors"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func i64(v int64) *int64 { return &v }
func i32(v int32) *int32 { return &v }
func b(v bool) *bool     { return &v }

func launchClass() *launcherv1.NodeClass {
	return &launcherv1.NodeClass{
		Name:                       "default",
		SubnetSelectorTerms:        []*launcherv1.SelectorTerm{{Id: "subnet-1"}},
		SecurityGroupSelectorTerms: []*launcherv1.SelectorTerm{{Id: "sg-1"}},
		AmiSelectorTerms:           []*launcherv1.SelectorTerm{{Alias: "al2023@latest"}},
		Role:                       "role",
		BlockDeviceMappings: []*launcherv1.BlockDeviceMapping{{
			DeviceName: "/dev/xvda", RootVolume: true,
			Ebs: &launcherv1.Ebs{VolumeSizeGib: i64(100), VolumeType: "gp3", Iops: i64(3000), Throughput: i64(125), Encrypted: b(true), DeleteOnTermination: b(true)},
		}},
		MetadataOptions: &launcherv1.MetadataOptions{HttpEndpoint: "enabled", HttpProtocolIpv6: "disabled", HttpPutResponseHopLimit: i32(1), HttpTokens: "required"},
	}
}

func TestValidateLaunchSettingsAccepts(t *testing.T) {
	for name, mutate := range map[string]func(*launcherv1.NodeClass){
		"example":   func(*launcherv1.NodeClass) {},
		"none":      func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings, nc.MetadataOptions = nil, nil },
		"empty ebs": func(nc *launcherv1.NodeClass) { nc.MetadataOptions = &launcherv1.MetadataOptions{} },
		"snapshot":  func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings[0].Ebs = &launcherv1.Ebs{SnapshotId: "snap-1"} },
		"io2": func(nc *launcherv1.NodeClass) {
			e := nc.BlockDeviceMappings[0].Ebs
			e.VolumeType, e.Throughput = "io2", nil
		},
		"hop 64": func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpPutResponseHopLimit = i32(64) },
		"64 TiB": func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings[0].Ebs.VolumeSizeGib = i64(65536) },
		"kms":    func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings[0].Ebs.KmsKeyId = "alias/nodes" },
		"two volumes": func(nc *launcherv1.NodeClass) {
			nc.BlockDeviceMappings = append(nc.BlockDeviceMappings, &launcherv1.BlockDeviceMapping{DeviceName: "/dev/xvdb", Ebs: &launcherv1.Ebs{VolumeSizeGib: i64(20)}})
		},
	} {
		nc := launchClass()
		mutate(nc)
		if err := Validate(nc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateLaunchSettingsRejects(t *testing.T) {
	ebs := func(nc *launcherv1.NodeClass) *launcherv1.Ebs { return nc.BlockDeviceMappings[0].Ebs }
	const bdm = "node_class.block_device_mappings"
	for field, mutate := range map[string]func(*launcherv1.NodeClass){
		bdm + "[0].ebs.volume_type":     func(nc *launcherv1.NodeClass) { ebs(nc).VolumeType = "gp4" },
		bdm + "[0].ebs.iops":            func(nc *launcherv1.NodeClass) { ebs(nc).VolumeType, ebs(nc).Throughput = "gp2", nil },
		bdm + "[0].ebs.throughput":      func(nc *launcherv1.NodeClass) { ebs(nc).VolumeType, ebs(nc).Iops = "io1", i64(100) },
		bdm + "[0].ebs.volume_size_gib": func(nc *launcherv1.NodeClass) { ebs(nc).VolumeSizeGib = i64(0) },
		bdm + "[0].ebs":                 func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings[0].Ebs = nil },
		bdm + "[0].device_name":         func(nc *launcherv1.NodeClass) { nc.BlockDeviceMappings[0].DeviceName = "" },
		bdm + "[0].ebs.kms_key_id":      func(nc *launcherv1.NodeClass) { ebs(nc).KmsKeyId, ebs(nc).Encrypted = "alias/k", b(false) },
		bdm + "[1].device_name": func(nc *launcherv1.NodeClass) {
			nc.BlockDeviceMappings = append(nc.BlockDeviceMappings, nc.BlockDeviceMappings[0])
		},
		"metadata_options.http_tokens":                 func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpTokens = "sometimes" },
		"metadata_options.http_endpoint":               func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpEndpoint = "on" },
		"metadata_options.http_protocol_ipv6":          func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpProtocolIpv6 = "yes" },
		"metadata_options.http_put_response_hop_limit": func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpPutResponseHopLimit = i32(65) },
	} {
		nc := launchClass()
		mutate(nc)
		err := Validate(nc)
		if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), field+":") {
			t.Errorf("%s: got %v", field, err)
		}
	}
	extra := map[string]func(*launcherv1.NodeClass){
		"io1 without iops":  func(nc *launcherv1.NodeClass) { ebs(nc).VolumeType, ebs(nc).Iops, ebs(nc).Throughput = "io1", nil, nil },
		"no size":           func(nc *launcherv1.NodeClass) { ebs(nc).VolumeSizeGib = nil },
		"too big":           func(nc *launcherv1.NodeClass) { ebs(nc).VolumeSizeGib = i64(65537) },
		"hop 0":             func(nc *launcherv1.NodeClass) { nc.MetadataOptions.HttpPutResponseHopLimit = i32(0) },
		"iops 0":            func(nc *launcherv1.NodeClass) { ebs(nc).Iops = i64(0) },
		"throughput big":    func(nc *launcherv1.NodeClass) { ebs(nc).Throughput = i64(1 << 40) },
		"default type iops": func(nc *launcherv1.NodeClass) { ebs(nc).VolumeType, ebs(nc).Throughput = "", nil },
		"two roots": func(nc *launcherv1.NodeClass) {
			nc.BlockDeviceMappings = append(nc.BlockDeviceMappings, &launcherv1.BlockDeviceMapping{DeviceName: "/dev/xvdb", RootVolume: true, Ebs: &launcherv1.Ebs{VolumeSizeGib: i64(20)}})
		},
	}
	for name, mutate := range extra {
		nc := launchClass()
		mutate(nc)
		if err := Validate(nc); !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
