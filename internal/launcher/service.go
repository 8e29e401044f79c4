// Package launcher serves flotilla.launcher.v1.LauncherService: instance
// types (instancetype), node class resolution (nodeclass) and launches
// (launch), all through aws-sdk-go-v2 clients (awsclient), with node
// classes read by name from the API server (classes). Domain errors wrap
// apierr sentinels and are mapped by internal/server; an insufficient
// capacity error becomes codes.ResourceExhausted here, with an ErrorInfo
// detail listing the offerings.
//
// The service refuses what is not its job, whoever calls: node-class
// content never comes over the wire for a launch or a resolution (only a
// name), the cluster is Config.ClusterName and never a request's, Terminate
// only terminates an instance tagged for this cluster, a NodePool and the
// NodeClaim named, and MarkUnavailable only takes short marks of offerings
// the catalog has.
package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/kubeversion"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Config configures a Service.
type Config struct {
	AWS awsclient.Config
	// Classes reads EC2NodeClasses by name (classes.Cache in the service);
	// required.
	Classes classes.Getter
	// ClusterName is the launcher's cluster (--cluster-name); a request
	// naming another one is refused.
	ClusterName string
	// KubernetesVersion pins the nodes' Kubernetes version (such as 1.31),
	// which picks the AMI alias SSM parameters; empty, it comes from
	// KubernetesVersionSource (the API server's /version).
	KubernetesVersion       string
	KubernetesVersionSource *kubeversion.Source
	// ClusterEndpoint, ClusterCA and ClusterCIDR go into user data.
	ClusterEndpoint, ClusterCA, ClusterCIDR string
	// Refresh and OnDemandRefresh are the instance type cache intervals.
	Refresh, OnDemandRefresh time.Duration
	// NodeClassTTL is how long a node class resolution is reused.
	NodeClassTTL time.Duration
	// BatchWindow is how long a launch waits for others of the same fleet
	// spec to share its CreateFleet: 0 means launch.DefaultBatchWindow, a
	// negative value turns batching off.
	BatchWindow time.Duration
	// MaxBatch caps the NodeClaims of one CreateFleet (0:
	// launch.DefaultMaxBatch).
	MaxBatch int
	// TemplateGrace is how long a launch template this launcher made may
	// go unused before RunCleanup deletes it (0: launch.DefaultTemplateGrace);
	// CleanupInterval is how often RunCleanup looks (0:
	// launch.DefaultCleanupInterval).
	TemplateGrace, CleanupInterval time.Duration
	Metrics                        *metrics.Metrics
	Now                            func() time.Time
	Logger                         *slog.Logger
}

// Service implements LauncherServiceServer.
type Service struct {
	launcherv1.UnimplementedLauncherServiceServer
	Types       *instancetype.Provider
	NodeClasses *nodeclass.Resolver
	Launcher    *launch.Launcher
	now         func() time.Time
	cfg         Config
}

