// Package instancetype discovers the EC2 instance types a node class can
// launch: specs from DescribeInstanceTypes, zones from
// DescribeInstanceTypeOfferings, on-demand prices from the Pricing API (or,
// in an isolated VPC, the embedded catalog), spot prices from
// DescribeSpotPriceHistory. Results are cached and refreshed on demand once
// older than their interval; the clock is injected.
package instancetype

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Default refresh intervals.
const (
	DefaultRefresh         = 5 * time.Minute
	DefaultOnDemandRefresh = 12 * time.Hour
)

// Options configure a Provider.
type Options struct {
	EC2 EC2API
	// Pricing is unused (and may be nil) when IsolatedVPC is set.
	Pricing PricingAPI
	// Region is the region whose on-demand prices are read.
	Region string
	// IsolatedVPC takes on-demand prices from Embedded and never calls
	// the Pricing API.
	IsolatedVPC bool
	// Embedded is the compiled-in catalog, for isolated-VPC prices.
	Embedded []ec2catalog.Spec
	// Refresh is how long types, offerings and spot prices are reused;
	// OnDemandRefresh the same for on-demand prices.
	Refresh, OnDemandRefresh time.Duration
	// Unavailable marks offerings that lack capacity; may be nil.
	Unavailable *unavailable.Cache
	Now         func() time.Time
	Logger      *slog.Logger
}

type zoneKey struct{ instanceType, zone string }

// Snapshot is one consistent view of the catalog. It is never mutated.
type Snapshot struct {
	Types    map[string]Info
	Zones    map[string][]string // offered zones by type, sorted
	OnDemand map[string]float64
	Spot     map[zoneKey]float64
	// AllZones are every zone some type is offered in.
	AllZones map[string]bool
	// Region is the region of every offering ("" when unknown).
	Region string

	unavailable *unavailable.Cache
}

// Provider serves instance types. It is safe for concurrent use.
type Provider struct {
	o Options

	mu                    sync.Mutex
	types                 map[string]Info
	zones                 map[string][]string
	spot                  map[zoneKey]float64
	onDemand              map[string]float64
	typesAt, spotAt, odAt time.Time
}

