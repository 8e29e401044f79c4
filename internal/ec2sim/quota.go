package ec2sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// vCPU quotas. EC2 limits the running vCPUs of an account per instance
// family class ("bucket"), separately for on-demand and spot: Amazon EC2
// User Guide, "Amazon EC2 instance type quotas"
// (https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html),
// e.g. "Running On-Demand G and VT instances" and "All G and VT Spot
// Instance Requests". A launch that would exceed one fails with the error
// codes of the EC2 API Reference, "Error codes for the Amazon EC2 API"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
// VcpuLimitExceeded for on-demand, MaxSpotInstanceCountExceeded for spot.
// CreateFleet (type instant) reports them per override in its Errors, as it
// does InsufficientInstanceCapacity.

// Quota classes, as the quotas name them.
const (
	QuotaStandard   = "Standard" // A, C, D, H, I, M, R, T, Z
	QuotaG          = "G"        // G and VT
	QuotaP          = "P"
	QuotaF          = "F"
	QuotaX          = "X"
	QuotaInf        = "Inf"
	QuotaTrn        = "Trn"
	QuotaDL         = "DL"
	QuotaHighMemory = "HighMemory" // u-*
)

// QuotaClass is the vCPU quota class of an instance type, e.g. "G" for
// g5.xlarge and vt1.3xlarge, "Standard" for m5.large.
func QuotaClass(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	if strings.HasPrefix(family, "u-") || strings.HasPrefix(family, "u7") {
		return QuotaHighMemory
	}
	letters := family // the letters before the generation digit: g5 → g, inf2 → inf
	if i := strings.IndexFunc(family, func(r rune) bool { return r >= '0' && r <= '9' }); i >= 0 {
		letters = family[:i]
	}
	switch letters {
	case "g", "vt":
		return QuotaG
	case "p":
		return QuotaP
	case "f":
		return QuotaF
	case "x":
		return QuotaX
	case "inf":
		return QuotaInf
	case "trn":
		return QuotaTrn
	case "dl":
		return QuotaDL
	}
	return QuotaStandard
}

// quotaKey is one quota: a class and a capacity type.
type quotaKey struct{ class, capacityType string }

// SetVcpuQuota sets the account's vCPU quota of class (see QuotaClass)
// for capacityType (CapacityTypeOnDemand or CapacityTypeSpot). Quotas start
// unlimited; a negative vcpus makes the class unlimited again.
func (s *Sim) SetVcpuQuota(class, capacityType string, vcpus int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := quotaKey{class, capacityType}
	if vcpus < 0 {
		delete(s.quotas, k)
		return
	}
	s.quotas[k] = vcpus
}

// quotaError is the error code and message of launching one more
// instanceType of capacity type lc, or "" when the quota allows it. Call
// with s.mu held.
func (s *Sim) quotaError(instanceType, lc string) (code, msg string) {
	class := QuotaClass(instanceType)
	limit, ok := s.quotas[quotaKey{class, lc}]
	if !ok {
		return "", ""
	}
	used := 0
	for _, in := range s.instances {
		if in.State != StateTerminated && in.CapacityType == lc && QuotaClass(in.InstanceType) == class {
			used += s.types[in.InstanceType].VCPU
		}
	}
	if used+s.types[instanceType].VCPU <= limit {
		return "", ""
	}
	if lc == CapacityTypeSpot {
		return "MaxSpotInstanceCountExceeded", fmt.Sprintf("Max spot instance count exceeded: your %s spot vCPU quota is %d.", class, limit)
	}
	return "VcpuLimitExceeded", fmt.Sprintf("You have requested more vCPU capacity than your current vCPU limit of %d allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.", limit)
}

// ParseVcpuQuotas reads quotas written CLASS=VCPUS, comma-separated, e.g.
// "G=0,P=96" (both capacity types) or "spot:G=0" (one). Classes are those
// of QuotaClass.
func ParseVcpuQuotas(s string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("vcpu quota %q: want CLASS=VCPUS", item)
		}
		cts := []string{CapacityTypeOnDemand, CapacityTypeSpot}
		if ct, class, found := strings.Cut(key, ":"); found {
			if ct != CapacityTypeOnDemand && ct != CapacityTypeSpot {
				return nil, fmt.Errorf("vcpu quota %q: capacity type %q is neither on-demand nor spot", item, ct)
			}
			cts, key = []string{ct}, class
		}
		if !knownQuotaClass(key) {
			return nil, fmt.Errorf("vcpu quota %q: unknown class %q (one of %s)", item, key, strings.Join(quotaClasses, ", "))
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("vcpu quota %q: %q is not a vCPU count", item, val)
		}
		for _, ct := range cts {
			if out[ct] == nil {
				out[ct] = map[string]int{}
			}
			out[ct][key] = n
		}
	}
	return out, nil
}

var quotaClasses = func() []string {
	c := []string{QuotaStandard, QuotaG, QuotaP, QuotaF, QuotaX, QuotaInf, QuotaTrn, QuotaDL, QuotaHighMemory}
	sort.Strings(c)
	return c
}()

func knownQuotaClass(c string) bool {
	i := sort.SearchStrings(quotaClasses, c)
	return i < len(quotaClasses) && quotaClasses[i] == c
}
