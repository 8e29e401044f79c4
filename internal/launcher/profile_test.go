package launcher_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func conditionsOf(res *launcherv1.ResolveNodeClassResponse) map[string]string {
	got := map[string]string{}
	for _, c := range res.Conditions {
		got[c.Type] = c.Status + "/" + c.Reason
	}
	return got
}

// The managed instance profile of a class's role is made by the first
// Launch, once, and only by a launch: ResolveNodeClass reports it.
func TestInstanceProfileMadeByLaunchOnly(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	want := nodeclass.InstanceProfileName(cluster, "KarpenterNodeRole")
	if !strings.HasPrefix(want, "flotilla_"+cluster+"_") || want != nodeclass.InstanceProfileName(cluster, "arn:aws:iam::123456789012:role/KarpenterNodeRole") {
		t.Fatalf("profile name %q", want)
	}
	res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := conditionsOf(res); res.InstanceProfile != want || got["InstanceProfileReady"] != "True/InstanceProfilePending" || got["Ready"] != "True/Ready" {
		t.Fatalf("before any launch: instance profile %q, conditions %v", res.InstanceProfile, got)
	}
	if n := len(e.iam.InstanceProfiles()); n != 0 || e.iam.Calls()["CreateInstanceProfile"] != 0 {
		t.Fatalf("ResolveNodeClass made %d instance profiles (IAM calls %v)", n, e.iam.Calls())
	}
	if _, err := svc.Launch(ctx, launchRequest("ip-1", "m5.large")); err != nil {
		t.Fatal(err)
	}
	profiles := e.iam.InstanceProfiles()
	if len(profiles) != 1 || profiles[0].Name != want || len(profiles[0].Roles) != 1 || profiles[0].Roles[0] != "KarpenterNodeRole" ||
		profiles[0].Tags["kubernetes.io/cluster/"+cluster] != "owned" {
		t.Fatalf("profiles %+v", profiles)
	}
	if lts := e.sim.LaunchTemplates(); len(lts) != 1 || lts[0].Data["IamInstanceProfile.Name"] != want {
		t.Fatalf("launch template profile %v", lts[0].Data)
	}
	if _, err := svc.Launch(ctx, launchRequest("ip-2", "m5.large")); err != nil {
		t.Fatal(err)
	}
	// A restarted launcher finds the profile in place: ready, no second
	// create, on resolution and on launch.
	restarted := e.service(t)
	res, err = restarted.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: "default"})
	if err != nil || conditionsOf(res)["InstanceProfileReady"] != "True/InstanceProfileReady" {
		t.Fatalf("after the launch: %v %v", res, err)
	}
	if _, err := restarted.Launch(ctx, launchRequest("ip-3", "m5.large")); err != nil {
		t.Fatal(err)
	}
	calls := e.iam.Calls()
	if calls["CreateInstanceProfile"] != 1 || calls["AddRoleToInstanceProfile"] != 1 || len(e.iam.InstanceProfiles()) != 1 {
		t.Fatalf("IAM calls %v", calls)
	}
}

func TestInstanceProfileConditions(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	// A role IAM does not have: the launch that would make its profile
	// fails naming it; nothing launches.
	name := e.classWith(t, "nosuchrole", func(nc *awsv1.EC2NodeClass) { nc.Spec.Role = "NoSuchRole" })
	req := launchRequest("nsr-1", "m5.large")
	req.NodeClassName = name
	_, err := svc.Launch(ctx, req)
	if !errors.Is(err, apierr.ErrFailedPrecondition) || !strings.Contains(err.Error(), "role NoSuchRole does not exist") {
		t.Fatalf("launch with a missing role: %v", err)
	}
	if n := e.sim.Calls()["CreateFleet"]; n != 0 {
		t.Fatalf("%d CreateFleet calls for a class whose role is missing", n)
	}
	// An instanceProfile given as such is used as is, without IAM calls.
	name = e.classWith(t, "own-profile", func(nc *awsv1.EC2NodeClass) {
		profile := "MyProfile"
		nc.Spec.Role, nc.Spec.InstanceProfile = "", &profile
	})
	before := totalCalls(e.iam.Calls())
	res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: name})
	if err != nil || res.InstanceProfile != "MyProfile" || totalCalls(e.iam.Calls()) != before {
		t.Fatalf("instanceProfile: %v %v, IAM calls %v", res, err, e.iam.Calls())
	}
	// IAM throttling is retried by the SDK.
	e.sim.InjectFault(ec2sim.Fault{Action: "GetInstanceProfile", Code: "Throttling", Count: 2})
	res, err = svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: "default"})
	if err != nil || !strings.HasPrefix(res.InstanceProfile, "flotilla_") {
		t.Fatalf("after throttling: %v %v", res, err)
	}
	// Access denied is the class's condition, not an error.
	e.sim.InjectFault(ec2sim.Fault{Action: "GetInstanceProfile", Code: "AccessDenied", Count: 1})
	denied := e.service(t)
	res, err = denied.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: "default"})
	if err != nil || conditionsOf(res)["InstanceProfileReady"] != "False/InstanceProfileAccessDenied" {
		t.Fatalf("access denied: %v %v", res, err)
	}
	// Isolated VPC: no IAM client; the role's same-named profile.
	iso := e.service(t, func(c *launcher.Config) { c.AWS.IsolatedVPC = true })
	before = totalCalls(e.iam.Calls())
	res, err = iso.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: "default"})
	if err != nil || res.InstanceProfile != "KarpenterNodeRole" || totalCalls(e.iam.Calls()) != before {
		t.Fatalf("isolated: %v %v", res, err)
	}
}

// 200 ResolveNodeClass calls for classes that do not exist, or that name
// roles IAM does not know, make no instance profile: resolution only
// reads, and a caller cannot name a role over the wire.
func TestResolveNodeClassMakesNoInstanceProfiles(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	for i := range 100 {
		name := e.classWith(t, fmt.Sprintf("unknown-role-%d", i), func(nc *awsv1.EC2NodeClass) { nc.Spec.Role = fmt.Sprintf("UnknownRole%d", i) })
		if _, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: name}); err != nil {
			t.Fatalf("class %s: %v", name, err)
		}
		_, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: fmt.Sprintf("nonexistent-%d", i)})
		if !errors.Is(err, apierr.ErrNotFound) {
			t.Fatalf("nonexistent class %d: %v, want not found", i, err)
		}
	}
	calls := e.iam.Calls()
	if n := len(e.iam.InstanceProfiles()); n != 0 || calls["CreateInstanceProfile"] != 0 || calls["AddRoleToInstanceProfile"] != 0 {
		t.Fatalf("%d instance profiles after 200 resolutions; IAM calls %v", n, calls)
	}
	if calls["GetInstanceProfile"] != 100 {
		t.Errorf("%d GetInstanceProfile calls, want one per class that exists (100)", calls["GetInstanceProfile"])
	}
}
