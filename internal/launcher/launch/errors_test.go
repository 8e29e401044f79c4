package launch

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Each CreateFleet error code marks what Karpenter's AWS provider marks:
// the offering, also the subnet, or the whole spot capacity type; quota
// codes are named in the error; other codes mark nothing.
func TestCapacityErrorScopes(t *testing.T) {
	const subnet, zone = "subnet-a", "us-east-1a"
	offering := unavailable.Key{InstanceType: "g5.xlarge", Zone: zone, CapacityType: "spot"}
	for _, tc := range []struct {
		code                          string
		offering, subnet, spot, quota bool
		other                         bool
	}{
		{code: "InsufficientInstanceCapacity", offering: true},
		{code: "UnfulfillableCapacity", offering: true},
		{code: "Unsupported", offering: true},
		{code: "ReservationCapacityExceeded", offering: true},
		{code: "InsufficientCapacity", offering: true},
		{code: "VcpuLimitExceeded", offering: true, quota: true},
		{code: "MaxSpotInstanceCountExceeded", offering: true, quota: true},
		{code: "MaxFleetCountExceeded", offering: true, quota: true},
		{code: "InsufficientFreeAddressesInSubnet", offering: true, subnet: true},
		{code: "AuthFailure.ServiceLinkedRoleCreationNotPermitted", spot: true},
		{code: "InvalidAMIID.NotFound", other: true},
	} {
		t.Run(tc.code, func(t *testing.T) {
			now := time.Unix(1000, 0)
			cache := unavailable.New(func() time.Time { return now })
			l := New(Options{Unavailable: cache, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
			errs := []ec2types.CreateFleetError{{
				ErrorCode: aws.String(tc.code), ErrorMessage: aws.String("refused"),
				LaunchTemplateAndOverrides: &ec2types.LaunchTemplateAndOverridesResponse{
					Overrides: &ec2types.FleetLaunchTemplateOverrides{InstanceType: "g5.xlarge", SubnetId: aws.String(subnet)},
				},
			}}
			ice, other := l.capacityErrors(&launcherv1.LaunchRequest{NodeClaim: "c"}, &launchPlan{capacityType: "spot"}, errs, map[string]string{subnet: zone})
			otherType := unavailable.Key{InstanceType: "m5.large", Zone: "us-east-1b", CapacityType: "spot"}
			if got := cache.Unavailable(offering); got != tc.offering && !tc.spot {
				t.Errorf("offering marked %v, want %v", got, tc.offering)
			}
			if got := cache.SubnetUnavailable(subnet); got != tc.subnet {
				t.Errorf("subnet marked %v, want %v", got, tc.subnet)
			}
			if got := cache.Unavailable(otherType); got != tc.spot {
				t.Errorf("spot capacity type marked %v, want %v", got, tc.spot)
			}
			if got := slices.Contains(ice.Quotas, tc.code); got != tc.quota {
				t.Errorf("quota named %v, want %v (%v)", got, tc.quota, ice.Quotas)
			}
			if got := len(other) > 0; got != tc.other {
				t.Errorf("other errors %v, want %v", other, tc.other)
			}
			now = now.Add(unavailable.DefaultTTL)
			if cache.Unavailable(offering) || cache.SubnetUnavailable(subnet) || cache.Unavailable(otherType) {
				t.Error("marks outlived the TTL")
			}
		})
	}
}
