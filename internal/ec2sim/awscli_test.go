package ec2sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/iamsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
)

// TestAWSCLI drives the simulator with the aws CLI, when it is installed.
func TestAWSCLI(t *testing.T) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	if testing.Short() {
		t.Skip("slow: starts the aws CLI")
	}
	sim := ec2sim.New(ec2sim.Options{Catalog: mustCatalog(t, smallCatalog)})
	sim.AddImage(ec2sim.Image{ID: "ami-0123456789abcdef0", Name: "eks-node", OwnerID: "602401143452"})
	sim.JSONHandlers["AmazonSSM"] = ssmsim.New(map[string]string{"/aws/service/test/ami": "ami-0123456789abcdef0"})
	iamH := iamsim.New(ec2sim.AccountID, nil)
	iamH.AddRole("NodeRole")
	sim.QueryHandlers[iamsim.APIVersion] = iamH
	srv := httptest.NewServer(sim)
	defer srv.Close()
	home := t.TempDir()
	aws := func(out any, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoint-url", srv.URL, "--region", "us-east-1", "--output", "json"}, args...)...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
			"AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials",
			"HOME="+home, "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
		b, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = string(ee.Stderr)
			}
			if stderr == "" || ctx.Err() != nil {
				t.Skipf("aws CLI does not run here: %v %s", err, stderr)
			}
			t.Fatalf("aws %v: %v\n%s", args, err, stderr)
		}
		if out == nil { // a command with an empty answer
			return
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, b)
		}
	}

	var its struct {
		InstanceTypes []struct{ InstanceType string }
	}
	aws(&its, "ec2", "describe-instance-types", "--page-size", "5")
	if len(its.InstanceTypes) != 7 {
		t.Errorf("describe-instance-types: %d types", len(its.InstanceTypes))
	}
	var sn struct {
		Subnets []struct{ SubnetId, AvailabilityZone string }
	}
	aws(&sn, "ec2", "describe-subnets", "--filters", "Name=tag:karpenter.sh/discovery,Values=test-cluster")
	if len(sn.Subnets) != 3 {
		t.Fatalf("describe-subnets: %+v", sn)
	}
	var lt struct {
		LaunchTemplate struct{ LaunchTemplateId string }
	}
	aws(&lt, "ec2", "create-launch-template", "--launch-template-name", "cli-test",
		"--launch-template-data", `{"ImageId":"ami-0123456789abcdef0"}`)
	if lt.LaunchTemplate.LaunchTemplateId == "" {
		t.Fatal("create-launch-template: no id")
	}
	var fl struct {
		FleetId   string
		Instances []struct{ InstanceIds []string }
	}
	aws(&fl, "ec2", "create-fleet", "--type", "instant",
		"--launch-template-configs", `[{"LaunchTemplateSpecification":{"LaunchTemplateName":"cli-test","Version":"$Latest"},"Overrides":[{"InstanceType":"m5.large","SubnetId":"`+sn.Subnets[0].SubnetId+`"}]}]`,
		"--target-capacity-specification", "TotalTargetCapacity=1,DefaultTargetCapacityType=spot",
		"--tag-specifications", `ResourceType=instance,Tags=[{Key=owner,Value=cli}]`)
	if len(fl.Instances) != 1 || len(fl.Instances[0].InstanceIds) != 1 {
		t.Fatalf("create-fleet: %+v", fl)
	}
	var di struct {
		Reservations []struct {
			Instances []struct {
				InstanceId string
				State      struct{ Name string }
			}
		}
	}
	aws(&di, "ec2", "describe-instances", "--filters", "Name=tag:owner,Values=cli")
	if len(di.Reservations) != 1 || di.Reservations[0].Instances[0].InstanceId != fl.Instances[0].InstanceIds[0] || di.Reservations[0].Instances[0].State.Name != "running" {
		t.Errorf("describe-instances: %+v", di)
	}
	var term struct {
		TerminatingInstances []struct{ CurrentState struct{ Name string } }
	}
	aws(&term, "ec2", "terminate-instances", "--instance-ids", fl.Instances[0].InstanceIds[0])
	if len(term.TerminatingInstances) != 1 || term.TerminatingInstances[0].CurrentState.Name != "shutting-down" {
		t.Errorf("terminate-instances: %+v", term)
	}
	var param struct {
		Parameter struct{ Name, Value string }
	}
	aws(&param, "ssm", "get-parameter", "--name", "/aws/service/test/ami")
	if param.Parameter.Value != "ami-0123456789abcdef0" {
		t.Errorf("ssm get-parameter: %+v", param)
	}
	var made struct {
		InstanceProfile struct{ InstanceProfileName, Arn string }
	}
	aws(&made, "iam", "create-instance-profile", "--instance-profile-name", "cli-profile", "--tags", "Key=owner,Value=cli")
	if made.InstanceProfile.Arn != "arn:aws:iam::"+ec2sim.AccountID+":instance-profile/cli-profile" {
		t.Errorf("iam create-instance-profile: %+v", made)
	}
	aws(nil, "iam", "add-role-to-instance-profile", "--instance-profile-name", "cli-profile", "--role-name", "NodeRole")
	var got struct {
		InstanceProfile struct {
			Roles []struct{ RoleName string }
		}
	}
	aws(&got, "iam", "get-instance-profile", "--instance-profile-name", "cli-profile")
	if len(got.InstanceProfile.Roles) != 1 || got.InstanceProfile.Roles[0].RoleName != "NodeRole" {
		t.Errorf("iam get-instance-profile: %+v", got)
	}
}
