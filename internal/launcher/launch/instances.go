package launch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// liveStates are the states of an instance that counts as a NodeClaim's.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// existing finds the live instance of a NodeClaim in cluster, or nil. An
// instance that a shared fleet launched for the claim but that was never
// tagged with it (the launcher stopped in between) is found through its
// batch tags, and tagged now.
func (l *Launcher) existing(ctx context.Context, cluster, claim string, snap *instancetype.Snapshot) (*launcherv1.Instance, error) {
	found, err := l.lookups.lookup(ctx, claim)
	if err != nil {
		return nil, fmt.Errorf("look up instance of node claim: %w", err)
	}
	for _, in := range found {
		if tagValue(in.Tags, ClusterTag(cluster)) == "" {
			continue
		}
		if tagValue(in.Tags, TagNodeClaim) == "" {
			l.o.Logger.Info("instance of node claim found by its launch batch", slog.String("node_claim", claim), slog.String("instance", aws.ToString(in.InstanceId)))
			l.tagClaim(ctx, aws.ToString(in.InstanceId), claim, tagValue(in.Tags, TagNodePool))
		}
		return toInstance(in, snap, claim), nil
	}
	return nil, nil
}

// describeClaims finds the live instances of the claims: those tagged with
// one, and those a shared fleet launched for one (any tag value listing
// it). One call serves up to maxFilterValues/2 claims.
func (l *Launcher) describeClaims(ctx context.Context, claims []string) (map[string][]ec2types.Instance, error) {
	values := make([]string, 0, 2*len(claims))
	want := map[string]bool{}
	for _, c := range claims {
		values = append(values, c, "*,"+c+",*")
		want[c] = true
	}
	var all []ec2types.Instance
	// No state filter: assigning a batch's instances needs all of them.
	err := l.describe(ctx, []ec2types.Filter{{Name: aws.String("tag-value"), Values: values}},
		func(in ec2types.Instance) { all = append(all, in) })
	if err != nil {
		return nil, err
	}
	owners := claimsOf(all)
	out := map[string][]ec2types.Instance{}
	for _, in := range all {
		c := owners[aws.ToString(in.InstanceId)]
		if want[c] && isLive(in) {
			out[c] = append(out[c], in)
		}
	}
	return out, nil
}

func isLive(in ec2types.Instance) bool {
	return in.State != nil && slices.Contains(liveStates, string(in.State.Name))
}

func (l *Launcher) describe(ctx context.Context, filters []ec2types.Filter, each func(ec2types.Instance)) error {
	p := ec2.NewDescribeInstancesPaginator(l.o.EC2, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				each(in)
			}
		}
	}
	return nil
}

// ListInstances lists the live instances NodePools launched for the
// launcher's cluster (tagged both kubernetes.io/cluster/<cluster> and
// karpenter.sh/nodepool), with or without a NodeClaim, for garbage
// collection.
func (l *Launcher) ListInstances(ctx context.Context) ([]*launcherv1.Instance, error) {
	cluster := l.o.Cluster
	if cluster == "" {
		return nil, fmt.Errorf("%w: the launcher has no cluster name", apierr.ErrFailedPrecondition)
	}
	snap, err := l.o.Types.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("instance types: %w", err)
	}
	var all []ec2types.Instance
	// No state filter: assigning a batch's instances needs all of them.
	// Both tags: the cluster tag alone is also on self-managed and managed
	// node groups' instances, which are not ours to list or collect.
	err = l.describe(ctx, []ec2types.Filter{
		{Name: aws.String("tag-key"), Values: []string{ClusterTag(cluster)}},
		{Name: aws.String("tag-key"), Values: []string{TagNodePool}},
	}, func(in ec2types.Instance) { all = append(all, in) })
	if err != nil {
		return nil, err
	}
	owners := claimsOf(all)
	var out []*launcherv1.Instance
	groups := map[metrics.Offering]metrics.InstanceGroup{}
	for _, in := range all {
		if !isLive(in) {
			continue
		}
		inst := toInstance(in, snap, owners[aws.ToString(in.InstanceId)])
		out = append(out, inst)
		o := metrics.Offering{NodePool: tagValue(in.Tags, TagNodePool), InstanceType: inst.InstanceType, Zone: inst.Zone, CapacityType: inst.CapacityType}
		g := groups[o]
		g.Count++
		g.PricePerHour += inst.PricePerHour
		groups[o] = g
	}
	l.o.Metrics.ListedInstances(groups)
	return out, nil
}