// New builds the AWS clients and the service.
func New(ctx context.Context, c Config) (*Service, error) {
	switch {
	case c.Classes == nil:
		return nil, errors.New("launcher: Config.Classes is required")
	case c.ClusterName == "":
		return nil, errors.New("launcher: Config.ClusterName is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.AWS.Metrics = c.Metrics
	clients, err := awsclient.New(ctx, c.AWS)
	if err != nil {
		return nil, err
	}
	unavail := unavailable.New(c.Now)
	typeOpts := instancetype.Options{
		EC2: clients.EC2, Region: c.AWS.Region, IsolatedVPC: c.AWS.IsolatedVPC, Embedded: ec2catalog.Embedded(),
		Refresh: c.Refresh, OnDemandRefresh: c.OnDemandRefresh, Unavailable: unavail, Now: c.Now, Logger: c.Logger,
	}
	if clients.Pricing != nil {
		typeOpts.Pricing = clients.Pricing
	}
	types := instancetype.New(typeOpts)
	k8s := c.KubernetesVersionSource
	if c.KubernetesVersion != "" {
		k8s = kubeversion.Fixed(c.KubernetesVersion)
	}
	if k8s == nil {
		return nil, errors.New("launcher config: KubernetesVersion or KubernetesVersionSource is required")
	}
	classOpts := nodeclass.Options{
		EC2: clients.EC2, SSM: clients.SSM, KubernetesVersion: k8s, TTL: c.NodeClassTTL, Now: c.Now, Logger: c.Logger,
		Cluster: c.ClusterName,
	}
	if clients.IAM != nil {
		classOpts.IAM = clients.IAM
	}
	classes := nodeclass.New(classOpts)
	if c.BatchWindow == 0 {
		c.BatchWindow = launch.DefaultBatchWindow
	}
	l := launch.New(launch.Options{
		EC2: clients.EC2, Types: types, NodeClasses: classes, Unavailable: unavail, Cluster: c.ClusterName,
		ClusterEndpoint: c.ClusterEndpoint, ClusterCA: c.ClusterCA, ClusterCIDR: c.ClusterCIDR,
		BatchWindow: max(c.BatchWindow, 0), MaxBatch: c.MaxBatch,
		Metrics: c.Metrics, Now: c.Now, Logger: c.Logger,
	})
	return &Service{Types: types, NodeClasses: classes, Launcher: l, now: c.Now, cfg: c}, nil
}

// RunCleanup deletes the launch templates that went unused for
// Config.TemplateGrace, every Config.CleanupInterval, until ctx is done.
func (s *Service) RunCleanup(ctx context.Context) {
	s.Launcher.RunCleanup(ctx, s.cfg.CleanupInterval, s.cfg.TemplateGrace)
}

// ListInstanceTypes lists the types the node class can launch in its
// zones: the EC2NodeClass named, or the inline class (no side effects, so
// any class may be asked about).
func (s *Service) ListInstanceTypes(ctx context.Context, req *launcherv1.ListInstanceTypesRequest) (*launcherv1.ListInstanceTypesResponse, error) {
	nc := req.GetNodeClass()
	switch {
	case req.GetNodeClassName() != "" && nc != nil:
		return nil, fmt.Errorf("%w: node_class and node_class_name: set one", apierr.ErrInvalidArgument)
	case req.GetNodeClassName() == "" && nc == nil:
		return nil, fmt.Errorf("%w: node_class_name: empty (name an EC2NodeClass, or send one in node_class)", apierr.ErrInvalidArgument)
	case req.GetNodeClassName() != "":
		read, _, err := s.classNamed(ctx, req.GetNodeClassName())
		if err != nil {
			return nil, err
		}
		nc = read
	}
	res, err := s.NodeClasses.Resolve(ctx, nc)
	if err != nil {
		return nil, err
	}
	family := ""
	if len(res.Images) > 0 {
		family = res.Images[0].Family
	}
	root := nodeclass.RootVolumeGi(nc, family)
	types, err := s.Types.List(ctx, res.Zones(), nc.GetKubelet(), root)
	if err != nil {
		return nil, err
	}
	return &launcherv1.ListInstanceTypesResponse{InstanceTypes: types}, nil
}

// ResolveNodeClass resolves the EC2NodeClass named. It only reads: a
// managed instance profile not in place yet is reported, not made.
func (s *Service) ResolveNodeClass(ctx context.Context, req *launcherv1.ResolveNodeClassRequest) (*launcherv1.ResolveNodeClassResponse, error) {
	if err := refuseInline(req.GetNodeClass()); err != nil { //nolint:staticcheck // read to refuse it
		return nil, err
	}
	nc, generation, err := s.classNamed(ctx, req.GetNodeClassName())
	if err != nil {
		return nil, err
	}
	res, err := s.NodeClasses.Resolve(ctx, nc)
	if err != nil {
		return nil, err
	}
	out := res.Proto()
	out.NodeClassGeneration = generation
	return out, nil
}

// Launch launches (or finds) the NodeClaim's instance with the EC2NodeClass
// named.
func (s *Service) Launch(ctx context.Context, req *launcherv1.LaunchRequest) (*launcherv1.LaunchResponse, error) {
	if err := refuseInline(req.GetNodeClass()); err != nil { //nolint:staticcheck // read to refuse it
		return nil, err
	}
	if err := s.checkCluster(req.GetCluster()); err != nil { //nolint:staticcheck // read to refuse another cluster
		return nil, err
	}
	nc, _, err := s.classNamed(ctx, req.GetNodeClassName())
	if err != nil {
		return nil, err
	}
	inst, err := s.Launcher.Launch(ctx, req, nc)
	if err != nil {
		return nil, capacityStatus(err)
	}
	return &launcherv1.LaunchResponse{Instance: inst}, nil
}

// classNamed reads the EC2NodeClass name and converts it; it returns the
// class's generation too.
func (s *Service) classNamed(ctx context.Context, name string) (*launcherv1.NodeClass, int64, error) {
	if name == "" {
		return nil, 0, fmt.Errorf("%w: node_class_name: empty", apierr.ErrInvalidArgument)
	}
	obj, err := s.cfg.Classes.Get(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	return nodeclass.FromEC2NodeClass(obj), obj.Generation, nil
}

// refuseInline refuses a node class sent over the wire: launch settings
// (AMIs, user data, metadata options, network, role) come only from
// EC2NodeClass objects, which only those allowed to write them can change.
func refuseInline(nc *launcherv1.NodeClass) error {
	if nc != nil {
		return fmt.Errorf("%w: node_class: inline node classes are refused; name the EC2NodeClass in node_class_name", apierr.ErrInvalidArgument)
	}
	return nil
}

// checkCluster refuses a request naming a cluster other than the
// launcher's; an empty name means the launcher's.
func (s *Service) checkCluster(cluster string) error {
	if cluster != "" && cluster != s.cfg.ClusterName {
		return fmt.Errorf("%w: cluster: %q is not this launcher's cluster %q", apierr.ErrInvalidArgument, cluster, s.cfg.ClusterName)
	}
	return nil
}

// capacityStatus turns an insufficient-capacity error into
// codes.ResourceExhausted with an ErrorInfo; other errors pass through.
// The metadata names the NodeClaim, the offerings tried and, when an
// account quota stopped the launch, the quota error codes ("quota", e.g.
// "VcpuLimitExceeded"), so a caller can tell a quota to raise from EC2
// running out of capacity.
func capacityStatus(err error) error {
	var ice *launch.InsufficientCapacityError
	if !errors.As(err, &ice) {
		return err
	}
	names := make([]string, len(ice.Offerings))
	for i, o := range ice.Offerings {
		names[i] = o.String()
	}
	md := map[string]string{apierr.MetadataNodeClaim: ice.NodeClaim, apierr.MetadataOfferings: strings.Join(names, ",")}
	if len(ice.Quotas) > 0 {
		md[apierr.MetadataQuota] = strings.Join(ice.Quotas, ",")
	}
	st, derr := status.New(codes.ResourceExhausted, err.Error()).WithDetails(&errdetails.ErrorInfo{
		Reason: apierr.ReasonInsufficientCapacity, Domain: apierr.ErrorDomain, Metadata: md,
	})
	if derr != nil {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return st.Err()
}

// Terminate terminates a NodeClaim's instance after checking its tags.
func (s *Service) Terminate(ctx context.Context, req *launcherv1.TerminateRequest) (*launcherv1.TerminateResponse, error) {
	state, err := s.Launcher.Terminate(ctx, req.GetInstanceId(), req.GetNodeClaim())
	if err != nil {
		return nil, err
	}
	return &launcherv1.TerminateResponse{State: state}, nil
}

// ListInstances lists the cluster's live instances.
func (s *Service) ListInstances(ctx context.Context, req *launcherv1.ListInstancesRequest) (*launcherv1.ListInstancesResponse, error) {
	if err := s.checkCluster(req.GetCluster()); err != nil { //nolint:staticcheck // read to refuse another cluster
		return nil, err
	}
	insts, err := s.Launcher.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	return &launcherv1.ListInstancesResponse{Instances: insts}, nil
}

// MarkUnavailable marks an offering of the catalog unavailable for at most
// launch.MaxUnavailableTTL.
func (s *Service) MarkUnavailable(ctx context.Context, req *launcherv1.MarkUnavailableRequest) (*launcherv1.MarkUnavailableResponse, error) {
	var ttl time.Duration
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: ttl: %w", apierr.ErrInvalidArgument, err)
		}
		ttl = req.GetTtl().AsDuration()
	}
	until, err := s.Launcher.MarkUnavailable(ctx, launch.Offering{
		InstanceType: req.GetInstanceType(), Zone: req.GetZone(), CapacityType: req.GetCapacityType(),
	}, ttl)
	if err != nil {
		return nil, err
	}
	return &launcherv1.MarkUnavailableResponse{Until: timestamppb.New(until)}, nil
}
