package launch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/launcher/userdata"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// fleetSpec is everything a CreateFleet asks for except its capacity and
// the per-NodeClaim tags. Launches with equal specs can share one
// CreateFleet.
type fleetSpec struct {
	cluster      string
	capacityType string
	configs      []ec2types.FleetLaunchTemplateConfigRequest
	// shared are the tags of every instance, volume and fleet: cluster,
	// NodePool, node class and the node class's own tags.
	shared map[string]string
}

// key identifies the spec: equal keys, equal CreateFleet requests.
func (s *fleetSpec) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", s.cluster, s.capacityType)
	writeConfigs(h, s.configs)
	for _, k := range sortedKeys(s.shared) {
		fmt.Fprintf(h, "%s=%s\x00", k, s.shared[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fleetMember is one NodeClaim waiting for an instance of a fleet.
type fleetMember struct {
	claim, uid, nodePool string
	done                 chan memberResult
}

// memberResult is what one member gets out of a CreateFleet: an instance,
// or nothing (the fleet's capacity errors then say why), or an error.
type memberResult struct {
	id string
	fi ec2types.CreateFleetInstance
	// errors are the fleet's per-override errors.
	errors []ec2types.CreateFleetError
	// tagged is false when the instance still needs its NodeClaim and Name
	// tags (a shared fleet tags every instance alike).
	tagged bool
	err    error
}

// createFleet ensures the launch templates of the plan and launches one
// instance with an instant fleet, shared with concurrent launches of the
// same spec when batching is on.
func (l *Launcher) createFleet(ctx context.Context, in launchInput, res *nodeclass.Resolved, p *launchPlan) (*launcherv1.Instance, error) {
	req := in.req
	configs, err := l.templateConfigs(ctx, in, res, p)
	if err != nil {
		return nil, err
	}
	spec := &fleetSpec{cluster: in.cluster, capacityType: p.capacityType, configs: configs, shared: sharedTags(in)}
	m := &fleetMember{claim: req.GetNodeClaim(), uid: req.GetNodeClaimUid(), nodePool: req.GetNodePool(), done: make(chan memberResult, 1)}
	var r memberResult
	if l.fleets != nil && batchable(spec, m.claim) {
		r = l.fleets.submit(spec, m)
	} else {
		r = l.runFleet(ctx, spec, []*fleetMember{m})[0]
	}
	return l.memberInstance(ctx, req, res, p, r)
}

// runFleet sends one CreateFleet for the members and hands the instances
// out: sorted by instance ID, the i-th goes to the i-th member, the same
// rule the batch tags record (see claimsOf).
func (l *Launcher) runFleet(ctx context.Context, spec *fleetSpec, members []*fleetMember) []memberResult {
	l.o.Metrics.FleetBatch(len(members))
	out, err := l.o.EC2.CreateFleet(ctx, fleetInput(spec, members))
	results := make([]memberResult, len(members))
	if err != nil {
		if awsclient.HasCode(err, "RequestLimitExceeded", "Throttling", "ServiceUnavailable", "InternalError") {
			err = fmt.Errorf("%w: %w", apierr.ErrUnavailable, err)
		}
		for i := range results {
			results[i].err = fmt.Errorf("create fleet: %w", err)
		}
		return results
	}
	type launched struct {
		id string
		fi ec2types.CreateFleetInstance
	}
	var got []launched
	for _, fi := range out.Instances {
		for _, id := range fi.InstanceIds {
			got = append(got, launched{id, fi})
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].id < got[j].id })
	for i := range results {
		results[i] = memberResult{errors: out.Errors, tagged: len(members) == 1}
		if i < len(got) {
			results[i].id, results[i].fi = got[i].id, got[i].fi
		}
	}
	if len(got) > len(members) {
		l.o.Logger.Error("create fleet launched more instances than asked", slog.Int("asked", len(members)), slog.Int("got", len(got)))
	}
	return results
}

// fleetInput is the CreateFleet request for the members. A lone member's
// instance is tagged with its NodeClaim at launch; a shared fleet records
// the members in order in batch tags, and each member tags its instance
// afterwards.
func fleetInput(spec *fleetSpec, members []*fleetMember) *ec2.CreateFleetInput {
	tags := maps.Clone(spec.shared)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", spec.cluster, spec.capacityType)
	claims := make([]string, len(members))
	for i, m := range members {
		claims[i] = m.claim
		fmt.Fprintf(h, "%s\x00%s\x00", m.claim, m.uid)
	}
	writeConfigs(h, spec.configs)
	sum := hex.EncodeToString(h.Sum(nil))
	if len(members) == 1 {
		tags[TagNodeClaim] = members[0].claim
		tags[TagName] = members[0].nodePool + "/" + members[0].claim
	} else {
		tags[TagLaunchBatch] = sum[:20]
		chunks, _ := packClaims(claims, maxClaimChunks)
		for i, c := range chunks {
			tags[fmt.Sprintf("%s%d", TagLaunchBatchClaims, i)] = c
		}
	}
	tagList := toTags(tags)
	in := &ec2.CreateFleetInput{
		Type:                  ec2types.FleetTypeInstant,
		LaunchTemplateConfigs: spec.configs,
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(int32(len(members))),
			DefaultTargetCapacityType: ec2types.DefaultTargetCapacityType(spec.capacityType),
		},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tagList},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tagList},
			{ResourceType: ec2types.ResourceTypeFleet, Tags: tagList},
		},
		// A fresh token per CreateFleet: the SDK's own retries of this
		// request resend it (and get EC2's answer to the first), but a
		// later attempt must not. EC2 returns the first answer to a token,
		// errors included, for hours ("Ensuring idempotency in Amazon EC2
		// API requests", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html),
		// so a derived token would replay a quota error long after the
		// quota was raised. Idempotency across attempts comes from the
		// NodeClaim tag lookup before every launch (existing), and from
		// the NodeClaim lock held while the fleet runs.
		ClientToken: aws.String(newClientToken()),
	}
	if spec.capacityType == instancetype.CapacityTypeSpot {
		in.SpotOptions = &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyPriceCapacityOptimized}
	} else {
		in.OnDemandOptions = &ec2types.OnDemandOptionsRequest{AllocationStrategy: ec2types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	return in
}

// newClientToken is a random CreateFleet ClientToken (at most 64 ASCII
// characters, as EC2 requires).
func newClientToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return "flotilla-" + hex.EncodeToString(b[:])
}