// New makes a Provider; nothing is fetched until first use.
func New(o Options) *Provider {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.OnDemandRefresh <= 0 {
		o.OnDemandRefresh = DefaultOnDemandRefresh
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Provider{o: o}
}

// Snapshot returns the catalog, refreshing whatever part is stale. When a
// refresh fails but an older copy exists, the older copy is served and the
// failure logged.
func (p *Provider) Snapshot(ctx context.Context) (*Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.o.Now()
	if err := p.refreshTypes(ctx, now); err != nil {
		return nil, err
	}
	if err := p.refreshSpot(ctx, now); err != nil {
		return nil, err
	}
	if err := p.refreshOnDemand(ctx, now); err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for _, zs := range p.zones {
		for _, z := range zs {
			all[z] = true
		}
	}
	return &Snapshot{Types: p.types, Zones: p.zones, OnDemand: p.onDemand, Spot: p.spot, AllZones: all, Region: p.o.Region, unavailable: p.o.Unavailable}, nil
}

// keepOld turns a failed refresh into success when older data exists,
// logging the failure; without older data the error stands.
func (p *Provider) keepOld(what string, have bool, err error) error {
	if have {
		p.o.Logger.Warn("refresh failed; serving cached data", slog.String("what", what), slog.Any("error", err))
		return nil
	}
	return err
}

func (p *Provider) refreshTypes(ctx context.Context, now time.Time) error {
	if p.types != nil && now.Sub(p.typesAt) < p.o.Refresh {
		return nil
	}
	types, err := fetchTypes(ctx, p.o.EC2)
	if err != nil {
		return p.keepOld("instance types", p.types != nil, err)
	}
	zones, err := fetchOfferings(ctx, p.o.EC2)
	if err != nil {
		return p.keepOld("instance type offerings", p.types != nil, err)
	}
	for _, zs := range zones {
		sort.Strings(zs)
	}
	p.types, p.zones, p.typesAt = types, zones, now
	return nil
}

func (p *Provider) refreshSpot(ctx context.Context, now time.Time) error {
	if p.spot != nil && now.Sub(p.spotAt) < p.o.Refresh {
		return nil
	}
	spot, err := fetchSpot(ctx, p.o.EC2, now)
	if err != nil {
		return p.keepOld("spot prices", p.spot != nil, err)
	}
	p.spot, p.spotAt = spot, now
	return nil
}

func (p *Provider) refreshOnDemand(ctx context.Context, now time.Time) error {
	if p.onDemand != nil && now.Sub(p.odAt) < p.o.OnDemandRefresh {
		return nil
	}
	if p.o.IsolatedVPC {
		p.onDemand, p.odAt = embeddedPrices(p.o.Embedded), now
		return nil
	}
	od, err := fetchOnDemand(ctx, p.o.Pricing, p.o.Region)
	if err != nil {
		return p.keepOld("on-demand prices", p.onDemand != nil, err)
	}
	p.onDemand, p.odAt = od, now
	return nil
}

// Offering is one (zone, capacity type) of a type, priced.
type Offering struct {
	InstanceType, Zone, CapacityType string
	Price                            float64
	Available                        bool
}

// Offerings lists the type's offerings in the given zones (all offered
// zones when zones is nil): on-demand where an on-demand price is known,
// spot where a spot price is known. Available is false for offerings marked
// unavailable.
func (s *Snapshot) Offerings(name string, zones []string) []Offering {
	var out []Offering
	for _, z := range s.Zones[name] {
		if zones != nil && !slices.Contains(zones, z) {
			continue
		}
		if price, ok := s.Spot[zoneKey{name, z}]; ok {
			out = append(out, s.offering(name, z, CapacityTypeSpot, price))
		}
		if price, ok := s.OnDemand[name]; ok {
			out = append(out, s.offering(name, z, CapacityTypeOnDemand, price))
		}
	}
	return out
}

func (s *Snapshot) offering(name, zone, ct string, price float64) Offering {
	avail := s.unavailable == nil || !s.unavailable.Unavailable(unavailable.Key{InstanceType: name, Zone: zone, CapacityType: ct})
	return Offering{InstanceType: name, Zone: zone, CapacityType: ct, Price: price, Available: avail}
}

// List converts every type with an offering in zones to a typesv1
// InstanceType under the node class's kubelet settings and root volume
// size (rootGi GiB, the default when not positive), sorted by name.
func (p *Provider) List(ctx context.Context, zones []string, kubelet *launcherv1.KubeletConfiguration, rootGi int64) ([]*typesv1.InstanceType, error) {
	snap, err := p.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if zones == nil {
		zones = []string{}
	}
	var out []*typesv1.InstanceType
	for _, name := range sortedKeys(snap.Types) {
		offs := snap.Offerings(name, zones)
		if len(offs) == 0 {
			continue
		}
		it, err := Convert(snap.Types[name], offs, kubelet, rootGi)
		if err != nil {
			return nil, err
		}
		if snap.Region != "" {
			// Karpenter requires the region of every instance type it lists.
			it.Labels[LabelRegion] = snap.Region
		}
		out = append(out, it)
	}
	return out, nil
}

// Convert builds the typesv1 view of one type, with rootGi GiB of root
// volume (the default when not positive).
func Convert(info Info, offs []Offering, kubelet *launcherv1.KubeletConfiguration, rootGi int64) (*typesv1.InstanceType, error) {
	capacity := Capacity(info, MaxPods(info, kubelet), rootGi)
	alloc, err := Allocatable(capacity, kubelet)
	if err != nil {
		return nil, err
	}
	it := &typesv1.InstanceType{
		Name:        info.Name,
		Capacity:    quantityStrings(capacity),
		Allocatable: quantityStrings(alloc),
		Labels:      info.Labels(),
	}
	for _, o := range offs {
		it.Offerings = append(it.Offerings, &typesv1.Offering{
			Zone: o.Zone, CapacityType: o.CapacityType, PricePerHour: o.Price, Available: o.Available,
		})
	}
	return it, nil
}
