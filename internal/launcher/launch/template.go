package launch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/userdata"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// templateConfig is everything a launch template holds. Its hash names the
// template, so equal configurations share one template.
type templateConfig struct {
	Cluster          string            `json:"cluster"`
	NodeClass        string            `json:"nodeClass"`
	ImageID          string            `json:"imageId"`
	Family           string            `json:"family"`
	UserData         string            `json:"userData"`
	SecurityGroupIDs []string          `json:"securityGroupIds"`
	InstanceProfile  string            `json:"instanceProfile"`
	Tags             map[string]string `json:"tags"`
	launchSettings
}

// launchSettings are the EC2NodeClass's volumes, metadata options,
// monitoring and public IP choice. Unset and default settings marshal to
// nothing, so a class that sets none keeps its template name.
type launchSettings struct {
	// BlockDevices replace the family's default volumes when not empty.
	BlockDevices []blockDevice `json:"blockDevices,omitempty"`
	// Metadata is nil when the class asks for the default IMDS settings.
	Metadata           *metadataConfig `json:"metadata,omitempty"`
	DetailedMonitoring bool            `json:"detailedMonitoring,omitempty"`
	// AssociatePublicIP, when set, puts the security groups and the
	// public IP choice on the primary network interface.
	AssociatePublicIP *bool `json:"associatePublicIP,omitempty"`
}

// blockDevice is one EBS volume of a node class; nil fields take EC2's
// defaults.
type blockDevice struct {
	DeviceName          string `json:"deviceName"`
	VolumeSizeGiB       *int32 `json:"volumeSizeGiB,omitempty"`
	VolumeType          string `json:"volumeType,omitempty"`
	IOPS                *int32 `json:"iops,omitempty"`
	Throughput          *int32 `json:"throughput,omitempty"`
	Encrypted           *bool  `json:"encrypted,omitempty"`
	KMSKeyID            string `json:"kmsKeyId,omitempty"`
	DeleteOnTermination *bool  `json:"deleteOnTermination,omitempty"`
	SnapshotID          string `json:"snapshotId,omitempty"`
}

// metadataConfig is the instance metadata service configuration, with
// every field resolved.
type metadataConfig struct {
	HTTPEndpoint            string `json:"httpEndpoint"`
	HTTPProtocolIPv6        string `json:"httpProtocolIPv6"`
	HTTPPutResponseHopLimit int32  `json:"httpPutResponseHopLimit"`
	HTTPTokens              string `json:"httpTokens"`
}

// defaultMetadata is Karpenter's default: IMDSv2 only, reachable from the
// host but not from containers (hop limit 1), no IPv6 endpoint.
var defaultMetadata = metadataConfig{
	HTTPEndpoint: "enabled", HTTPProtocolIPv6: "disabled", HTTPPutResponseHopLimit: 1, HTTPTokens: "required",
}

// launchSettingsOf takes the launch settings from a node class that
// nodeclass.Validate accepted.
func launchSettingsOf(nc *launcherv1.NodeClass) launchSettings {
	s := launchSettings{DetailedMonitoring: nc.GetDetailedMonitoring()}
	if nc.AssociatePublicIpAddress != nil {
		s.AssociatePublicIP = aws.Bool(nc.GetAssociatePublicIpAddress())
	}
	for _, m := range nc.GetBlockDeviceMappings() {
		e := m.GetEbs()
		if e == nil {
			e = &launcherv1.Ebs{}
		}
		s.BlockDevices = append(s.BlockDevices, blockDevice{
			DeviceName:    m.GetDeviceName(),
			VolumeSizeGiB: int32Ptr(e.VolumeSizeGib), VolumeType: e.GetVolumeType(),
			IOPS: int32Ptr(e.Iops), Throughput: int32Ptr(e.Throughput),
			Encrypted: e.Encrypted, KMSKeyID: e.GetKmsKeyId(), DeleteOnTermination: e.DeleteOnTermination,
			SnapshotID: e.GetSnapshotId(),
		})
	}
	md := resolveMetadata(nc.GetMetadataOptions())
	if md != defaultMetadata {
		s.Metadata = &md
	}
	return s
}

