package ec2sim_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

// launchSetup makes an image and a launch template, returning the
// template name and the seeded subnets by zone.
func launchSetup(t *testing.T, f *fixture) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	f.sim.AddImage(ec2sim.Image{ID: "ami-0123456789abcdef0", Name: "eks-node", OwnerID: "602401143452"})
	_, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("karpenter.k8s.aws/12345"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId:          aws.String("ami-0123456789abcdef0"),
			UserData:         aws.String("IyEvYmluL2Jhc2g="),
			SecurityGroupIds: []string{"sg-1"},
			MetadataOptions:  &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: types.LaunchTemplateHttpTokensStateRequired},
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{
				ResourceType: types.ResourceTypeInstance,
				Tags:         []types.Tag{{Key: aws.String("from-template"), Value: aws.String("yes")}},
			}},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate,
			Tags: []types.Tag{{Key: aws.String("karpenter.k8s.aws/cluster"), Value: aws.String("test-cluster")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	subnets := map[string]string{}
	for _, s := range sn.Subnets {
		subnets[*s.AvailabilityZone] = *s.SubnetId
	}
	return "karpenter.k8s.aws/12345", subnets
}

func fleetInput(lt string, overrides []types.FleetLaunchTemplateOverridesRequest, capType types.DefaultTargetCapacityType, token string) *ec2.CreateFleetInput {
	return &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(lt), Version: aws.String("$Latest")},
			Overrides:                   overrides,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: capType},
		SpotOptions:                 &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategyPriceCapacityOptimized},
		OnDemandOptions:             &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyLowestPrice},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("karpenter.sh/nodepool"), Value: aws.String("default")}}},
			{ResourceType: types.ResourceTypeFleet, Tags: []types.Tag{{Key: aws.String("karpenter.sh/nodepool"), Value: aws.String("default")}}},
		},
		ClientToken: aws.String(token),
	}
}

func TestLaunchTemplates(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	name, _ := launchSetup(t, f)
	_, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	})
	if apiCode(err) != "InvalidLaunchTemplateName.AlreadyExistsException" {
		t.Errorf("duplicate: %v", err)
	}
	out, err := f.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if err != nil || len(out.LaunchTemplates) != 1 || *out.LaunchTemplates[0].LaunchTemplateName != name ||
		!strings.HasPrefix(*out.LaunchTemplates[0].LaunchTemplateId, "lt-") || *out.LaunchTemplates[0].LatestVersionNumber != 1 {
		t.Fatalf("describe: %+v %v", out, err)
	}
	id := *out.LaunchTemplates[0].LaunchTemplateId
	out, err = f.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{
		{Name: aws.String("tag:karpenter.k8s.aws/cluster"), Values: []string{"test-cluster"}}}})
	if err != nil || len(out.LaunchTemplates) != 1 || len(out.LaunchTemplates[0].Tags) != 1 {
		t.Fatalf("by tag: %+v %v", out, err)
	}
	_, err = f.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"nope"}})
	if apiCode(err) != "InvalidLaunchTemplateName.NotFoundException" {
		t.Errorf("missing: %v", err)
	}
	lts := f.sim.LaunchTemplates()
	if len(lts) != 1 || lts[0].UserData != "IyEvYmluL2Jhc2g=" || lts[0].MetadataOptions["HttpTokens"] != "required" ||
		lts[0].SecurityGroupIDs[0] != "sg-1" || lts[0].TagSpecifications["instance"]["from-template"] != "yes" {
		t.Errorf("snapshot: %+v", lts)
	}
	if _, err := f.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = f.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String(name)})
	if apiCode(err) != "InvalidLaunchTemplateName.NotFoundException" {
		t.Errorf("delete twice: %v", err)
	}
}

