package ec2sim_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

func TestQuotaClass(t *testing.T) {
	for typ, want := range map[string]string{
		"m5.large": ec2sim.QuotaStandard, "t3.micro": ec2sim.QuotaStandard, "m7i-flex.large": ec2sim.QuotaStandard,
		"g4dn.xlarge": ec2sim.QuotaG, "g5.48xlarge": ec2sim.QuotaG, "vt1.3xlarge": ec2sim.QuotaG,
		"p4d.24xlarge": ec2sim.QuotaP, "inf2.xlarge": ec2sim.QuotaInf, "trn1.2xlarge": ec2sim.QuotaTrn,
		"dl1.24xlarge": ec2sim.QuotaDL, "x2iedn.xlarge": ec2sim.QuotaX, "f1.2xlarge": ec2sim.QuotaF,
		"u-6tb1.metal": ec2sim.QuotaHighMemory,
	} {
		if got := ec2sim.QuotaClass(typ); got != want {
			t.Errorf("QuotaClass(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestParseVcpuQuotas(t *testing.T) {
	got, err := ec2sim.ParseVcpuQuotas("G=0, spot:P=96")
	want := map[string]map[string]int{"on-demand": {"G": 0}, "spot": {"G": 0, "P": 96}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	for _, bad := range []string{"G", "Q=1", "G=-1", "G=x", "reserved:G=1"} {
		if _, err := ec2sim.ParseVcpuQuotas(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// fleetErrorCodes are the codes of a CreateFleet answer's errors.
func fleetErrorCodes(out *ec2.CreateFleetOutput) map[string]bool {
	codes := map[string]bool{}
	for _, e := range out.Errors {
		codes[aws.ToString(e.ErrorCode)] = true
	}
	return codes
}

// A vCPU quota refuses the launches that would exceed it, per override,
// with VcpuLimitExceeded (on-demand) or MaxSpotInstanceCountExceeded
// (spot), counts running instances of its class only, and the answer,
// error included, is replayed for the same ClientToken.
func TestVcpuQuota(t *testing.T) {
	f := newFixture(t, ec2sim.Options{VcpuQuotas: map[string]map[string]int{"on-demand": {"G": 4}}})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	gpu := []types.FleetLaunchTemplateOverridesRequest{
		{InstanceType: "g4dn.xlarge", SubnetId: aws.String(subnets["us-east-1a"])},
		{InstanceType: "g4dn.xlarge", SubnetId: aws.String(subnets["us-east-1b"])},
	}
	out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeOnDemand, "q-1"))
	if err != nil || len(out.Instances) != 1 || len(out.Errors) != 0 {
		t.Fatalf("first GPU instance within the quota: %+v %v", out, err)
	}
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeOnDemand, "q-2"))
	if err != nil || len(out.Instances) != 0 || len(out.Errors) != 2 || !fleetErrorCodes(out)["VcpuLimitExceeded"] {
		t.Fatalf("second GPU instance over the quota: %+v %v", out, err)
	}
	std := []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "m5.large", SubnetId: aws.String(subnets["us-east-1a"])}}
	if out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, std, types.DefaultTargetCapacityTypeOnDemand, "q-3")); err != nil || len(out.Instances) != 1 {
		t.Fatalf("a Standard instance under a G quota: %+v %v", out, err)
	}
	if out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeSpot, "q-4")); err != nil || len(out.Instances) != 1 {
		t.Fatalf("spot under an on-demand quota: %+v %v", out, err)
	}

	f.sim.SetVcpuQuota(ec2sim.QuotaG, ec2sim.CapacityTypeOnDemand, 100)
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeOnDemand, "q-2"))
	if err != nil || len(out.Instances) != 0 || !fleetErrorCodes(out)["VcpuLimitExceeded"] {
		t.Fatalf("the same token after the quota was raised must replay the error: %+v %v", out, err)
	}
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeOnDemand, "q-5"))
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("a new token after the quota was raised: %+v %v", out, err)
	}

	f.sim.SetVcpuQuota(ec2sim.QuotaG, ec2sim.CapacityTypeSpot, 0)
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, gpu, types.DefaultTargetCapacityTypeSpot, "q-6"))
	if err != nil || len(out.Instances) != 0 || !fleetErrorCodes(out)["MaxSpotInstanceCountExceeded"] {
		t.Fatalf("spot over its quota: %+v %v", out, err)
	}
}

// Launches take a subnet's free addresses; a full subnet fails its
// overrides with InsufficientFreeAddressesInSubnet, and a termination
// gives the address back.
func TestSubnetAddresses(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	lt, subnets := launchSetup(t, f)
	sub := subnets["us-east-1a"]
	f.sim.SetSubnetAddresses(sub, 1)
	ov := []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "m5.large", SubnetId: aws.String(sub)}}
	out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, ov, types.DefaultTargetCapacityTypeOnDemand, "a-1"))
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("last address: %+v %v", out, err)
	}
	id := out.Instances[0].InstanceIds[0]
	out, err = f.ec2.CreateFleet(ctx, fleetInput(lt, ov, types.DefaultTargetCapacityTypeOnDemand, "a-2"))
	if err != nil || len(out.Instances) != 0 || !fleetErrorCodes(out)["InsufficientFreeAddressesInSubnet"] ||
		aws.ToString(out.Errors[0].LaunchTemplateAndOverrides.Overrides.SubnetId) != sub {
		t.Fatalf("full subnet: %+v %v", out, err)
	}
	sn, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{sub}})
	if err != nil || aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount) != 0 {
		t.Fatalf("describe full subnet: %+v %v", sn, err)
	}
	if _, err := f.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if out, err := f.ec2.CreateFleet(ctx, fleetInput(lt, ov, types.DefaultTargetCapacityTypeOnDemand, "a-3")); err != nil || len(out.Instances) != 1 {
		t.Fatalf("after a termination freed an address: %+v %v", out, err)
	}
}