// resolveMetadata fills the unset metadata options with the defaults.
func resolveMetadata(m *launcherv1.MetadataOptions) metadataConfig {
	out := defaultMetadata
	if v := m.GetHttpEndpoint(); v != "" {
		out.HTTPEndpoint = v
	}
	if v := m.GetHttpProtocolIpv6(); v != "" {
		out.HTTPProtocolIPv6 = v
	}
	if m != nil && m.HttpPutResponseHopLimit != nil {
		out.HTTPPutResponseHopLimit = m.GetHttpPutResponseHopLimit()
	}
	if v := m.GetHttpTokens(); v != "" {
		out.HTTPTokens = v
	}
	return out
}

// int32Ptr narrows a validated optional value (sizes, IOPS and throughput
// are range-checked far below 2^31); out-of-range values saturate.
func int32Ptr(v *int64) *int32 {
	if v == nil {
		return nil
	}
	return aws.Int32(int32(max(min(*v, math.MaxInt32), math.MinInt32))) //nolint:gosec // clamped
}

// name is flotilla-<cluster>-<hash of the configuration>.
func (c templateConfig) name() string {
	b, _ := json.Marshal(c) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return fmt.Sprintf("flotilla-%s-%s", c.Cluster, hex.EncodeToString(sum[:])[:20])
}

// data is the launch template data: the node class's volumes (or the
// family's encrypted gp3 defaults), its IMDS options (default IMDSv2
// required with hop limit 1), detailed monitoring, and, when the class
// chooses whether to associate a public IP, a primary network interface
// carrying that choice and the security groups (EC2 rejects security
// groups both on the instance and on an interface).
func (c templateConfig) data() *ec2types.RequestLaunchTemplateData {
	md := defaultMetadata
	if c.Metadata != nil {
		md = *c.Metadata
	}
	d := &ec2types.RequestLaunchTemplateData{
		ImageId:  aws.String(c.ImageID),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(c.UserData))),
		MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpEndpoint:            ec2types.LaunchTemplateInstanceMetadataEndpointState(md.HTTPEndpoint),
			HttpProtocolIpv6:        ec2types.LaunchTemplateInstanceMetadataProtocolIpv6(md.HTTPProtocolIPv6),
			HttpTokens:              ec2types.LaunchTemplateHttpTokensState(md.HTTPTokens),
			HttpPutResponseHopLimit: aws.Int32(md.HTTPPutResponseHopLimit),
		},
		BlockDeviceMappings: c.blockDeviceMappings(),
	}
	if c.AssociatePublicIP != nil {
		d.NetworkInterfaces = []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{
			DeviceIndex:              aws.Int32(0),
			AssociatePublicIpAddress: aws.Bool(*c.AssociatePublicIP),
			Groups:                   c.SecurityGroupIDs,
		}}
	} else {
		d.SecurityGroupIds = c.SecurityGroupIDs
	}
	if c.DetailedMonitoring {
		d.Monitoring = &ec2types.LaunchTemplatesMonitoringRequest{Enabled: aws.Bool(true)}
	}
	if c.InstanceProfile != "" {
		d.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(c.InstanceProfile)}
	}
	return d
}