func TestCreateFleetLaunchAndIdempotency(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	overrides := []types.FleetLaunchTemplateOverridesRequest{
		{InstanceType: "m5.xlarge", SubnetId: aws.String(subnets["us-east-1a"]), AvailabilityZone: aws.String("us-east-1a")},
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1b"]), AvailabilityZone: aws.String("us-east-1b")},
	}
	out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeSpot, "tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 0 || len(out.Instances) != 1 || len(out.Instances[0].InstanceIds) != 1 {
		t.Fatalf("fleet: %+v", out)
	}
	fi := out.Instances[0]
	if fi.InstanceType != "m5.large" || fi.Lifecycle != types.InstanceLifecycleSpot || *fi.LaunchTemplateAndOverrides.Overrides.SubnetId != subnets["us-east-1b"] ||
		*fi.LaunchTemplateAndOverrides.LaunchTemplateSpecification.LaunchTemplateName != lt || !strings.HasPrefix(*out.FleetId, "fleet-") {
		t.Errorf("fleet instance: %+v", fi)
	}
	id := fi.InstanceIds[0]
	if len(id) != 19 || !strings.HasPrefix(id, "i-") {
		t.Errorf("instance id %q", id)
	}

	// Same token: same answer, no new instance.
	again, err := f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeSpot, "tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	if *again.FleetId != *out.FleetId || again.Instances[0].InstanceIds[0] != id || len(f.sim.Instances()) != 1 {
		t.Errorf("idempotency: %+v", again)
	}
	// After 8 hours the token is forgotten.
	f.now = f.now.Add(9 * time.Hour)
	later, err := f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeOnDemand, "tok-1"))
	if err != nil || later.Instances[0].InstanceIds[0] == id || later.Instances[0].Lifecycle != "" && later.Instances[0].Lifecycle != types.InstanceLifecycle("on-demand") {
		t.Errorf("after expiry: %+v %v", later, err)
	}

	di, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	in := di.Reservations[0].Instances[0]
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[*tg.Key] = *tg.Value
	}
	if *in.InstanceId != id || in.InstanceType != "m5.large" || *in.Placement.AvailabilityZone != "us-east-1b" || *in.SubnetId != subnets["us-east-1b"] ||
		*in.ImageId != "ami-0123456789abcdef0" || in.State.Name != types.InstanceStateNameRunning || *in.State.Code != 16 ||
		in.InstanceLifecycle != types.InstanceLifecycleTypeSpot || in.LaunchTime == nil || !strings.HasSuffix(*in.PrivateDnsName, ".ec2.internal") ||
		tags["karpenter.sh/nodepool"] != "default" || tags["from-template"] != "yes" || *in.ClientToken != "tok-1" {
		t.Errorf("instance: %+v tags %v", in, tags)
	}
	snap := f.sim.Instances()
	if snap[0].ID != id || snap[0].CapacityType != "spot" || snap[0].Tags["karpenter.sh/nodepool"] != "default" {
		t.Errorf("snapshot: %+v", snap[0])
	}
}

func TestCreateFleetInsufficientCapacity(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	// m5.large in 1a is the cheapest on-demand pool; it has no capacity.
	f.sim.SetCapacity("m5.large", "us-east-1a", "on-demand", 0)
	f.sim.SetCapacity("m5.large", "us-east-1b", "on-demand", 1)
	overrides := []types.FleetLaunchTemplateOverridesRequest{
		{InstanceType: "m5.xlarge", SubnetId: aws.String(subnets["us-east-1a"])},
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1a"])},
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1b"])},
	}
	out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeOnDemand, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 1 || *out.Errors[0].ErrorCode != "InsufficientInstanceCapacity" ||
		*out.Errors[0].LaunchTemplateAndOverrides.Overrides.SubnetId != subnets["us-east-1a"] || out.Errors[0].LaunchTemplateAndOverrides.Overrides.InstanceType != "m5.large" ||
		out.Errors[0].Lifecycle != types.InstanceLifecycleOnDemand {
		t.Errorf("errors: %+v", out.Errors)
	}
	if len(out.Instances) != 1 || *out.Instances[0].LaunchTemplateAndOverrides.Overrides.SubnetId != subnets["us-east-1b"] {
		t.Fatalf("instances: %+v", out.Instances)
	}
	// 1b is now used up too: fall back to m5.xlarge.
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeOnDemand, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 2 || len(out.Instances) != 1 || out.Instances[0].InstanceType != "m5.xlarge" {
		t.Errorf("fallback: %+v", out)
	}
	// Nothing left: no instances, only errors.
	f.sim.SetCapacity("m5.xlarge", "us-east-1a", "on-demand", 0)
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeOnDemand, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 3 || len(out.Instances) != 0 {
		t.Errorf("exhausted: %+v", out)
	}
	// Spot capacity is separate.
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeSpot, ""))
	if err != nil || len(out.Instances) != 1 || len(out.Errors) != 0 {
		t.Errorf("spot: %+v %v", out, err)
	}
	// Not instant.
	in := fleetInput(lt, overrides, types.DefaultTargetCapacityTypeSpot, "")
	in.Type = types.FleetTypeMaintain
	if _, err := f.ec2.CreateFleet(ctx, in); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("maintain: %v", err)
	}
}

func TestDescribeTerminateAndTags(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	var ids []string
	for i := 0; i < 7; i++ {
		in := fleetInput(lt, []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "c6g.large", SubnetId: aws.String(subnets["us-east-1c"])}}, types.DefaultTargetCapacityTypeOnDemand, "")
		out, err := f.ec2.CreateFleet(ctx, in)
		if err != nil || len(out.Instances) != 1 {
			t.Fatalf("fleet: %+v %v", out, err)
		}
		ids = append(ids, out.Instances[0].InstanceIds[0])
	}
	if _, err := f.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:2], Tags: []types.Tag{{Key: aws.String("karpenter.sh/nodeclaim"), Value: aws.String("a")}}}); err != nil {
		t.Fatal(err)
	}
	byTag := &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:karpenter.sh/nodeclaim"), Values: []string{"a"}}}}
	out, err := f.ec2.DescribeInstances(ctx, byTag)
	if err != nil || len(out.Reservations) != 2 {
		t.Fatalf("by tag: %+v %v", out, err)
	}
	// Paginate over all, five at a time.
	n := 0
	p := ec2.NewDescribeInstancesPaginator(f.ec2, &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(5),
		Filters:    []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}, {Name: aws.String("tag-key"), Values: []string{"karpenter.sh/nodepool"}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Reservations {
			n += len(r.Instances)
		}
	}
	if n != 7 {
		t.Errorf("paginated %d instances", n)
	}

	term, err := f.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown || term.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("terminate: %+v %v", term, err)
	}
	term, err = f.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("terminate twice: %+v %v", term, err)
	}
	if _, err := f.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000dead"}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("terminate unknown: %v", err)
	}
	out, err = f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]})
	if err != nil || out.Reservations[0].Instances[0].State.Name != types.InstanceStateNameTerminated {
		t.Errorf("terminated: %+v %v", out, err)
	}
	out, err = f.ec2.DescribeInstances(ctx, byTag)
	if err != nil || len(out.Reservations) != 2 {
		t.Errorf("terminated still listed for a while: %v", err)
	}
	f.now = f.now.Add(2 * time.Hour)
	if _, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("long-terminated: %v", err)
	}
	if _, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000dead"}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("unknown: %v", err)
	}
}

