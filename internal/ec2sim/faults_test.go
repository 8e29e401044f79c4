package ec2sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/iamsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
)

var testCreds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")

// fastRetry keeps SDK retries quick in tests.
func fastRetry() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 4
		o.Backoff = retry.NewExponentialJitterBackoff(5 * time.Millisecond)
	})
}

func TestFaultsThroughTheSDKs(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	ssmH := ssmsim.New(map[string]string{"/test/p": "v"})
	f.sim.JSONHandlers["AmazonSSM"] = ssmH
	ssmC := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), Credentials: testCreds, Retryer: fastRetry()})

	// Throttling of a JSON-protocol service, retried to success.
	f.sim.InjectFault(ec2sim.Fault{Action: "GetParameter", Code: "ThrottlingException", Count: 2})
	out, err := ssmC.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/test/p")})
	if err != nil || aws.ToString(out.Parameter.Value) != "v" {
		t.Fatalf("ssm after throttling: %v %v", out, err)
	}
	if n := f.sim.Calls()["AmazonSSM.GetParameter"]; n != 3 {
		t.Errorf("%d GetParameter attempts, want 3", n)
	}

	// A 503 with a chosen code, then success.
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeSubnets", Code: "Unavailable", Status: 503, Count: 1})
	if _, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("after a 503: %v", err)
	}

	// Throttling that outlasts the retries surfaces as RequestLimitExceeded.
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeImages", Code: "RequestLimitExceeded"})
	_, err = f.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{}, func(o *ec2.Options) { o.Retryer = fastRetry() })
	if apiCode(err) != "RequestLimitExceeded" {
		t.Fatalf("persistent throttling: %v", err)
	}
	f.sim.ClearFaults()

	// Latency honours the caller's deadline.
	f.sim.InjectFault(ec2sim.Fault{Action: "DescribeSecurityGroups", Latency: time.Second})
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.ec2.DescribeSecurityGroups(dctx, &ec2.DescribeSecurityGroupsInput{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("latency past the deadline: %v after %v", err, time.Since(start))
	}
	f.sim.ClearFaults()
}

func TestCapacityExhaustionPartiallyFillsAFleet(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	for _, z := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		f.sim.SetCapacity("m5.large", z, "spot", 0)
	}
	f.sim.SetCapacity("m5.large", "us-east-1a", "spot", 2)
	in := fleetInput(lt, []types.FleetLaunchTemplateOverridesRequest{
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1a"])},
		{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1b"])},
	}, types.DefaultTargetCapacityTypeSpot, "partial-1")
	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(3)
	out, err := f.ec2.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fi := range out.Instances {
		n += len(fi.InstanceIds)
	}
	if n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	ice := 0
	for _, e := range out.Errors {
		if aws.ToString(e.ErrorCode) == "InsufficientInstanceCapacity" {
			ice++
		}
	}
	if ice != 2 {
		t.Fatalf("errors %+v, want InsufficientInstanceCapacity for both pools", out.Errors)
	}
}

func TestIAMInstanceProfilesThroughTheSDK(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	h := iamsim.New(ec2sim.AccountID, nil)
	h.AddRole("NodeRole")
	f.sim.QueryHandlers[iamsim.APIVersion] = h
	c := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), Credentials: testCreds, Retryer: fastRetry()})

	_, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("p1")})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Fatalf("missing profile: %v, want NoSuchEntity", err)
	}
	made, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
		InstanceProfileName: aws.String("p1"),
		Tags:                []iamtypes.Tag{{Key: aws.String("kubernetes.io/cluster/c"), Value: aws.String("owned")}},
	})
	if err != nil || aws.ToString(made.InstanceProfile.Arn) != "arn:aws:iam::"+ec2sim.AccountID+":instance-profile/p1" {
		t.Fatalf("create: %v %v", made, err)
	}
	_, err = c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("p1")})
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("p1"), RoleName: aws.String("Nope")}); !errors.As(err, &nse) {
		t.Fatalf("unknown role: %v", err)
	}
	f.sim.InjectFault(ec2sim.Fault{Action: "AddRoleToInstanceProfile", Code: "Throttling", Count: 1})
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("p1"), RoleName: aws.String("NodeRole")}); err != nil {
		t.Fatalf("add role after throttling: %v", err)
	}
	_, err = c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("p1"), RoleName: aws.String("NodeRole")})
	var limit *iamtypes.LimitExceededException
	if !errors.As(err, &limit) {
		t.Fatalf("second role: %v, want LimitExceeded", err)
	}
	got, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("p1")})
	if err != nil || len(got.InstanceProfile.Roles) != 1 || aws.ToString(got.InstanceProfile.Roles[0].RoleName) != "NodeRole" ||
		len(got.InstanceProfile.Tags) != 1 || got.InstanceProfile.CreateDate == nil {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String("p1")}); err == nil {
		t.Fatal("deleted a profile that still has a role")
	}
	if _, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String("p1"), RoleName: aws.String("NodeRole")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String("p1")}); err != nil {
		t.Fatal(err)
	}
	if calls := f.sim.Calls(); calls["AddRoleToInstanceProfile"] != 4 {
		t.Errorf("calls %v", calls)
	}
}
