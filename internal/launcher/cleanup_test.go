package launcher_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// teamRequest launches claim with a class of its own whose tags name team.
func teamRequest(t *testing.T, e *env, claim, team string) *launcherv1.LaunchRequest {
	r := launchRequest(claim, "m5.large")
	r.NodeClassName = e.classWith(t, "team-"+team, func(nc *awsv1.EC2NodeClass) { nc.Spec.Tags = map[string]string{"team": team} })
	return r
}

func templateNames(e *env) []string {
	var out []string
	for _, lt := range e.sim.LaunchTemplates() {
		out = append(out, lt.Name)
	}
	slices.Sort(out)
	return out
}

func TestUnusedLaunchTemplatesAreDeleted(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	// A template someone else made, with no cluster tag: never touched.
	c, err := awsclient.New(ctx, e.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("flotilla-" + cluster + "-handmade"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12345678")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, teamRequest(t, e, "lt-a", "infra")); err != nil {
		t.Fatal(err)
	}
	infra := templateNames(e)
	e.clock.Advance(30 * time.Minute)
	if _, err := svc.Launch(ctx, teamRequest(t, e, "lt-b", "web")); err != nil {
		t.Fatal(err)
	}
	if n := len(templateNames(e)); n != 3 {
		t.Fatalf("%d templates, want 3", n)
	}
	e.clock.Advance(40 * time.Minute) // infra's unused 70m, web's 40m
	deleted, err := svc.Launcher.CleanupTemplates(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || !slices.Contains(infra, deleted[0]) {
		t.Fatalf("deleted %v, want the infra template (one of %v)", deleted, infra)
	}
	if n := e.sim.Calls()["DeleteLaunchTemplate"]; n != 1 {
		t.Fatalf("%d DeleteLaunchTemplate calls", n)
	}
	// A restarted launcher knows no use times: creation or start time
	// counts, so nothing is deleted yet.
	restarted := e.service(t)
	if deleted, err := restarted.Launcher.CleanupTemplates(ctx, time.Hour); err != nil || len(deleted) != 0 {
		t.Fatalf("after restart deleted %v, %v", deleted, err)
	}
	// Needed again: the launcher recreates it.
	if _, err := svc.Launch(ctx, teamRequest(t, e, "lt-c", "infra")); err != nil {
		t.Fatal(err)
	}
	if n := len(templateNames(e)); n != 3 {
		t.Fatalf("%d templates after relaunch, want 3: %v", n, templateNames(e))
	}
}

// A template deleted behind the launcher's back makes one launch fail at
// most; the next recreates it.
func TestLaunchRecreatesTemplateDeletedOutOfBand(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	if _, err := svc.Launch(ctx, launchRequest("oob-1", "m5.large")); err != nil {
		t.Fatal(err)
	}
	c, err := awsclient.New(ctx, e.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range e.sim.LaunchTemplates() {
		if _, err := c.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(lt.ID)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = svc.Launch(ctx, launchRequest("oob-2", "m5.large")) // may fail once
	if _, err := svc.Launch(ctx, launchRequest("oob-3", "m5.large")); err != nil {
		t.Fatalf("launch after the template was deleted: %v", err)
	}
	if n := len(e.sim.LaunchTemplates()); n != 1 {
		t.Fatalf("%d templates", n)
	}
}
