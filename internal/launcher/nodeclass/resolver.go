// Package nodeclass resolves an EC2NodeClass's selector terms into subnets,
// security groups, AMIs and an instance profile, with status conditions.
// Aliases (al2023@latest, al2@v20240807, bottlerocket@1.20.5) resolve through
// the public EKS and Bottlerocket SSM parameters. Results are cached for a
// TTL measured on an injected clock.
package nodeclass

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"google.golang.org/protobuf/proto"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// DefaultTTL is how long a resolution is reused.
const DefaultTTL = time.Minute

// EC2API is the part of the EC2 client the resolver uses.
type EC2API interface {
	ec2.DescribeSubnetsAPIClient
	ec2.DescribeSecurityGroupsAPIClient
	ec2.DescribeImagesAPIClient
}

// SSMAPI is the part of the SSM client the resolver uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// VersionSource gives the nodes' Kubernetes version (kubeversion.Source).
type VersionSource interface {
	Get(ctx context.Context) (string, error)
}

// Options configure a Resolver.
type Options struct {
	EC2 EC2API
	SSM SSMAPI
	// KubernetesVersion gives the nodes' version (such as 1.31), which
	// picks the alias SSM parameters.
	KubernetesVersion VersionSource
	// IAM and Cluster let the resolver manage the instance profile of a
	// node class that names a role (Resolve reads it, EnsureInstanceProfile
	// makes it); without IAM, the role's same-named profile is used.
	IAM     IAMAPI
	Cluster string
	// TTL is how long a resolution is reused; 0 means DefaultTTL.
	TTL    time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Subnet is a resolved subnet.
type Subnet struct {
	ID, Zone     string
	AvailableIPs int32
}

// Image is a resolved AMI.
type Image struct {
	ID, Name string
	// Family is the image's AMI family: the alias's, or the class's
	// amiFamily for an image selected by id, name or tags.
	Family string
	// Deprecated is true once the image's deprecation time has passed; it
	// still launches, after every image that is not deprecated.
	Deprecated bool
	// Requirements say which instance types the image serves.
	Requirements []*typesv1.Requirement
	created      string
}

// Resolved is a resolved node class.
type Resolved struct {
	Subnets          []Subnet // by zone, then most free addresses first
	SecurityGroupIDs []string // sorted
	Images           []Image  // first match wins
	InstanceProfile  string
	Conditions       []*launcherv1.Condition
	profileProblem   *profileProblem
}

// Resolver resolves node classes. It is safe for concurrent use.
type Resolver struct {
	o        Options
	mu       sync.Mutex
	cache    map[string]cached
	profiles map[string]time.Time // managed instance profile → when found in place
	ensureMu sync.Mutex           // serializes EnsureInstanceProfile
}

// cached is a resolution, or (done != nil) one in progress.
type cached struct {
	at   time.Time
	r    *Resolved
	done chan struct{}
}

// New makes a Resolver.
func New(o Options) *Resolver {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Resolver{o: o, cache: map[string]cached{}, profiles: map[string]time.Time{}}
}

// Resolve validates nc (an error wrapping apierr.ErrInvalidArgument names
// the bad field) and resolves it, reusing a resolution younger than the
// TTL. A selector that matches nothing is not an error: its condition is
// False with a reason. Resolve only reads AWS; it never makes an instance
// profile.
func (r *Resolver) Resolve(ctx context.Context, nc *launcherv1.NodeClass) (*Resolved, error) {
	if err := Validate(nc); err != nil {
		return nil, err
	}
	key := cacheKey(nc)
	for {
		now := r.o.Now()
		r.mu.Lock()
		c, ok := r.cache[key]
		if ok && c.done == nil && now.Sub(c.at) < r.o.TTL {
			r.mu.Unlock()
			return c.r, nil
		}
		if ok && c.done != nil { // another caller is resolving: wait for it
			r.mu.Unlock()
			select {
			case <-c.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		r.cache[key] = cached{done: done}
		r.mu.Unlock()

		res, err := r.resolve(ctx, nc)
		r.mu.Lock()
		if err != nil {
			delete(r.cache, key)
		} else {
			r.cache[key] = cached{at: now, r: res}
			r.trimLocked(now)
		}
		r.mu.Unlock()
		close(done)
		return res, err
	}
}

// maxCached bounds the resolutions kept: a cluster has a handful of
// classes, but ListInstanceTypes takes inline classes from any caller.
const maxCached = 1024

// trimLocked keeps the cache within maxCached: expired resolutions go
// first, then, if need be, any finished one. Call with r.mu held.
func (r *Resolver) trimLocked(now time.Time) {
	if len(r.cache) <= maxCached {
		return
	}
	for k, c := range r.cache {
		if c.done == nil && now.Sub(c.at) >= r.o.TTL {
			delete(r.cache, k)
		}
	}
	for k, c := range r.cache {
		if len(r.cache) <= maxCached {
			return
		}
		if c.done == nil {
			delete(r.cache, k)
		}
	}
}

func cacheKey(nc *launcherv1.NodeClass) string {
	k := &launcherv1.NodeClass{
		SubnetSelectorTerms:        nc.GetSubnetSelectorTerms(),
		SecurityGroupSelectorTerms: nc.GetSecurityGroupSelectorTerms(),
		AmiSelectorTerms:           nc.GetAmiSelectorTerms(),
		Role:                       nc.GetRole(),
		InstanceProfile:            nc.GetInstanceProfile(),
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(k)
	return string(b)
}

func (r *Resolver) resolve(ctx context.Context, nc *launcherv1.NodeClass) (*Resolved, error) {
	subnets, err := r.subnets(ctx, nc.GetSubnetSelectorTerms())
	if err != nil {
		return nil, err
	}
	sgs, err := r.securityGroups(ctx, nc.GetSecurityGroupSelectorTerms())
	if err != nil {
		return nil, err
	}
	images, err := r.images(ctx, nc.GetAmiSelectorTerms())
	if err != nil {
		return nil, err
	}
	for i := range images {
		if images[i].Family == "" {
			images[i].Family = string(FamilyOf(nc))
		}
	}
	res := &Resolved{Subnets: subnets, SecurityGroupIDs: sgs, Images: images}
	res.InstanceProfile, res.profileProblem, err = r.instanceProfile(ctx, nc)
	if err != nil {
		return nil, err
	}
	res.Conditions = conditions(res, nc)
	return res, nil
}

// Zones are the zones of the resolved subnets, sorted, without repeats.
func (r *Resolved) Zones() []string {
	var out []string
	for _, s := range r.Subnets {
		if len(out) == 0 || out[len(out)-1] != s.Zone {
			out = append(out, s.Zone)
		}
	}
	return out
}

// Ready reports whether every condition is True.
func (r *Resolved) Ready() bool {
	for _, c := range r.Conditions {
		if c.GetStatus() != "True" {
			return false
		}
	}
	return true
}

// Proto is the ResolveNodeClass response.
func (r *Resolved) Proto() *launcherv1.ResolveNodeClassResponse {
	out := &launcherv1.ResolveNodeClassResponse{
		SecurityGroupIds: r.SecurityGroupIDs,
		InstanceProfile:  r.InstanceProfile,
		Conditions:       r.Conditions,
	}
	for _, s := range r.Subnets {
		out.Subnets = append(out.Subnets, &launcherv1.ResolvedSubnet{Id: s.ID, Zone: s.Zone})
	}
	for _, im := range r.Images {
		out.Images = append(out.Images, &launcherv1.ResolvedImage{Id: im.ID, Name: im.Name, Requirements: im.Requirements})
	}
	return out
}
