package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// createFleet ensures the launch templates of the plan and launches one
// instance with an instant fleet.
func (l *Launcher) createFleet(ctx context.Context, cluster string, req *launcherv1.LaunchRequest, res *nodeclass.Resolved, p *launchPlan) (*launcherv1.Instance, error) {
	configs, err := l.templateConfigs(ctx, cluster, req, res, p)
	if err != nil {
		return nil, err
	}
	tags := resourceTags(cluster, req)
	in := &ec2.CreateFleetInput{
		Type:                  ec2types.FleetTypeInstant,
		LaunchTemplateConfigs: configs,
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(1),
			DefaultTargetCapacityType: ec2types.DefaultTargetCapacityType(p.capacityType),
		},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
			{ResourceType: ec2types.ResourceTypeFleet, Tags: tags},
		},
	}
	if p.capacityType == instancetype.CapacityTypeSpot {
		in.SpotOptions = &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyPriceCapacityOptimized}
	} else {
		in.OnDemandOptions = &ec2types.OnDemandOptionsRequest{AllocationStrategy: ec2types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	in.ClientToken = aws.String(clientToken(cluster, req, in))
	out, err := l.o.EC2.CreateFleet(ctx, in)
	if err != nil {
		if awsclient.HasCode(err, "RequestLimitExceeded", "Throttling", "ServiceUnavailable", "InternalError") {
			err = fmt.Errorf("%w: %w", apierr.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("create fleet: %w", err)
	}
	return l.fleetResult(req, res, p, out)
}

// templateConfigs groups the overrides by launch template (one per image)
// and makes sure each template exists.
func (l *Launcher) templateConfigs(ctx context.Context, cluster string, req *launcherv1.LaunchRequest, res *nodeclass.Resolved, p *launchPlan) ([]ec2types.FleetLaunchTemplateConfigRequest, error) {
	var out []ec2types.FleetLaunchTemplateConfigRequest
	index := map[string]int{} // image id → position in out
	for _, o := range p.overrides {
		i, ok := index[o.image.ID]
		if !ok {
			name, err := l.ensureTemplate(ctx, l.templateConfig(cluster, req, res, o.image))
			if err != nil {
				return nil, err
			}
			i = len(out)
			index[o.image.ID] = i
			out = append(out, ec2types.FleetLaunchTemplateConfigRequest{
				LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{
					LaunchTemplateName: aws.String(name), Version: aws.String("$Latest"),
				},
			})
		}
		out[i].Overrides = append(out[i].Overrides, ec2types.FleetLaunchTemplateOverridesRequest{
			InstanceType: ec2types.InstanceType(o.InstanceType),
			SubnetId:     aws.String(o.subnet.ID),
		})
	}
	return out, nil
}

func (l *Launcher) templateConfig(cluster string, req *launcherv1.LaunchRequest, res *nodeclass.Resolved, im *nodeclass.Image) templateConfig {
	nc := req.GetNodeClass()
	tags := maps.Clone(nc.GetTags())
	if tags == nil {
		tags = map[string]string{}
	}
	tags[ClusterTag(cluster)] = "owned"
	tags[TagNodeClass] = nc.GetName()
	return templateConfig{
		Cluster: cluster, NodeClass: nc.GetName(), ImageID: im.ID, Family: im.Family,
		SecurityGroupIDs: res.SecurityGroupIDs, InstanceProfile: res.InstanceProfile, Tags: tags,
		UserData: userData(im.Family, userDataInput{
			cluster: cluster, endpoint: l.o.ClusterEndpoint, ca: l.o.ClusterCA, cidr: l.o.ClusterCIDR,
			labels: req.GetLabels(), taints: req.GetTaints(), kubelet: nc.GetKubelet(), custom: nc.GetUserData(),
		}),
	}
}

// resourceTags are the tags of the instance, its volumes and the fleet.
func resourceTags(cluster string, req *launcherv1.LaunchRequest) []ec2types.Tag {
	m := maps.Clone(req.GetNodeClass().GetTags())
	if m == nil {
		m = map[string]string{}
	}
	m[ClusterTag(cluster)] = "owned"
	m[TagNodePool] = req.GetNodePool()
	m[TagNodeClaim] = req.GetNodeClaim()
	m[TagNodeClass] = req.GetNodeClass().GetName()
	m[TagName] = req.GetNodePool() + "/" + req.GetNodeClaim()
	out := make([]ec2types.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// clientToken derives the CreateFleet idempotency token from the NodeClaim
// (cluster, name, uid) and what the fleet asks for: a retry of the same
// request gets EC2's answer to the first, while a retry with different
// offerings (after a capacity error) is a new request.
func clientToken(cluster string, req *launcherv1.LaunchRequest, in *ec2.CreateFleetInput) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", cluster, req.GetNodeClaim(), req.GetNodeClaimUid(), in.TargetCapacitySpecification.DefaultTargetCapacityType)
	for _, c := range in.LaunchTemplateConfigs {
		fmt.Fprintf(h, "%s\x00", aws.ToString(c.LaunchTemplateSpecification.LaunchTemplateName))
		for _, o := range c.Overrides {
			fmt.Fprintf(h, "%s/%s\x00", o.InstanceType, aws.ToString(o.SubnetId))
		}
	}
	return "flotilla-" + hex.EncodeToString(h.Sum(nil))[:48]
}

// fleetResult marks offerings that lacked capacity unavailable and returns
// the launched instance, or the error when none launched.
func (l *Launcher) fleetResult(req *launcherv1.LaunchRequest, res *nodeclass.Resolved, p *launchPlan, out *ec2.CreateFleetOutput) (*launcherv1.Instance, error) {
	zoneOf := map[string]string{}
	for _, s := range res.Subnets {
		zoneOf[s.ID] = s.Zone
	}
	ice := &InsufficientCapacityError{NodeClaim: req.GetNodeClaim()}
	var other []string
	for _, e := range out.Errors {
		code := aws.ToString(e.ErrorCode)
		if !capacityErrorCodes[code] {
			other = append(other, code+": "+aws.ToString(e.ErrorMessage))
			continue
		}
		if e.LaunchTemplateAndOverrides == nil || e.LaunchTemplateAndOverrides.Overrides == nil {
			continue
		}
		ov := e.LaunchTemplateAndOverrides.Overrides
		zone := aws.ToString(ov.AvailabilityZone)
		if zone == "" {
			zone = zoneOf[aws.ToString(ov.SubnetId)]
		}
		o := Offering{InstanceType: string(ov.InstanceType), Zone: zone, CapacityType: p.capacityType}
		l.o.Unavailable.Mark(unavailable.Key(o), unavailable.DefaultTTL)
		l.o.Logger.Info("offering lacks capacity", slog.String("offering", o.String()), slog.String("code", code))
		ice.Offerings = append(ice.Offerings, o)
	}
	for _, fi := range out.Instances {
		if len(fi.InstanceIds) == 0 {
			continue
		}
		return l.launched(req, p, fi, zoneOf), nil
	}
	if len(other) > 0 {
		return nil, fmt.Errorf("create fleet launched nothing: %s", strings.Join(other, "; "))
	}
	if len(ice.Offerings) == 0 {
		return nil, errors.New("create fleet launched nothing and reported no error")
	}
	return nil, ice
}

func (l *Launcher) launched(req *launcherv1.LaunchRequest, p *launchPlan, fi ec2types.CreateFleetInstance, zoneOf map[string]string) *launcherv1.Instance {
	zone := aws.ToString(fi.AvailabilityZone)
	if zone == "" && fi.LaunchTemplateAndOverrides != nil && fi.LaunchTemplateAndOverrides.Overrides != nil {
		ov := fi.LaunchTemplateAndOverrides.Overrides
		zone = aws.ToString(ov.AvailabilityZone)
		if zone == "" {
			zone = zoneOf[aws.ToString(ov.SubnetId)]
		}
	}
	inst := &launcherv1.Instance{
		Id:           fi.InstanceIds[0],
		InstanceType: string(fi.InstanceType),
		Zone:         zone,
		CapacityType: p.capacityType,
		State:        "pending",
		NodeClaim:    req.GetNodeClaim(),
		// CreateFleet does not report the launch time; this is when the
		// launcher saw the instance created.
		LaunchTime: timestamppb.New(l.o.Now()),
	}
	inst.ProviderId = fmt.Sprintf("aws:///%s/%s", inst.Zone, inst.Id)
	for _, o := range p.overrides {
		if o.InstanceType == inst.InstanceType && o.Zone == inst.Zone {
			inst.PricePerHour = o.Price
			break
		}
	}
	l.o.Logger.Info("launched", slog.String("node_claim", req.GetNodeClaim()), slog.String("instance", inst.Id),
		slog.String("instance_type", inst.InstanceType), slog.String("zone", inst.Zone), slog.String("capacity_type", inst.CapacityType))
	return inst
}
