package planner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/catalog"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	launchernodeclass "github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// DefaultSpotPriceFactor is the spot price of an offline catalog row as a
// fraction of its on-demand price (ec2sim's default discount).
const DefaultSpotPriceFactor = 0.3

// CatalogTypes lists instance types from an offline catalog (the one
// compiled into the binary, or a CSV) the way the launcher lists them in an
// isolated VPC: the same capacity, allocatable (under the class's kubelet
// settings) and labels, offered on demand at the catalog price and on spot
// at SpotPriceFactor times it, in the zones of the class's resolved subnets
// (Zones when the class has none resolved).
type CatalogTypes struct {
	// Specs are the catalog rows.
	Specs []ec2catalog.Spec
	// SpotPriceFactor prices spot offerings; 0 offers no spot.
	SpotPriceFactor float64
	// Zones are used for classes without resolved subnets; empty means
	// catalog.DefaultZones.
	Zones []string

	mu    sync.Mutex
	cache map[string][]*typesv1.InstanceType
}

// InstanceTypes implements state.InstanceTypeSource.
func (c *CatalogTypes) InstanceTypes(_ context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := fmt.Sprintf("%s/%d", nc.Name, nc.Generation)
	if got, ok := c.cache[key]; ok {
		return got, nil
	}
	out, err := CatalogInstanceTypes(c.Specs, c.SpotPriceFactor, c.zonesOf(nc), nc)
	if err != nil {
		return nil, err
	}
	if c.cache == nil {
		c.cache = map[string][]*typesv1.InstanceType{}
	}
	c.cache[key] = out
	return out, nil
}

// zonesOf are the zones of the class's resolved subnets, sorted, or the
// default zones.
func (c *CatalogTypes) zonesOf(nc *awsv1.EC2NodeClass) []string {
	var zones []string
	for _, s := range nc.Status.Subnets {
		if s.Zone != "" && !slices.Contains(zones, s.Zone) {
			zones = append(zones, s.Zone)
		}
	}
	if len(zones) == 0 {
		zones = c.Zones
	}
	if len(zones) == 0 {
		zones = catalog.DefaultZones
	}
	slices.Sort(zones)
	return zones
}

// CatalogInstanceTypes turns offline catalog rows into instance types the
// way the launcher does in an isolated VPC: capacity, allocatable (under
// the class's kubelet settings and root volume; a zero EC2NodeClass means
// the launcher's defaults) and labels from instancetype.Convert, offered in
// every zone on demand at the catalog price and, when spotPriceFactor is
// above 0, on spot at spotPriceFactor times it (rounded to $0.0001, at
// least $0.0001). CatalogTypes and `flotilla solve` share it.
func CatalogInstanceTypes(specs []ec2catalog.Spec, spotPriceFactor float64, zones []string, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	if len(specs) == 0 {
		return nil, errors.New("the instance type catalog is empty")
	}
	lnc := launchernodeclass.FromEC2NodeClass(nc)
	kubelet := lnc.GetKubelet()
	family := ""
	for _, t := range nc.Spec.AMISelectorTerms {
		if f, _, ok := strings.Cut(t.Alias, "@"); ok {
			family = f
			break
		}
	}
	root := launchernodeclass.RootVolumeGi(lnc, family)
	out := make([]*typesv1.InstanceType, 0, len(specs))
	for _, s := range specs {
		it, err := instancetype.Convert(instancetype.InfoFromSpec(s), catalogOfferings(s, zones, spotPriceFactor), kubelet, root)
		if err != nil {
			if nc.Name == "" {
				return nil, fmt.Errorf("instance type %s: %w", s.Name, err)
			}
			return nil, fmt.Errorf("EC2NodeClass %s: instance type %s: %w", nc.Name, s.Name, err)
		}
		out = append(out, it)
	}
	return out, nil
}

func catalogOfferings(s ec2catalog.Spec, zones []string, spotPriceFactor float64) []instancetype.Offering {
	var out []instancetype.Offering
	for _, z := range zones {
		if spotPriceFactor > 0 {
			spot := math.Max(math.Round(s.OnDemandPrice*spotPriceFactor*1e4)/1e4, 0.0001)
			out = append(out, instancetype.Offering{InstanceType: s.Name, Zone: z, CapacityType: instancetype.CapacityTypeSpot, Price: spot, Available: true})
		}
		out = append(out, instancetype.Offering{InstanceType: s.Name, Zone: z, CapacityType: instancetype.CapacityTypeOnDemand, Price: s.OnDemandPrice, Available: true})
	}
	return out
}

// launcherTypes lists instance types through the launcher, as the watcher
// does, and turns a launcher that does not answer into ErrUnreachable
// (the watcher would skip the NodePool instead, which would hide it).
type launcherTypes struct {
	src  state.InstanceTypeSource
	addr string
}

func (l launcherTypes) InstanceTypes(ctx context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	types, err := l.src.InstanceTypes(ctx, nc)
	if err != nil && unreachableCode(err) {
		return nil, kindErrorf(ErrUnreachable, "the launcher at %s does not answer: %v", l.addr, status.Convert(err).Message())
	}
	return types, err
}

// unreachableCode reports whether a gRPC error means the service did not
// answer.
func unreachableCode(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
