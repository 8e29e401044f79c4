package launcher_test

import (
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func TestInstanceProfileManagedForRole(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	want := nodeclass.InstanceProfileName(cluster, "KarpenterNodeRole")
	if !strings.HasPrefix(want, "flotilla_"+cluster+"_") || want != nodeclass.InstanceProfileName(cluster, "arn:aws:iam::123456789012:role/KarpenterNodeRole") {
		t.Fatalf("profile name %q", want)
	}
	res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nodeClass("al2023@latest")})
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceProfile != want {
		t.Fatalf("instance profile %q, want %q", res.InstanceProfile, want)
	}
	profiles := e.iam.InstanceProfiles()
	if len(profiles) != 1 || profiles[0].Name != want || len(profiles[0].Roles) != 1 || profiles[0].Roles[0] != "KarpenterNodeRole" ||
		profiles[0].Tags["kubernetes.io/cluster/"+cluster] != "owned" {
		t.Fatalf("profiles %+v", profiles)
	}
	if _, err := svc.Launch(ctx, launchRequest("ip-1", "m5.large")); err != nil {
		t.Fatal(err)
	}
	if lts := e.sim.LaunchTemplates(); len(lts) != 1 || lts[0].Data["IamInstanceProfile.Name"] != want {
		t.Fatalf("launch template profile %v", lts[0].Data)
	}
	// A restarted launcher finds the profile ready: no second create.
	if _, err := e.service(t).ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nodeClass("al2023@latest")}); err != nil {
		t.Fatal(err)
	}
	calls := e.iam.Calls()
	if calls["CreateInstanceProfile"] != 1 || calls["AddRoleToInstanceProfile"] != 1 || calls["GetInstanceProfile"] != 2 {
		t.Fatalf("IAM calls %v", calls)
	}
}

func TestInstanceProfileConditions(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	nc := nodeClass("al2023@latest")
	nc.Role = "NoSuchRole"
	res, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nc})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range res.Conditions {
		got[c.Type] = c.Status + "/" + c.Reason
	}
	if got["InstanceProfileReady"] != "False/RoleNotFound" || got["Ready"] != "False/NotReady" {
		t.Fatalf("conditions %v", got)
	}
	// An instanceProfile given as such is used as is, without IAM calls.
	nc = nodeClass("al2023@latest")
	nc.Role, nc.InstanceProfile = "", "MyProfile"
	before := totalCalls(e.iam.Calls())
	res, err = svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nc})
	if err != nil || res.InstanceProfile != "MyProfile" || totalCalls(e.iam.Calls()) != before {
		t.Fatalf("instanceProfile: %v %v, IAM calls %v", res, err, e.iam.Calls())
	}
	// IAM throttling is retried by the SDK.
	e.sim.InjectFault(ec2sim.Fault{Action: "GetInstanceProfile", Code: "Throttling", Count: 2})
	nc = nodeClass("al2023@latest")
	nc.Role = "KarpenterNodeRole"
	res, err = svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nc})
	if err != nil || !strings.HasPrefix(res.InstanceProfile, "flotilla_") {
		t.Fatalf("after throttling: %v %v", res, err)
	}
	// Isolated VPC: no IAM client; the role's same-named profile.
	iso := e.service(t, func(c *launcher.Config) { c.AWS.IsolatedVPC = true })
	before = totalCalls(e.iam.Calls())
	res, err = iso.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nodeClass("al2023@latest")})
	if err != nil || res.InstanceProfile != "KarpenterNodeRole" || totalCalls(e.iam.Calls()) != before {
		t.Fatalf("isolated: %v %v", res, err)
	}
}
