package launch

import (
	"fmt"
	"maps"
	"sort"

	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// candidate is one compatible offering with the image it would boot.
type candidate struct {
	instancetype.Offering
	image *nodeclass.Image
}

// override is one (instance type, subnet) pair of a CreateFleet.
type override struct {
	candidate
	subnet nodeclass.Subnet
}

// launchPlan is what one CreateFleet will ask for.
type launchPlan struct {
	capacityType string
	overrides    []override
}

// plan picks the capacity type (spot when any spot offering is allowed and
// available) and the cheapest MaxOverrides (type, zone) offerings of it,
// each with its zone's subnet of most free addresses.
func (l *Launcher) plan(in launchInput, snap *instancetype.Snapshot, res *nodeclass.Resolved) (*launchPlan, error) {
	req := in.req
	subnets := l.usableSubnets(res.Subnets)
	avail, unavail := compatible(req, snap, res)
	avail, unavail = withSubnet(avail, unavail, subnets)
	if len(avail) == 0 && len(unavail) > 0 {
		e := &InsufficientCapacityError{NodeClaim: req.GetNodeClaim()}
		for _, c := range unavail {
			o := Offering{c.InstanceType, c.Zone, c.CapacityType}
			e.Offerings = append(e.Offerings, o)
			// A quota that refused the offering is still the cause while
			// its mark lasts.
			if r := l.o.Unavailable.Reason(unavailable.Key(o)); quotaErrorCodes[r] {
				e.addQuota(r)
			}
		}
		return nil, e
	}
	if len(avail) == 0 {
		return nil, fmt.Errorf("%w: no offering of the instance type options satisfies the requirements in zones %v of node class %s",
			apierr.ErrFailedPrecondition, res.Zones(), in.nc.GetName())
	}
	ct := instancetype.CapacityTypeOnDemand
	for _, c := range avail {
		if c.CapacityType == instancetype.CapacityTypeSpot {
			ct = instancetype.CapacityTypeSpot
			break
		}
	}
	var chosen []candidate
	for _, c := range avail {
		if c.CapacityType == ct {
			chosen = append(chosen, c)
		}
	}
	sort.Slice(chosen, func(i, j int) bool {
		a, b := chosen[i], chosen[j]
		if a.Price != b.Price {
			return a.Price < b.Price
		}
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		return a.Zone < b.Zone
	})
	p := &launchPlan{capacityType: ct}
	zonal := subnetPerZone(subnets)
	for _, c := range chosen {
		if len(p.overrides) == MaxOverrides {
			break
		}
		p.overrides = append(p.overrides, override{candidate: c, subnet: zonal[c.Zone]})
	}
	return p, nil
}

// subnetPerZone picks one subnet per zone, the one with the most free
// addresses, as Karpenter's ZonalSubnetsForLaunch does: each override is
// then one (instance type, zone), so the MaxOverrides cheapest offerings
// span every zone the NodeClaim allows, instead of spending overrides on
// several subnets of the cheapest type's zone. subnets are sorted by zone,
// then most free addresses first.
func subnetPerZone(subnets []nodeclass.Subnet) map[string]nodeclass.Subnet {
	out := map[string]nodeclass.Subnet{}
	for _, s := range subnets {
		if _, ok := out[s.Zone]; !ok {
			out[s.Zone] = s
		}
	}
	return out
}

// usableSubnets leaves out the subnets marked out of addresses until the
// marks expire, as Karpenter's IsUnavailable does with its subnet marks.
func (l *Launcher) usableSubnets(all []nodeclass.Subnet) []nodeclass.Subnet {
	var out []nodeclass.Subnet
	for _, s := range all {
		if !l.o.Unavailable.SubnetUnavailable(s.ID) {
			out = append(out, s)
		}
	}
	return out
}

// withSubnet moves the available candidates of zones without a usable
// subnet to the unavailable ones.
func withSubnet(avail, unavail []candidate, subnets []nodeclass.Subnet) ([]candidate, []candidate) {
	zones := map[string]bool{}
	for _, s := range subnets {
		zones[s.Zone] = true
	}
	var keep []candidate
	for _, c := range avail {
		if zones[c.Zone] {
			keep = append(keep, c)
		} else {
			unavail = append(unavail, c)
		}
	}
	return keep, unavail
}

// compatible lists the offerings (in the node class's zones) of the
// request's instance types that satisfy its requirements and have an
// image, split by availability.
func compatible(req *launcherv1.LaunchRequest, snap *instancetype.Snapshot, res *nodeclass.Resolved) (avail, unavail []candidate) {
	names := req.GetInstanceTypeOptions()
	if len(names) == 0 {
		names = sortedKeys(snap.Types)
	}
	zones := res.Zones()
	for _, name := range names {
		info := snap.Types[name]
		labels := info.Labels()
		image := pickImage(res.Images, labels)
		if image == nil {
			continue
		}
		// The requirements are checked per offering: zone and capacity
		// type are labels of an offering, not of the type.
		for _, o := range snap.Offerings(name, zones) {
			ol := maps.Clone(labels)
			ol[instancetype.LabelZone], ol[instancetype.LabelCapacityType] = o.Zone, o.CapacityType
			if snap.Region != "" {
				ol[instancetype.LabelRegion] = snap.Region
			}
			if !matches(req.GetRequirements(), ol) {
				continue
			}
			if o.Available {
				avail = append(avail, candidate{o, image})
			} else {
				unavail = append(unavail, candidate{o, image})
			}
		}
	}
	return avail, unavail
}

// pickImage is the first image whose requirements the type's labels meet.
func pickImage(images []nodeclass.Image, labels map[string]string) *nodeclass.Image {
	for i := range images {
		if matches(images[i].Requirements, labels) {
			return &images[i]
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