// blockDeviceMappings are the class's volumes, or the family's defaults
// when it names none.
func (c templateConfig) blockDeviceMappings() []ec2types.LaunchTemplateBlockDeviceMappingRequest {
	if len(c.BlockDevices) == 0 {
		return blockDevices(c.Family)
	}
	out := make([]ec2types.LaunchTemplateBlockDeviceMappingRequest, 0, len(c.BlockDevices))
	for _, b := range c.BlockDevices {
		out = append(out, ec2types.LaunchTemplateBlockDeviceMappingRequest{
			DeviceName: aws.String(b.DeviceName),
			Ebs: &ec2types.LaunchTemplateEbsBlockDeviceRequest{
				VolumeSize: b.VolumeSizeGiB, VolumeType: ec2types.VolumeType(b.VolumeType),
				Iops: b.IOPS, Throughput: b.Throughput,
				Encrypted: b.Encrypted, KmsKeyId: optString(b.KMSKeyID),
				DeleteOnTermination: b.DeleteOnTermination, SnapshotId: optString(b.SnapshotID),
			},
		})
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// blockDevices are an AMI family's default volumes: an encrypted 20 GiB
// gp3 root, and for Bottlerocket a 4 GiB OS volume plus a 20 GiB data
// volume.
func blockDevices(family string) []ec2types.LaunchTemplateBlockDeviceMappingRequest {
	ebs := func(device string, gib int32) ec2types.LaunchTemplateBlockDeviceMappingRequest {
		return ec2types.LaunchTemplateBlockDeviceMappingRequest{
			DeviceName: aws.String(device),
			Ebs: &ec2types.LaunchTemplateEbsBlockDeviceRequest{
				VolumeSize: aws.Int32(gib), VolumeType: ec2types.VolumeTypeGp3,
				Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
			},
		}
	}
	if family == nodeclass.FamilyBottlerocket {
		return []ec2types.LaunchTemplateBlockDeviceMappingRequest{ebs("/dev/xvda", 4), ebs("/dev/xvdb", 20)}
	}
	if userdata.Family(family).Windows() {
		return []ec2types.LaunchTemplateBlockDeviceMappingRequest{ebs(nodeclass.WindowsRootDevice, nodeclass.WindowsRootVolumeGi)}
	}
	return []ec2types.LaunchTemplateBlockDeviceMappingRequest{ebs("/dev/xvda", 20)}
}

// templateCache remembers the launch templates known to exist. Concurrent
// callers needing the same template wait for one describe-or-create.
type templateCache struct {
	mu      sync.Mutex
	entries map[string]*templateEntry
}

type templateEntry struct {
	done chan struct{}
	err  error
	// lastUsed is when a launch last asked for the template (guarded by
	// templateCache.mu).
	lastUsed time.Time
}

func newTemplateCache() *templateCache { return &templateCache{entries: map[string]*templateEntry{}} }

// ensure makes sure the template named for cfg exists and returns its name.
func (l *Launcher) ensureTemplate(ctx context.Context, cfg templateConfig) (string, error) {
	name := cfg.name()
	c := l.templates
	c.mu.Lock()
	e, ok := c.entries[name]
	if !ok {
		e = &templateEntry{done: make(chan struct{})}
		c.entries[name] = e
	}
	e.lastUsed = l.o.Now()
	c.mu.Unlock()
	if !ok {
		e.err = l.describeOrCreate(ctx, name, cfg)
		if e.err != nil {
			c.forget(name)
		}
		close(e.done)
	}
	select {
	case <-e.done:
		return name, e.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *templateCache) forget(name string) {
	c.mu.Lock()
	delete(c.entries, name)
	c.mu.Unlock()
}

func (l *Launcher) describeOrCreate(ctx context.Context, name string, cfg templateConfig) error {
	_, err := l.o.EC2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if err == nil {
		return nil
	}
	if !awsclient.HasCode(err, "InvalidLaunchTemplateName.NotFoundException") {
		return fmt.Errorf("describe launch template %s: %w", name, err)
	}
	tags := []ec2types.Tag{}
	for _, k := range sortedKeys(cfg.Tags) {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(cfg.Tags[k])})
	}
	_, err = l.o.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: cfg.data(),
		TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: tags}},
	})
	if err != nil && !awsclient.HasCode(err, "InvalidLaunchTemplateName.AlreadyExistsException") {
		return fmt.Errorf("create launch template %s: %w", name, err)
	}
	l.o.Logger.Info("launch template ready", "name", name, "image", cfg.ImageID)
	return nil
}
