package launcher_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

var ctx = context.Background()

func TestListInstanceTypes(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	resp, err := svc.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClassName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.InstanceTypes) != len(testTypes) {
		t.Fatalf("got %d types, want %d", len(resp.InstanceTypes), len(testTypes))
	}
	for _, it := range resp.InstanceTypes {
		if it.Name != "m5.large" {
			continue
		}
		if it.Capacity["memory"] != "7577Mi" || it.Allocatable["cpu"] != "1930m" || it.Allocatable["memory"] != "6903Mi" {
			t.Errorf("m5.large capacity %v allocatable %v", it.Capacity, it.Allocatable)
		}
		// Karpenter's m5.large, through DescribeInstanceTypes.
		for k, v := range map[string]string{
			"topology.kubernetes.io/region": "us-east-1", "karpenter.k8s.aws/instance-cpu-manufacturer": "intel",
			"karpenter.k8s.aws/instance-network-bandwidth": "750", "karpenter.k8s.aws/instance-ebs-bandwidth": "4750",
			"karpenter.k8s.aws/instance-encryption-in-transit-supported": "false",
		} {
			if it.Labels[k] != v {
				t.Errorf("m5.large label %s = %q, want %q", k, it.Labels[k], v)
			}
		}
		if it.Allocatable["vpc.amazonaws.com/pod-eni"] != "9" {
			t.Errorf("m5.large pod-eni %q, want 9", it.Allocatable["vpc.amazonaws.com/pod-eni"])
		}
		var spot, od int
		for _, o := range it.Offerings {
			switch o.CapacityType {
			case "spot":
				spot++
				if o.PricePerHour <= 0 || o.PricePerHour >= 0.096 {
					t.Errorf("spot price %v", o.PricePerHour)
				}
			case "on-demand":
				od++
				if o.PricePerHour != 0.096 {
					t.Errorf("on-demand price %v, want 0.096", o.PricePerHour)
				}
			}
		}
		if spot != len(e.sim.Zones()) || od != len(e.sim.Zones()) {
			t.Errorf("offerings %v", it.Offerings)
		}
	}
	if e.pricing.Calls("GetProducts") == 0 {
		t.Error("no Pricing API call outside isolated-VPC mode")
	}
}

func TestIsolatedVPCMakesNoPricingCalls(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t, func(c *launcher.Config) { c.AWS.IsolatedVPC = true })
	resp, err := svc.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: nodeClass("al2023@latest")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, launchRequest("iso-1", "m5.large")); err != nil {
		t.Fatal(err)
	}
	if n := e.pricing.Calls("GetProducts"); n != 0 {
		t.Fatalf("%d Pricing calls in isolated-VPC mode", n)
	}
	for _, it := range resp.InstanceTypes {
		for _, o := range it.Offerings {
			if o.CapacityType == "on-demand" && o.PricePerHour <= 0 {
				t.Errorf("%s has no embedded on-demand price", it.Name)
			}
		}
	}
}

