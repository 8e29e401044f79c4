package launcher_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// errorInfo is the flotilla.io ErrorInfo of a gRPC error, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == apierr.ErrorDomain {
			return info
		}
	}
	return nil
}

// A new account's GPU vCPU quota is 0: a GPU launch fails once with the
// quota named in the error's metadata, marks the offerings unavailable (so
// plans stop choosing them and a second launch makes no CreateFleet call),
// and, once the quota is raised, the next launch is a new CreateFleet
// request rather than a replay of the refused one.
func TestQuotaErrorIsNamedAndNotReplayed(t *testing.T) {
	e := newEnv(t)
	e.sim.SetVcpuQuota(ec2sim.QuotaG, ec2sim.CapacityTypeOnDemand, 0)
	e.sim.SetVcpuQuota(ec2sim.QuotaG, ec2sim.CapacityTypeSpot, 0)
	svc := e.service(t)

	_, err := svc.Launch(ctx, launchRequest("gpu-1", "g4dn.xlarge"))
	info := errorInfo(err)
	if status.Code(err) != codes.ResourceExhausted || info == nil || info.GetReason() != apierr.ReasonInsufficientCapacity {
		t.Fatalf("err %v, want ResourceExhausted with INSUFFICIENT_CAPACITY", err)
	}
	if q := info.GetMetadata()[apierr.MetadataQuota]; q != "MaxSpotInstanceCountExceeded,VcpuLimitExceeded" {
		t.Fatalf("quota metadata %q, want both quota codes (spot tried first, then on-demand)", q)
	}
	fleets := e.sim.Calls()["CreateFleet"]
	if fleets != 2 {
		t.Fatalf("%d CreateFleet calls, want 2 (spot, then on-demand)", fleets)
	}
	if n := offeringsAvailable(t, svc, "g4dn.xlarge", "on-demand") + offeringsAvailable(t, svc, "g4dn.xlarge", "spot"); n != 0 {
		t.Fatalf("%d g4dn.xlarge offerings still available after quota errors", n)
	}

	_, err = svc.Launch(ctx, launchRequest("gpu-2", "g4dn.xlarge"))
	if status.Code(err) != codes.ResourceExhausted || e.sim.Calls()["CreateFleet"] != fleets {
		t.Fatalf("within the TTL: err %v, CreateFleet %d→%d, want no call", err, fleets, e.sim.Calls()["CreateFleet"])
	}
	if q := errorInfo(err).GetMetadata()[apierr.MetadataQuota]; q != "MaxSpotInstanceCountExceeded,VcpuLimitExceeded" {
		t.Errorf("within the TTL the quota metadata is %q, want the quotas that marked the offerings", q)
	}

	e.sim.SetVcpuQuota(ec2sim.QuotaG, ec2sim.CapacityTypeOnDemand, 64)
	e.clock.Advance(3*time.Minute + time.Second)
	resp, err := svc.Launch(ctx, launchRequest("gpu-1", "g4dn.xlarge"))
	if err != nil {
		t.Fatalf("after the quota was raised: %v (a replayed ClientToken answers with the old error)", err)
	}
	if resp.Instance.CapacityType != "on-demand" {
		t.Errorf("launched %s, want on-demand (the spot quota is still 0)", resp.Instance.CapacityType)
	}
	e.fleets.mu.Lock()
	defer e.fleets.mu.Unlock()
	seen := map[string]bool{}
	for _, v := range e.fleets.fleets {
		tok := v.Get("ClientToken")
		if tok == "" || seen[tok] || len(tok) > 64 || !strings.HasPrefix(tok, "flotilla-") {
			t.Errorf("ClientToken %q empty, reused or malformed", tok)
		}
		seen[tok] = true
	}
}

// A subnet out of addresses is marked: the next launch leaves it out of
// its overrides even for offerings that never failed, until the mark
// expires.
func TestFullSubnetIsAvoided(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	var full string
	for _, s := range e.sim.Subnets() {
		if s.Zone == "us-east-1a" {
			full = s.ID
		}
	}
	e.sim.SetSubnetAddresses(full, 0)
	pinned := func(claim, typ string, zones ...string) *launcherv1.LaunchRequest {
		r := launchRequest(claim, typ)
		r.Requirements = []*typesv1.Requirement{
			{Key: "topology.kubernetes.io/zone", Operator: "In", Values: zones},
			{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"on-demand"}},
		}
		return r
	}
	_, err := svc.Launch(ctx, pinned("full-1", "m5.large", "us-east-1a"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("err %v, want ResourceExhausted", err)
	}
	if n := e.sim.Calls()["CreateFleet"]; n != 1 {
		t.Fatalf("%d CreateFleet calls, want 1 (the second attempt has no usable subnet)", n)
	}
	resp, err := svc.Launch(ctx, pinned("full-2", "c5.large", "us-east-1a", "us-east-1b"))
	if err != nil || resp.Instance.Zone != "us-east-1b" {
		t.Fatalf("launch beside the full subnet: %+v %v", resp, err)
	}
	if subnetsOf(e.fleets, 1)[full] {
		t.Errorf("the full subnet %s is in the next CreateFleet's overrides", full)
	}
	e.sim.SetSubnetAddresses(full, 100)
	e.clock.Advance(3*time.Minute + time.Second)
	if resp, err := svc.Launch(ctx, pinned("full-3", "c5.large", "us-east-1a")); err != nil || resp.Instance.Zone != "us-east-1a" {
		t.Fatalf("after the mark expired: %+v %v", resp, err)
	}
}

// subnetsOf is the set of override subnets of the i-th recorded CreateFleet.
func subnetsOf(r *recorder, i int) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for k, vs := range r.fleets[i] {
		if strings.HasSuffix(k, ".SubnetId") {
			for _, v := range vs {
				out[v] = true
			}
		}
	}
	return out
}

// Overrides are one per (instance type, zone), each with its zone's subnet
// of most free addresses, as Karpenter sends them: a zone's second subnet
// does not take overrides from the other zones.
func TestOverridesSpanZonesOneSubnetEach(t *testing.T) {
	e := newEnv(t)
	zones := map[string]bool{}
	best := map[string]string{}
	for _, s := range e.sim.Subnets() {
		zones[s.Zone] = true
		best[s.Zone] = s.ID
		// A second, emptier subnet in each zone, also discovered.
		e.sim.AddSubnet(ec2sim.Subnet{Zone: s.Zone, AvailableIPAddresses: 100, Tags: map[string]string{ec2sim.DiscoveryTag: cluster}})
	}
	req := launchRequest("spread-1", "m5.large", "c5.large", "m6i.large")
	req.Requirements = []*typesv1.Requirement{{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"on-demand"}}}
	if _, err := e.service(t).Launch(ctx, req); err != nil {
		t.Fatal(err)
	}
	subnets := subnetsOf(e.fleets, 0)
	if len(subnets) != len(zones) {
		t.Errorf("overrides name %d subnets, want one per zone (%d)", len(subnets), len(zones))
	}
	for zone, id := range best {
		if !subnets[id] {
			t.Errorf("zone %s: its subnet with the most free addresses %s is not in the overrides %v", zone, id, subnets)
		}
	}
	if n := len(e.fleets.overrideTypes()); n != 3*len(zones) {
		t.Errorf("%d overrides, want 3 types × %d zones", n, len(zones))
	}
}