// Terminate terminates the instance id of NodeClaim claim and returns its
// state after the call. It first describes the instance and refuses
// (apierr.ErrFailedPrecondition, nothing terminated) one that is not
// provably the claim's in this cluster: it must carry the cluster's tag, a
// karpenter.sh/nodepool tag, and karpenter.sh/nodeclaim = claim (or, for an
// instance of a shared fleet not tagged yet, the claim's place in its
// launch batch). An unknown or terminated instance is a success.
func (l *Launcher) Terminate(ctx context.Context, id, claim string) (string, error) {
	switch {
	case id == "":
		return "", fmt.Errorf("%w: instance_id: empty", apierr.ErrInvalidArgument)
	case claim == "":
		return "", fmt.Errorf("%w: node_claim: empty", apierr.ErrInvalidArgument)
	case l.o.Cluster == "":
		return "", fmt.Errorf("%w: the launcher has no cluster name", apierr.ErrFailedPrecondition)
	}
	in, found, err := l.describeOne(ctx, id)
	switch {
	case err != nil:
		return "", err
	case !found || in.State == nil || in.State.Name == ec2types.InstanceStateNameTerminated:
		return string(ec2types.InstanceStateNameTerminated), nil
	}
	if err := l.owned(ctx, in, claim); err != nil {
		l.o.Metrics.TerminateRefused()
		l.o.Logger.Warn("terminate refused", slog.String("instance", id), slog.String("node_claim", claim), slog.Any("error", err))
		return "", err
	}
	out, err := l.o.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	switch {
	case awsclient.HasCode(err, "InvalidInstanceID.NotFound"):
		return string(ec2types.InstanceStateNameTerminated), nil
	case err != nil:
		return "", fmt.Errorf("terminate %s: %w", id, err)
	}
	for _, c := range out.TerminatingInstances {
		if c.CurrentState != nil {
			return string(c.CurrentState.Name), nil
		}
	}
	return string(ec2types.InstanceStateNameShuttingDown), nil
}

// describeOne describes instance id; found is false for an instance EC2
// does not know (any more).
func (l *Launcher) describeOne(ctx context.Context, id string) (ec2types.Instance, bool, error) {
	out, err := l.o.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	switch {
	case awsclient.HasCode(err, "InvalidInstanceID.NotFound"):
		return ec2types.Instance{}, false, nil
	case awsclient.HasCode(err, "InvalidInstanceID.Malformed"):
		return ec2types.Instance{}, false, fmt.Errorf("%w: instance_id: %q is malformed", apierr.ErrInvalidArgument, id)
	case err != nil:
		return ec2types.Instance{}, false, fmt.Errorf("describe %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id {
				return in, true, nil
			}
		}
	}
	return ec2types.Instance{}, false, nil
}

// owned returns nil when in is claim's instance in this cluster, and an
// error wrapping apierr.ErrFailedPrecondition saying which tag is missing
// or wrong otherwise.
func (l *Launcher) owned(ctx context.Context, in ec2types.Instance, claim string) error {
	id := aws.ToString(in.InstanceId)
	refuse := func(why string) error {
		return fmt.Errorf("%w: instance %s is not NodeClaim %s's in cluster %s: %s", apierr.ErrFailedPrecondition, id, claim, l.o.Cluster, why)
	}
	if !hasTag(in.Tags, ClusterTag(l.o.Cluster)) {
		return refuse("no " + ClusterTag(l.o.Cluster) + " tag")
	}
	if !hasTag(in.Tags, TagNodePool) {
		return refuse("no " + TagNodePool + " tag")
	}
	got := tagValue(in.Tags, TagNodeClaim)
	if got == "" && tagValue(in.Tags, TagLaunchBatch) != "" {
		owner, err := l.batchOwner(ctx, in)
		if err != nil {
			return err
		}
		got = owner
	}
	switch {
	case got == "":
		return refuse("no " + TagNodeClaim + " tag")
	case got != claim:
		return refuse(fmt.Sprintf("its %s tag is %q", TagNodeClaim, got))
	}
	return nil
}

// batchOwner is the NodeClaim a shared fleet launched in for, by its place
// in the batch (see claimsOf), or "".
func (l *Launcher) batchOwner(ctx context.Context, in ec2types.Instance) (string, error) {
	var batch []ec2types.Instance
	err := l.describe(ctx, []ec2types.Filter{{Name: aws.String("tag:" + TagLaunchBatch), Values: []string{tagValue(in.Tags, TagLaunchBatch)}}},
		func(b ec2types.Instance) { batch = append(batch, b) })
	if err != nil {
		return "", fmt.Errorf("launch batch of %s: %w", aws.ToString(in.InstanceId), err)
	}
	return claimsOf(batch)[aws.ToString(in.InstanceId)], nil
}

// toInstance converts an EC2 instance of claim ("" for none).
func toInstance(in ec2types.Instance, snap *instancetype.Snapshot, claim string) *launcherv1.Instance {
	out := &launcherv1.Instance{
		Id:           aws.ToString(in.InstanceId),
		InstanceType: string(in.InstanceType),
		CapacityType: instancetype.CapacityTypeOnDemand,
		NodeClaim:    claim,
	}
	if in.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
		out.CapacityType = instancetype.CapacityTypeSpot
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.LaunchTime != nil {
		out.LaunchTime = timestamppb.New(*in.LaunchTime)
	}
	out.ProviderId = fmt.Sprintf("aws:///%s/%s", out.Zone, out.Id)
	for _, o := range snap.Offerings(out.InstanceType, []string{out.Zone}) {
		if o.CapacityType == out.CapacityType {
			out.PricePerHour = o.Price
		}
	}
	return out
}

func hasTag(tags []ec2types.Tag, key string) bool {
	return slices.ContainsFunc(tags, func(t ec2types.Tag) bool { return aws.ToString(t.Key) == key })
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// lookupTimeout bounds one batched DescribeInstances, which serves many
// callers and so runs on its own context.
const lookupTimeout = 30 * time.Second