func TestLaunchIsIdempotentAcrossRetriesAndRestarts(t *testing.T) {
	e := newEnv(t)
	first, err := e.service(t).Launch(ctx, launchRequest("claim-a", "m5.large", "m5.xlarge"))
	if err != nil {
		t.Fatal(err)
	}
	svc := e.service(t)
	for i := 0; i < 3; i++ {
		again, err := svc.Launch(ctx, launchRequest("claim-a", "m5.large", "m5.xlarge"))
		if err != nil {
			t.Fatal(err)
		}
		if again.Instance.Id != first.Instance.Id {
			t.Fatalf("retry %d launched %s, first launch %s", i, again.Instance.Id, first.Instance.Id)
		}
	}
	restarted := e.service(t) // a new process: empty caches
	again, err := restarted.Launch(ctx, launchRequest("claim-a", "m5.large", "m5.xlarge"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Instance.Id != first.Instance.Id {
		t.Fatalf("after restart launched %s, want %s", again.Instance.Id, first.Instance.Id)
	}
	if n := e.sim.Calls()["CreateFleet"]; n != 1 {
		t.Errorf("%d CreateFleet calls, want 1", n)
	}
	got := first.Instance
	if got.CapacityType != "spot" || got.Zone == "" || got.ProviderId != "aws:///"+got.Zone+"/"+got.Id || got.PricePerHour <= 0 {
		t.Errorf("instance %+v", got)
	}
	inst := e.sim.Instances()
	if len(inst) != 1 || inst[0].Tags[launch.TagNodeClaim] != "claim-a" || inst[0].Tags["kubernetes.io/cluster/"+cluster] != "owned" ||
		inst[0].Tags[launch.TagNodePool] != "default" || inst[0].Tags["team"] != "infra" || inst[0].Tags["Name"] == "" {
		t.Errorf("instances %+v", inst)
	}
}

func TestLaunchTemplateIsSecureAndReused(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	for _, c := range []string{"lt-1", "lt-2", "lt-3"} {
		if _, err := svc.Launch(ctx, launchRequest(c, "m5.large")); err != nil {
			t.Fatal(err)
		}
	}
	lts := e.sim.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d launch templates, want 1", len(lts))
	}
	lt := lts[0]
	if !strings.HasPrefix(lt.Name, "flotilla-"+cluster+"-") || lt.MetadataOptions["HttpTokens"] != "required" || lt.MetadataOptions["HttpPutResponseHopLimit"] != "1" {
		t.Errorf("launch template %+v", lt)
	}
	want, _ := eksami.Find("al2023", "1.31", "latest", "x86_64", "standard")
	if lt.ImageID != want.ID {
		t.Errorf("image %s, want %s", lt.ImageID, want.ID)
	}
	if n := e.sim.Calls()["CreateLaunchTemplate"]; n != 1 {
		t.Errorf("%d CreateLaunchTemplate calls", n)
	}
}

func TestCapacityFallbackAndUnavailableCache(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	// m5.large spot is cheaper than m5.xlarge spot: take it away everywhere.
	for _, z := range e.sim.Zones() {
		e.sim.SetCapacity("m5.large", z, "spot", 0)
	}
	resp, err := svc.Launch(ctx, launchRequest("ice-1", "m5.large", "m5.xlarge"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Instance.InstanceType != "m5.xlarge" {
		t.Fatalf("launched %s, want the fallback m5.xlarge", resp.Instance.InstanceType)
	}
	if n := offeringsAvailable(t, svc, "m5.large", "spot"); n != 0 {
		t.Fatalf("%d m5.large spot offerings still available after capacity errors", n)
	}
	// No capacity anywhere for the only allowed type: typed error.
	for _, z := range e.sim.Zones() {
		e.sim.SetCapacity("c5.large", z, "spot", 0)
		e.sim.SetCapacity("c5.large", z, "on-demand", 0)
	}
	// The service boundary maps the typed error to ResourceExhausted naming
	// the offerings.
	_, err = svc.Launch(ctx, launchRequest("ice-2", "c5.large"))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "c5.large/") {
		t.Fatalf("err %v, want ResourceExhausted naming c5.large offerings", err)
	}
	// Spot is gone; the next attempt falls to on-demand, also exhausted.
	_, err = svc.Launch(ctx, launchRequest("ice-2", "c5.large"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("err %v, want ResourceExhausted", err)
	}
	fleets := e.sim.Calls()["CreateFleet"]
	_, err = svc.Launch(ctx, launchRequest("ice-2", "c5.large"))
	if status.Code(err) != codes.ResourceExhausted || e.sim.Calls()["CreateFleet"] != fleets {
		t.Fatalf("all offerings cached unavailable: err %v, CreateFleet %d→%d", err, fleets, e.sim.Calls()["CreateFleet"])
	}
	e.clock.Advance(3*time.Minute + time.Second)
	if n := offeringsAvailable(t, svc, "m5.large", "spot"); n != len(e.sim.Zones()) {
		t.Fatalf("%d m5.large spot offerings available after 3m, want all", n)
	}
}

func offeringsAvailable(t *testing.T, svc interface {
	ListInstanceTypes(context.Context, *launcherv1.ListInstanceTypesRequest) (*launcherv1.ListInstanceTypesResponse, error)
}, name, ct string) int {
	resp, err := svc.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: nodeClass("al2023@latest")})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range resp.InstanceTypes {
		for _, o := range it.Offerings {
			if it.Name == name && o.CapacityType == ct && o.Available {
				n++
			}
		}
	}
	return n
}

func TestNotInRequirementExcludesTypesFromOverrides(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("notin-1")
	req.Requirements = []*typesv1.Requirement{
		{Key: "node.kubernetes.io/instance-type", Operator: "NotIn", Values: []string{"t3.medium", "c5.large"}},
		{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}},
		{Key: "team", Operator: "In", Values: []string{"a"}}, // a custom label narrows nothing
	}
	resp, err := svc.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	types := e.fleets.overrideTypes()
	if len(types) == 0 {
		t.Fatal("no CreateFleet recorded")
	}
	for _, it := range types {
		if it == "t3.medium" || it == "c5.large" || it == "c6g.large" || it == "t4g.medium" || it == "m6g.large" {
			t.Errorf("override %s violates the requirements", it)
		}
	}
	if slices.Contains([]string{"t3.medium", "c5.large"}, resp.Instance.InstanceType) {
		t.Errorf("launched excluded %s", resp.Instance.InstanceType)
	}
}