func writeConfigs(h interface{ Write([]byte) (int, error) }, configs []ec2types.FleetLaunchTemplateConfigRequest) {
	for _, c := range configs {
		fmt.Fprintf(h, "%s\x00", aws.ToString(c.LaunchTemplateSpecification.LaunchTemplateName))
		for _, o := range c.Overrides {
			fmt.Fprintf(h, "%s/%s\x00", o.InstanceType, aws.ToString(o.SubnetId))
		}
	}
}

// templateConfigs groups the overrides by launch template (one per image)
// and makes sure each template exists.
func (l *Launcher) templateConfigs(ctx context.Context, in launchInput, res *nodeclass.Resolved, p *launchPlan) ([]ec2types.FleetLaunchTemplateConfigRequest, error) {
	var out []ec2types.FleetLaunchTemplateConfigRequest
	index := map[string]int{} // image id → position in out
	for _, o := range p.overrides {
		i, ok := index[o.image.ID]
		if !ok {
			cfg, err := l.templateConfig(in, res, o.image)
			if err != nil {
				return nil, err
			}
			name, err := l.ensureTemplate(ctx, cfg)
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

func (l *Launcher) templateConfig(in launchInput, res *nodeclass.Resolved, im *nodeclass.Image) (templateConfig, error) {
	cluster, req, nc := in.cluster, in.req, in.nc
	tags := maps.Clone(nc.GetTags())
	if tags == nil {
		tags = map[string]string{}
	}
	tags[ClusterTag(cluster)] = "owned"
	tags[TagNodeClass] = nc.GetName()
	data, err := userdata.Build(userdata.Input{
		Family: userdata.Family(im.Family), Cluster: cluster, Endpoint: l.o.ClusterEndpoint, CABundle: l.o.ClusterCA, CIDR: l.o.ClusterCIDR,
		Labels: req.GetLabels(), Taints: req.GetTaints(), Kubelet: nc.GetKubelet(), RAID0: nc.GetInstanceStorePolicy() == "RAID0",
		Custom: nc.GetUserData(),
	})
	if err != nil {
		return templateConfig{}, fmt.Errorf("%w: node_class.user_data: %w", apierr.ErrInvalidArgument, err)
	}
	return templateConfig{
		Cluster: cluster, NodeClass: nc.GetName(), ImageID: im.ID, Family: im.Family,
		SecurityGroupIDs: res.SecurityGroupIDs, InstanceProfile: res.InstanceProfile, Tags: tags,
		launchSettings: launchSettingsOf(nc), UserData: data,
	}, nil
}

// sharedTags are the tags every instance of a fleet for in gets,
// whichever NodeClaim it is for.
func sharedTags(in launchInput) map[string]string {
	m := maps.Clone(in.nc.GetTags())
	if m == nil {
		m = map[string]string{}
	}
	m[ClusterTag(in.cluster)] = "owned"
	m[TagNodePool] = in.req.GetNodePool()
	m[TagNodeClass] = in.nc.GetName()
	return m
}

func toTags(m map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// memberInstance turns a member's share of a fleet into its instance, or
// into the error when it got none. Offerings that lacked capacity are
// marked unavailable either way.
func (l *Launcher) memberInstance(ctx context.Context, req *launcherv1.LaunchRequest, res *nodeclass.Resolved, p *launchPlan, r memberResult) (*launcherv1.Instance, error) {
	if r.err != nil {
		return nil, r.err
	}
	zoneOf := map[string]string{}
	for _, s := range res.Subnets {
		zoneOf[s.ID] = s.Zone
	}
	l.forgetMissingTemplates(r.errors)
	ice, other := l.capacityErrors(req, p, r.errors, zoneOf)
	if r.id != "" {
		if !r.tagged {
			l.tagClaim(ctx, r.id, req.GetNodeClaim(), req.GetNodePool())
		}
		return l.launched(req, p, r.id, r.fi, zoneOf), nil
	}
	if len(other) > 0 {
		return nil, fmt.Errorf("create fleet launched nothing for %s: %s", req.GetNodeClaim(), strings.Join(other, "; "))
	}
	if len(ice.Offerings) == 0 {
		return nil, errors.New("create fleet launched nothing and reported no error")
	}
	return nil, ice
}

// capacityErrors marks what the fleet's capacity errors name unavailable
// (see fleetErrorScopes: the offering, also its subnet, or all of spot) and
// returns them as an error, with the other errors.
func (l *Launcher) capacityErrors(req *launcherv1.LaunchRequest, p *launchPlan, errs []ec2types.CreateFleetError, zoneOf map[string]string) (*InsufficientCapacityError, []string) {
	ice := &InsufficientCapacityError{NodeClaim: req.GetNodeClaim()}
	var other []string
	for _, e := range errs {
		code := aws.ToString(e.ErrorCode)
		scope := fleetErrorScopes[code]
		if scope == markNone {
			other = append(other, code+": "+aws.ToString(e.ErrorMessage))
			continue
		}
		if quotaErrorCodes[code] {
			ice.addQuota(code)
		}
		if scope == markSpot {
			l.o.Unavailable.MarkCapacityType(instancetype.CapacityTypeSpot, unavailable.DefaultTTL)
			l.o.Logger.Warn("spot launches refused: the account may not create the spot service-linked role",
				slog.String("code", code), slog.String("message", aws.ToString(e.ErrorMessage)))
		}
		if e.LaunchTemplateAndOverrides == nil || e.LaunchTemplateAndOverrides.Overrides == nil {
			continue
		}
		ov := e.LaunchTemplateAndOverrides.Overrides
		subnet := aws.ToString(ov.SubnetId)
		if scope == markOfferingAndSubnet && subnet != "" {
			l.o.Unavailable.MarkSubnet(subnet, unavailable.DefaultTTL)
			l.o.Logger.Debug("subnet out of addresses", slog.String("subnet", subnet))
		}
		zone := aws.ToString(ov.AvailabilityZone)
		if zone == "" {
			zone = zoneOf[subnet]
		}
		o := Offering{InstanceType: string(ov.InstanceType), Zone: zone, CapacityType: p.capacityType}
		if scope != markSpot {
			l.o.Unavailable.MarkFor(unavailable.Key(o), unavailable.DefaultTTL, code)
			l.o.Logger.Debug("offering lacks capacity", slog.String("offering", o.String()), slog.String("code", code))
		}
		ice.Offerings = append(ice.Offerings, o)
	}
	return ice, other
}

// tagClaim puts a NodeClaim's own tags on its instance from a shared
// fleet. A failure is logged, not returned: the batch tags already record
// which NodeClaim the instance is for, and the next lookup retries.
func (l *Launcher) tagClaim(ctx context.Context, id, claim, nodePool string) {
	_, err := l.o.EC2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{id},
		Tags:      toTags(map[string]string{TagNodeClaim: claim, TagName: nodePool + "/" + claim}),
	})
	if err != nil {
		l.o.Logger.Warn("tag instance with its node claim", slog.String("instance", id), slog.String("node_claim", claim), slog.Any("error", err))
	}
}

func (l *Launcher) launched(req *launcherv1.LaunchRequest, p *launchPlan, id string, fi ec2types.CreateFleetInstance, zoneOf map[string]string) *launcherv1.Instance {
	zone := aws.ToString(fi.AvailabilityZone)
	if zone == "" && fi.LaunchTemplateAndOverrides != nil && fi.LaunchTemplateAndOverrides.Overrides != nil {
		ov := fi.LaunchTemplateAndOverrides.Overrides
		zone = aws.ToString(ov.AvailabilityZone)
		if zone == "" {
			zone = zoneOf[aws.ToString(ov.SubnetId)]
		}
	}
	inst := &launcherv1.Instance{
		Id:           id,
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
