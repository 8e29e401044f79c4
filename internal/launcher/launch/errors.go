package launch

import (
	"errors"
	"fmt"
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
}

func (e *InsufficientCapacityError) Error() string {
	names := make([]string, len(e.Offerings))
	for i, o := range e.Offerings {
		names[i] = o.String()
	}
	return fmt.Sprintf("launch %s: insufficient capacity for offerings %s", e.NodeClaim, strings.Join(names, ","))
}

// IsInsufficientCapacity reports whether err is, or wraps, an
// *InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var e *InsufficientCapacityError
	return errors.As(err, &e)
}

// capacityErrorCodes are the CreateFleet error codes that mean the offering
// lacks capacity now, rather than that the request is wrong.
var capacityErrorCodes = map[string]bool{
	"InsufficientInstanceCapacity":      true,
	"InsufficientCapacity":              true,
	"UnfulfillableCapacity":             true,
	"MaxSpotInstanceCountExceeded":      true,
	"Unsupported":                       true,
	"InsufficientFreeAddressesInSubnet": true,
	"ReservationCapacityExceeded":       true,
}