func TestFaultsAndCalls(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeAvailabilityZones", Code: "RequestLimitExceeded", Count: 2})
	if _, err := f.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{}); err != nil {
		t.Fatalf("retried call failed: %v", err)
	}
	if got := f.sim.Calls()["DescribeAvailabilityZones"]; got != 3 {
		t.Errorf("calls = %d, want 3 (2 throttled + 1)", got)
	}
	f.sim.ResetCalls()
	f.sim.InjectFault(ec2sim.Fault{Code: "InternalError", Count: 10})
	_, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 2 })
	if apiCode(err) != "InternalError" {
		t.Errorf("internal error: %v", err)
	}
	if got := f.sim.Calls()["DescribeSubnets"]; got != 2 {
		t.Errorf("calls = %d, want 2", got)
	}
	f.sim.ClearFaults()
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Latency: 50 * time.Millisecond, Count: 1})
	start := time.Now()
	if _, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Errorf("latency: %v %v", time.Since(start), err)
	}
}

func TestJSONRoutingAndProtocolErrors(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	f.sim.JSONHandlers["AmazonSSM"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	do := func(target, body string) (int, string) {
		req, _ := http.NewRequest("POST", f.url, strings.NewReader(body))
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, sb.String()
	}
	if code, body := do("AmazonSSM.GetParameter", "{}"); code != 200 || body != `{"ok":true}` {
		t.Errorf("ssm: %d %s", code, body)
	}
	if code, body := do("Nope.Op", "{}"); code != 400 || !strings.Contains(body, "UnknownOperationException") {
		t.Errorf("unknown target: %d %s", code, body)
	}
	if code, body := do("", url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}}.Encode()); code != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") || !strings.Contains(body, "<RequestID>") {
		t.Errorf("unknown action: %d %s", code, body)
	}
	if c := f.sim.Calls(); c["AmazonSSM.GetParameter"] != 1 || c["RunInstances"] != 1 {
		t.Errorf("calls: %v", c)
	}
}

func TestCreateFleetConcurrentCapacityAndPriority(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	f.sim.SetCapacity("t3.micro", "us-east-1a", "spot", 5)
	overrides := []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "t3.micro", SubnetId: aws.String(subnets["us-east-1a"])}}
	errs := make(chan error, 20)
	launched := make(chan int, 20)
	for i := 0; i < 20; i++ {
		go func() {
			out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, overrides, types.DefaultTargetCapacityTypeSpot, ""))
			errs <- err
			if err == nil {
				launched <- len(out.Instances)
			} else {
				launched <- 0
			}
		}()
	}
	total := 0
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		total += <-launched
	}
	if total != 5 || len(f.sim.Instances()) != 5 {
		t.Errorf("launched %d, want 5", total)
	}

	// Prioritized on-demand takes the lowest Priority, not the cheapest.
	in := fleetInput(lt, []types.FleetLaunchTemplateOverridesRequest{
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1b"]), Priority: aws.Float64(2)},
		{InstanceType: "m5.xlarge", SubnetId: aws.String(subnets["us-east-1b"]), Priority: aws.Float64(1)},
	}, types.DefaultTargetCapacityTypeOnDemand, "")
	in.OnDemandOptions.AllocationStrategy = types.FleetOnDemandAllocationStrategyPrioritized
	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(2)
	out, err := f.ec2.CreateFleet(ctx, in)
	if err != nil || len(out.Instances) != 1 || out.Instances[0].InstanceType != "m5.xlarge" || len(out.Instances[0].InstanceIds) != 2 {
		t.Errorf("prioritized: %+v %v", out, err)
	}
	// Unknown launch template: an error item, no instances.
	out, err = f.ec2.CreateFleet(ctx, fleetInput("nope", overrides, types.DefaultTargetCapacityTypeSpot, ""))
	if err != nil || len(out.Instances) != 0 || len(out.Errors) != 1 || *out.Errors[0].ErrorCode != "InvalidLaunchTemplateName.NotFoundException" {
		t.Errorf("unknown template: %+v %v", out, err)
	}
}
