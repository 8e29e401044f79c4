package launch

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// offeringKeys are the labels an instance type offering defines;
// requirements on any other key (custom NodePool labels) do not narrow
// instance types and are ignored here.
var offeringKeys = map[string]bool{
	instancetype.LabelInstanceType: true, instancetype.LabelArch: true, instancetype.LabelOS: true,
	instancetype.LabelZone: true, instancetype.LabelRegion: true, instancetype.LabelCapacityType: true,
	instancetype.LabelFamily: true, instancetype.LabelSize: true, instancetype.LabelCategory: true,
	instancetype.LabelGeneration: true, instancetype.LabelCPU: true, instancetype.LabelMemory: true,
	instancetype.LabelGPUName: true, instancetype.LabelGPUManufacturer: true, instancetype.LabelGPUCount: true,
	instancetype.LabelHypervisor: true, instancetype.LabelGPUMemory: true,
	instancetype.LabelAcceleratorName: true, instancetype.LabelAcceleratorManufacturer: true, instancetype.LabelAcceleratorCount: true,
	instancetype.LabelCapabilityFlex: true, instancetype.LabelCPUManufacturer: true, instancetype.LabelCPUSustainedClockMHz: true,
	instancetype.LabelEBSBandwidth: true, instancetype.LabelEncryptionInTransit: true, instancetype.LabelLocalNVMe: true,
	instancetype.LabelNetworkBandwidth: true,
}

// checkRequirements validates operators and operands.
func checkRequirements(reqs []*typesv1.Requirement) error {
	for i, r := range reqs {
		field := fmt.Sprintf("requirements[%d]", i)
		switch r.GetOperator() {
		case "In", "NotIn":
			if len(r.GetValues()) == 0 && r.GetOperator() == "In" {
				return fmt.Errorf("%w: %s: In needs values", apierr.ErrInvalidArgument, field)
			}
		case "Exists", "DoesNotExist":
		case "Gt", "Lt", "Gte", "Lte":
			if len(r.GetValues()) != 1 {
				return fmt.Errorf("%w: %s: %s needs one integer", apierr.ErrInvalidArgument, field, r.GetOperator())
			}
			if _, err := strconv.ParseInt(r.GetValues()[0], 10, 64); err != nil {
				return fmt.Errorf("%w: %s: %q is not an integer", apierr.ErrInvalidArgument, field, r.GetValues()[0])
			}
		default:
			return fmt.Errorf("%w: %s: unknown operator %q", apierr.ErrInvalidArgument, field, r.GetOperator())
		}
		if r.GetKey() == instancetype.LabelCapacityType && r.GetOperator() == "In" {
			for _, v := range r.GetValues() {
				if v != instancetype.CapacityTypeSpot && v != instancetype.CapacityTypeOnDemand {
					return fmt.Errorf("%w: %s: capacity type %q is neither spot nor on-demand", apierr.ErrInvalidArgument, field, v)
				}
			}
		}
	}
	return nil
}

// matches reports whether labels satisfy every requirement on an offering key.
func matches(reqs []*typesv1.Requirement, labels map[string]string) bool {
	for _, r := range reqs {
		if !offeringKeys[r.GetKey()] {
			continue
		}
		if !matchOne(r, labels) {
			return false
		}
	}
	return true
}

func matchOne(r *typesv1.Requirement, labels map[string]string) bool {
	v, ok := labels[r.GetKey()]
	switch r.GetOperator() {
	case "In":
		return ok && slices.Contains(r.GetValues(), v)
	case "NotIn":
		return !ok || !slices.Contains(r.GetValues(), v)
	case "Exists":
		return ok
	case "DoesNotExist":
		return !ok
	case "Gt", "Lt", "Gte", "Lte":
		n, err1 := strconv.ParseInt(v, 10, 64)
		bound, err2 := strconv.ParseInt(r.GetValues()[0], 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return false
		}
		switch r.GetOperator() {
		case "Gt":
			return n > bound
		case "Lt":
			return n < bound
		case "Gte":
			return n >= bound
		default: // Lte
			return n <= bound
		}
	}
	return false
}

// inValues lists the values of In requirements on key.
func inValues(reqs []*typesv1.Requirement, key string) []string {
	var out []string
	for _, r := range reqs {
		if r.GetKey() == key && r.GetOperator() == "In" {
			out = append(out, r.GetValues()...)
		}
	}
	return out
}
