package launch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
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
}

// name is flotilla-<cluster>-<hash of the configuration>.
func (c templateConfig) name() string {
	b, _ := json.Marshal(c) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return fmt.Sprintf("flotilla-%s-%s", c.Cluster, hex.EncodeToString(sum[:])[:20])
}

// data is the launch template data: IMDSv2 required with hop limit 1,
// encrypted gp3 root volume(s).
func (c templateConfig) data() *ec2types.RequestLaunchTemplateData {
	d := &ec2types.RequestLaunchTemplateData{
		ImageId:          aws.String(c.ImageID),
		UserData:         aws.String(base64.StdEncoding.EncodeToString([]byte(c.UserData))),
		SecurityGroupIds: c.SecurityGroupIDs,
		MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpEndpoint:            ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
			HttpTokens:              ec2types.LaunchTemplateHttpTokensStateRequired,
			HttpPutResponseHopLimit: aws.Int32(1),
		},
		BlockDeviceMappings: blockDevices(c.Family),
	}
	if c.InstanceProfile != "" {
		d.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(c.InstanceProfile)}
	}
	return d
}

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
