package launch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Offering names one (instance type, zone, capacity type).
type Offering struct {
	InstanceType, Zone, CapacityType string
}

func (o Offering) String() string { return o.InstanceType + "/" + o.Zone + "/" + o.CapacityType }

// InsufficientCapacityError says no instance launched because every
// offering tried (or allowed) lacks capacity. The offerings are marked
// unavailable; the caller should plan again without them.
type InsufficientCapacityError struct {
	NodeClaim string
	Offerings []Offering
	// Quotas are the account quota error codes (VcpuLimitExceeded,
	// MaxSpotInstanceCountExceeded, MaxFleetCountExceeded) behind the
	// failure, sorted, without repeats; empty when only EC2's capacity
	// lacked.
	Quotas []string
}

func (e *InsufficientCapacityError) Error() string {
	names := make([]string, len(e.Offerings))
	for i, o := range e.Offerings {
		names[i] = o.String()
	}
	msg := fmt.Sprintf("launch %s: insufficient capacity for offerings %s", e.NodeClaim, strings.Join(names, ","))
	if len(e.Quotas) > 0 {
		msg += " (account quota exceeded: " + strings.Join(e.Quotas, ",") + ")"
	}
	return msg
}

// addQuota records a quota code once, keeping Quotas sorted.
func (e *InsufficientCapacityError) addQuota(code string) {
	if i, found := slices.BinarySearch(e.Quotas, code); !found {
		e.Quotas = slices.Insert(e.Quotas, i, code)
	}
}

// IsInsufficientCapacity reports whether err is, or wraps, an
// *InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var e *InsufficientCapacityError
	return errors.As(err, &e)
}

// What a CreateFleet error code marks unavailable. The facts come from
// Karpenter's AWS provider (aws/karpenter-provider-aws at 1d927085dd81,
// August 2026: pkg/errors/errors.go unfulfillableCapacityErrorCodes and
// IsServiceLinkedRoleCreationNotPermitted; pkg/providers/instance/instance.go
// updateUnavailableOfferingsCache; 3-minute TTL from pkg/cache/cache.go
// UnavailableOfferingsTTL). For reserved launches Karpenter marks the
// capacity reservation instead; Flotilla launches no reserved capacity yet.
//
//   - every unfulfillable-capacity code marks the offering the error names
//     (instance type, zone, capacity type) for the unavailable TTL, quota
//     codes included: EC2 reports a quota error per override it tried, so
//     every offering of the exhausted quota the fleet asked for is marked;
//   - InsufficientFreeAddressesInSubnet also marks its subnet
//     (MarkSubnetUnavailable), so the next launch leaves it out;
//   - AuthFailure.ServiceLinkedRoleCreationNotPermitted marks the whole spot
//     capacity type (MarkCapacityTypeUnavailable(spot)): the account cannot
//     launch spot until the role exists. Karpenter counts it as an
//     insufficient-capacity error too (combineFleetErrors).
type markScope int

const (
	markNone markScope = iota
	markOffering
	markOfferingAndSubnet
	markSpot
)

// fleetErrorScopes maps each capacity error code to what it marks.
var fleetErrorScopes = map[string]markScope{
	// Karpenter's unfulfillableCapacityErrorCodes.
	"InsufficientInstanceCapacity": markOffering,
	"UnfulfillableCapacity":        markOffering,
	"Unsupported":                  markOffering,
	"ReservationCapacityExceeded":  markOffering,
	"MaxSpotInstanceCountExceeded": markOffering,
	"VcpuLimitExceeded":            markOffering,
	"MaxFleetCountExceeded":        markOffering,
	// Also in that list; Karpenter additionally marks the subnet.
	"InsufficientFreeAddressesInSubnet": markOfferingAndSubnet,
	// Not in Karpenter's list: EC2's generic "not enough capacity" code
	// (EC2 API error codes reference), treated like
	// InsufficientInstanceCapacity.
	"InsufficientCapacity": markOffering,
	// IsServiceLinkedRoleCreationNotPermitted.
	"AuthFailure.ServiceLinkedRoleCreationNotPermitted": markSpot,
}

// quotaErrorCodes are the capacity codes that mean an account quota, not
// EC2's capacity, stopped the launch (Karpenter's ToReasonMessage names
// them VCPULimitExceeded, SpotQuotaExceeded and FleetQuotaExceeded). They
// travel to the caller so a NodeClaim can say which quota to raise.
var quotaErrorCodes = map[string]bool{
	"VcpuLimitExceeded":            true,
	"MaxSpotInstanceCountExceeded": true,
	"MaxFleetCountExceeded":        true,
}
