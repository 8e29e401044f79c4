// Package launch launches and terminates EC2 instances for NodeClaims with
// CreateFleet (type instant). Launches are idempotent per NodeClaim: a
// tagged-instance lookup (batched across concurrent launches) finds an
// instance from an earlier attempt, even one made before a restart. Each
// CreateFleet gets a fresh ClientToken (EC2 would replay an earlier
// answer, errors included, for hours). Offerings that lack capacity are
// marked unavailable for three minutes, as are subnets out of addresses
// and, when the account cannot launch spot, the spot capacity type.
package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Tag keys put on launched resources.
const (
	TagNodeClaim = "karpenter.sh/nodeclaim"
	TagNodePool  = "karpenter.sh/nodepool"
	TagNodeClass = "karpenter.k8s.aws/ec2nodeclass"
	TagName      = "Name"
)

// ClusterTag is the ownership tag key of a cluster's resources.
func ClusterTag(cluster string) string { return "kubernetes.io/cluster/" + cluster }

// MaxOverrides caps the (instance type, subnet) pairs of one CreateFleet.
const MaxOverrides = 60

// EC2API is the part of the EC2 client the launcher uses.
type EC2API interface {
	CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	CreateLaunchTemplate(ctx context.Context, in *ec2.CreateLaunchTemplateInput, opts ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error)
	DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, opts ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DeleteLaunchTemplate(ctx context.Context, in *ec2.DeleteLaunchTemplateInput, opts ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	ec2.DescribeInstancesAPIClient
}

// Options configure a Launcher.
type Options struct {
	EC2         EC2API
	Types       *instancetype.Provider
	NodeClasses *nodeclass.Resolver
	Unavailable *unavailable.Cache
	// Cluster is the launcher's cluster (--cluster-name): the ownership tag
	// of everything it launches and the only cluster whose instances it
	// lists and terminates. Requests never choose it.
	Cluster string
	// ClusterEndpoint, ClusterCA (base64 PEM) and ClusterCIDR go into
	// user data when set.
	ClusterEndpoint, ClusterCA, ClusterCIDR string
	// BatchWindow is how long a launch waits for others of the same fleet
	// spec (launch templates, overrides, capacity type, shared tags) to
	// share one CreateFleet; 0 sends each launch on its own.
	BatchWindow time.Duration
	// MaxBatch caps the NodeClaims of one CreateFleet (DefaultMaxBatch
	// when <= 0).
	MaxBatch int
	Metrics  *metrics.Metrics
	Now      func() time.Time
	Logger   *slog.Logger
}

// Launcher launches instances. It is safe for concurrent use.
type Launcher struct {
	o         Options
	templates *templateCache
	lookups   *lookupBatcher
	fleets    *fleetBatcher // nil when batching is off
	claims    keyedMutex
	started   time.Time
}

// New makes a Launcher.
func New(o Options) *Launcher {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Unavailable == nil {
		o.Unavailable = unavailable.New(o.Now)
	}
	l := &Launcher{o: o, templates: newTemplateCache(), started: o.Now()}
	l.lookups = newLookupBatcher(l.describeClaims)
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.BatchWindow > 0 && o.MaxBatch > 1 {
		l.fleets = newFleetBatcher(o.BatchWindow, o.MaxBatch, l.runBatch)
	}
	return l
}

// Launch returns the instance of req's NodeClaim, launching one with node
// class nc (the EC2NodeClass req names, as the caller read it from the API
// server) when none exists. The managed instance profile of nc's role is
// made here when missing, and nowhere else. Errors:
// apierr.ErrInvalidArgument for a bad request (checked before any launch
// call), apierr.ErrFailedPrecondition for a node class that is not ready,
// whose instance profile cannot be made, or that allows no offering,
// *InsufficientCapacityError when every allowed offering lacks capacity.
func (l *Launcher) Launch(ctx context.Context, req *launcherv1.LaunchRequest, nc *launcherv1.NodeClass) (*launcherv1.Instance, error) {
	start := time.Now()
	inst, result, err := l.launch(ctx, req, nc)
	switch {
	case IsInsufficientCapacity(err):
		result = "insufficient_capacity"
	case err != nil:
		result = "error"
	}
	l.o.Metrics.Launch(result, time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", req.GetNodeClaim(), err)
	}
	return inst, nil
}

func (l *Launcher) launch(ctx context.Context, req *launcherv1.LaunchRequest, nc *launcherv1.NodeClass) (*launcherv1.Instance, string, error) {
	cluster, err := l.validate(req, nc)
	if err != nil {
		return nil, "", err
	}
	snap, err := l.o.Types.Snapshot(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("instance types: %w", err)
	}
	if err := validateAgainst(req, snap); err != nil {
		return nil, "", err
	}
	unlock := l.claims.lock(cluster + "/" + req.GetNodeClaim())
	defer unlock()
	if inst, err := l.existing(ctx, cluster, req.GetNodeClaim(), snap); err != nil || inst != nil {
		return inst, "existing", err
	}
	res, err := l.o.NodeClasses.Resolve(ctx, nc)
	if err != nil {
		return nil, "", fmt.Errorf("node class %s: %w", nc.GetName(), err)
	}
	if !res.Ready() {
		return nil, "", fmt.Errorf("%w: node class %s is not ready: %v", apierr.ErrFailedPrecondition, nc.GetName(), res.Conditions)
	}
	if err := l.o.NodeClasses.EnsureInstanceProfile(ctx, nc); err != nil {
		return nil, "", fmt.Errorf("node class %s: %w", nc.GetName(), err)
	}
	inst, err := l.planAndLaunch(ctx, launchInput{cluster: cluster, req: req, nc: nc}, snap, res)
	return inst, "launched", err
}

// launchAttempts is how often a launch plans again after its fleet found
// no capacity: the offerings that failed are then marked unavailable, so
// the second plan tries the next ones (other types, zones or capacity
// type), and only when none is left does the caller get the typed error.
const launchAttempts = 2

// launchInput is what one launch is for: the cluster, the request and the
// node class read for it.
type launchInput struct {
	cluster string
	req     *launcherv1.LaunchRequest
	nc      *launcherv1.NodeClass
}

func (l *Launcher) planAndLaunch(ctx context.Context, in launchInput, snap *instancetype.Snapshot, res *nodeclass.Resolved) (*launcherv1.Instance, error) {
	// quotas are the quota codes of the attempts so far: a quota error of
	// the first attempt (spot, say) stays named when the second (on-demand)
	// fails too.
	var quotas []string
	var err error
	for range launchAttempts {
		var p *launchPlan
		var inst *launcherv1.Instance
		if p, err = l.plan(in, snap, res); err == nil {
			inst, err = l.createFleet(ctx, in, res, p)
		}
		var ice *InsufficientCapacityError
		if !errors.As(err, &ice) {
			return inst, err
		}
		for _, q := range quotas {
			ice.addQuota(q)
		}
		quotas = ice.Quotas
	}
	return nil, err
}

// validate checks the request and its node class without calling AWS and
// returns the cluster.
func (l *Launcher) validate(req *launcherv1.LaunchRequest, nc *launcherv1.NodeClass) (string, error) {
	switch {
	case l.o.Cluster == "":
		return "", fmt.Errorf("%w: the launcher has no cluster name", apierr.ErrFailedPrecondition)
	case req.GetNodeClaim() == "":
		return "", fmt.Errorf("%w: node_claim: empty", apierr.ErrInvalidArgument)
	}
	if err := nodeclass.Validate(nc); err != nil {
		return "", err
	}
	return l.o.Cluster, checkRequirements(req.GetRequirements())
}

// validateAgainst rejects instance types and zones the region does not have.
func validateAgainst(req *launcherv1.LaunchRequest, snap *instancetype.Snapshot) error {
	for i, name := range req.GetInstanceTypeOptions() {
		if _, ok := snap.Types[name]; !ok {
			return fmt.Errorf("%w: instance_type_options[%d]: unknown instance type %q", apierr.ErrInvalidArgument, i, name)
		}
	}
	for _, name := range inValues(req.GetRequirements(), instancetype.LabelInstanceType) {
		if _, ok := snap.Types[name]; !ok {
			return fmt.Errorf("%w: requirements: unknown instance type %q", apierr.ErrInvalidArgument, name)
		}
	}
	for _, z := range inValues(req.GetRequirements(), instancetype.LabelZone) {
		if !snap.AllZones[z] {
			return fmt.Errorf("%w: requirements: unknown zone %q", apierr.ErrInvalidArgument, z)
		}
	}
	return nil
}

// MaxUnavailableTTL is unavailable.MaxTTL, the longest a caller may mark
// an offering unavailable.
const MaxUnavailableTTL = unavailable.MaxTTL

// MarkUnavailable marks an offering of the catalog unavailable for ttl
// (unavailable.DefaultTTL when 0, at most MaxUnavailableTTL) and returns
// when it expires. The instance type must be in the catalog, the zone in
// the region, the capacity type spot, on-demand or reserved; anything else
// wraps apierr.ErrInvalidArgument naming the field, and marks nothing.
func (l *Launcher) MarkUnavailable(ctx context.Context, o Offering, ttl time.Duration) (time.Time, error) {
	switch {
	case ttl < 0:
		return time.Time{}, fmt.Errorf("%w: ttl: %s is negative", apierr.ErrInvalidArgument, ttl)
	case ttl > MaxUnavailableTTL:
		return time.Time{}, fmt.Errorf("%w: ttl: %s is longer than %s", apierr.ErrInvalidArgument, ttl, MaxUnavailableTTL)
	case o.InstanceType == "":
		return time.Time{}, fmt.Errorf("%w: instance_type: empty", apierr.ErrInvalidArgument)
	case o.Zone == "":
		return time.Time{}, fmt.Errorf("%w: zone: empty", apierr.ErrInvalidArgument)
	case !slices.Contains(capacityTypes, o.CapacityType):
		return time.Time{}, fmt.Errorf("%w: capacity_type: %q is none of %s", apierr.ErrInvalidArgument, o.CapacityType, strings.Join(capacityTypes, ", "))
	}
	snap, err := l.o.Types.Snapshot(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("instance types: %w", err)
	}
	if _, ok := snap.Types[o.InstanceType]; !ok {
		return time.Time{}, fmt.Errorf("%w: instance_type: %q is not in the catalog", apierr.ErrInvalidArgument, o.InstanceType)
	}
	if !snap.AllZones[o.Zone] {
		return time.Time{}, fmt.Errorf("%w: zone: %q is not a zone of the region", apierr.ErrInvalidArgument, o.Zone)
	}
	return l.o.Unavailable.Mark(unavailable.Key(o), ttl), nil
}

// capacityTypes are the capacity types an offering can have.
var capacityTypes = []string{instancetype.CapacityTypeSpot, instancetype.CapacityTypeOnDemand, instancetype.CapacityTypeReserved}