// A NodeClaim pins its zone and capacity type with In requirements, as
// the watcher writes them; the launch must honour them offering by offering.
func TestInRequirementsOnZoneAndCapacityType(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("pinned-1")
	req.Requirements = []*typesv1.Requirement{
		{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1b"}},
		{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"on-demand"}},
	}
	resp, err := svc.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Instance.Zone != "us-east-1b" || resp.Instance.CapacityType != "on-demand" {
		t.Errorf("launched in %s as %s, want us-east-1b on-demand", resp.Instance.Zone, resp.Instance.CapacityType)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	e.sim.InjectFault(ec2sim.Fault{Action: "CreateFleet", Code: "RequestLimitExceeded", Count: 2})
	if _, err := svc.Launch(ctx, launchRequest("throttle-1", "m5.large")); err != nil {
		t.Fatalf("launch after throttling: %v", err)
	}
	if n := e.sim.Calls()["CreateFleet"]; n != 3 {
		t.Errorf("%d CreateFleet attempts, want 3", n)
	}
	if n := len(e.sim.Instances()); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

func TestValidationBeforeLaunchCalls(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	bad := []*launcherv1.LaunchRequest{
		launchRequest("v-1", "m5.nonexistent"),
		func() *launcherv1.LaunchRequest {
			r := launchRequest("v-2", "m5.large")
			r.Requirements = []*typesv1.Requirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"mars-1a"}}}
			return r
		}(),
		func() *launcherv1.LaunchRequest {
			r := launchRequest("v-3", "m5.large")
			r.NodeClassName = e.classWith(t, "yesterday", func(nc *awsv1.EC2NodeClass) { nc.Spec.AMISelectorTerms[0].Alias = "al2023@yesterday" })
			return r
		}(),
		launchRequest("", "m5.large"),
		func() *launcherv1.LaunchRequest {
			r := launchRequest("v-5", "m5.large")
			r.NodeClassName = ""
			return r
		}(),
	}
	for i, r := range bad {
		if _, err := svc.Launch(ctx, r); !errors.Is(err, apierr.ErrInvalidArgument) {
			t.Errorf("request %d: err %v, want invalid argument", i, err)
		}
	}
	if _, err := svc.Launch(ctx, launchRequest("v-6", "m5.large")); err != nil {
		t.Fatalf("the valid request after the refusals: %v", err)
	}
	e.sim.ResetCalls()
	r := launchRequest("v-7", "m5.large")
	r.NodeClassName = "missing"
	if _, err := svc.Launch(ctx, r); !errors.Is(err, apierr.ErrNotFound) || !strings.Contains(err.Error(), `EC2NodeClass "missing"`) {
		t.Errorf("missing class: err %v, want not found naming it", err)
	}
	for _, op := range []string{"CreateFleet", "DescribeInstances", "CreateLaunchTemplate", "DescribeLaunchTemplates"} {
		if n := e.sim.Calls()[op]; n != 0 {
			t.Errorf("%d %s calls for invalid requests", n, op)
		}
	}
}

func TestTerminateAndGarbageCollection(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	resp, err := svc.Launch(ctx, launchRequest("gc-1", "m5.large"))
	if err != nil {
		t.Fatal(err)
	}
	orphan := launchOrphan(t, e)
	// A self-managed node of the same cluster carries the cluster tag but
	// no NodePool tag: it is not ours, and never listed (so never
	// garbage-collected).
	launchTagged(t, e, map[string]string{launch.ClusterTag(cluster): "owned"})
	list, err := svc.ListInstances(ctx, &launcherv1.ListInstancesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]string{}
	for _, in := range list.Instances {
		claims[in.Id] = in.NodeClaim
	}
	if len(claims) != 2 || claims[resp.Instance.Id] != "gc-1" || claims[orphan] != "" {
		t.Fatalf("instances %v, want %s (gc-1) and orphan %s", claims, resp.Instance.Id, orphan)
	}
	for i := 0; i < 2; i++ {
		if _, err := svc.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: resp.Instance.Id, NodeClaim: "gc-1"}); err != nil {
			t.Fatalf("terminate %d: %v", i, err)
		}
	}
	if _, err := svc.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: "i-0123456789abcdef0", NodeClaim: "gc-2"}); err != nil {
		t.Fatalf("terminate unknown: %v", err)
	}
	list, err = svc.ListInstances(ctx, &launcherv1.ListInstancesRequest{})
	if err != nil || len(list.Instances) != 1 || list.Instances[0].Id != orphan {
		t.Fatalf("after terminate: %v %v, want only the orphan %s", list, err, orphan)
	}
}

func TestAliasPinnedAndLatest(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	resolve := func(alias string) string {
		t.Helper()
		name := e.putClass(t, ec2NodeClass(strings.NewReplacer("@", "-", ".", "-").Replace(alias), alias))
		res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: name})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range res.Images {
			if slices.ContainsFunc(im.Requirements, func(r *typesv1.Requirement) bool {
				return r.Key == "kubernetes.io/arch" && r.Values[0] == "amd64"
			}) && slices.ContainsFunc(im.Requirements, func(r *typesv1.Requirement) bool { return r.Operator == "DoesNotExist" }) {
				return im.Id
			}
		}
		t.Fatalf("%s: no amd64 standard image in %v", alias, res.Images)
		return ""
	}
	pinned, _ := eksami.Find("al2023", "1.31", "v20240807", "x86_64", "standard")
	if got := resolve("al2023@v20240807"); got != pinned.ID {
		t.Fatalf("pinned resolved %s, want %s", got, pinned.ID)
	}
	latest, _ := eksami.Find("al2023", "1.31", "latest", "x86_64", "standard")
	if got := resolve("al2023@latest"); got != latest.ID {
		t.Fatalf("latest resolved %s, want %s", got, latest.ID)
	}
	newer := eksami.Images("al2023", "1.31", "v20241121", time.Date(2024, 11, 21, 0, 0, 0, 0, time.UTC))
	eksami.Publish(e.addImage, e.ssm.Set, newer...)
	e.clock.Advance(2 * time.Minute) // past the node class cache TTL
	var newest string
	for _, a := range newer {
		if a.Arch == "x86_64" && a.Variant == "standard" {
			newest = a.ID
		}
	}
	if got := resolve("al2023@latest"); got != newest {
		t.Fatalf("latest after publish %s, want %s", got, newest)
	}
	if got := resolve("al2023@v20240807"); got != pinned.ID {
		t.Fatalf("pinned moved to %s", got)
	}
	for _, alias := range []string{"bottlerocket@1.20.5", "al2@v20240903"} {
		if id := resolve(alias); id == "" {
			t.Errorf("%s unresolved", alias)
		}
	}
}

func TestResolveConditionsWhenNothingMatches(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	name := e.classWith(t, "nomatch", func(nc *awsv1.EC2NodeClass) {
		nc.Spec.SubnetSelectorTerms = []awsv1.SubnetSelectorTerm{{Tags: map[string]string{"nope": "*"}}}
	})
	res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: name})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range res.Conditions {
		got[c.Type] = c.Status + "/" + c.Reason
	}
	if got["SubnetsReady"] != "False/SubnetsNotFound" || got["Ready"] != "False/NotReady" || got["AMIsReady"] != "True/AMIsReady" || got["SecurityGroupsReady"] != "True/SecurityGroupsReady" {
		t.Fatalf("conditions %v", got)
	}
}

// TestListInstancesMetrics checks that a listing replaces the instance
// gauges: one launched m5.large of NodePool default, then none once it is
// terminated.
func TestListInstancesMetrics(t *testing.T) {
	e := newEnv(t)
	m := metrics.New()
	svc := e.service(t, func(c *launcher.Config) { c.Metrics = m })
	resp, err := svc.Launch(ctx, launchRequest("gauge-1", "m5.large"))
	if err != nil {
		t.Fatal(err)
	}
	in := resp.GetInstance()
	labels := []string{"default", "m5.large", in.GetZone(), in.GetCapacityType()}
	if _, err := svc.ListInstances(ctx, &launcherv1.ListInstancesRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Instances); n != 1 {
		t.Fatalf("%d instance series, want 1", n)
	}
	if got := testutil.ToFloat64(m.Instances.WithLabelValues(labels...)); got != 1 {
		t.Errorf("instances%v = %v, want 1", labels, got)
	}
	if got := testutil.ToFloat64(m.InstancesCost.WithLabelValues(labels...)); got != in.GetPricePerHour() || got <= 0 {
		t.Errorf("cost%v = %v, want the instance's price %v", labels, got, in.GetPricePerHour())
	}
	if _, err := svc.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: in.GetId(), NodeClaim: "gauge-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ListInstances(ctx, &launcherv1.ListInstancesRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Instances) + testutil.CollectAndCount(m.InstancesCost); n != 0 {
		t.Errorf("%d series after the only instance was terminated, want 0", n)
	}
}
