package launcher_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// wideWindow makes concurrent launches in a test land in one batch.
func wideWindow(c *launcher.Config) { c.BatchWindow = 300 * time.Millisecond }

// launchAll launches the claims concurrently and returns each response or
// error, by claim.
func launchAll(svc *launcher.Service, claims []string, options ...string) (map[string]*launcherv1.Instance, map[string]error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	got, errs := map[string]*launcherv1.Instance{}, map[string]error{}
	for _, c := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := svc.Launch(ctx, launchRequest(c, options...))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[c] = err
				return
			}
			got[c] = resp.Instance
		}()
	}
	wg.Wait()
	return got, errs
}

func claimNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return out
}

func TestConcurrentLaunchesShareOneFleet(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t, wideWindow)
	claims := claimNames("batch", 12)
	got, errs := launchAll(svc, claims, "m5.large", "m5.xlarge")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if n := e.sim.Calls()["CreateFleet"]; n != 1 {
		t.Errorf("%d CreateFleet calls for 12 concurrent launches, want 1", n)
	}
	ids := map[string]string{}
	for c, in := range got {
		if other, dup := ids[in.Id]; dup {
			t.Fatalf("%s and %s both got %s", c, other, in.Id)
		}
		ids[in.Id] = c
		if in.NodeClaim != c || in.Zone == "" || in.PricePerHour <= 0 {
			t.Errorf("%s: %+v", c, in)
		}
	}
	for _, in := range e.sim.Instances() {
		if in.Tags[launch.TagNodeClaim] != ids[in.ID] || in.Tags["Name"] != "default/"+ids[in.ID] || in.Tags[launch.TagLaunchBatch] == "" {
			t.Errorf("instance %s tags %v, want node claim %s", in.ID, in.Tags, ids[in.ID])
		}
	}
	// Retries (and a restarted launcher) find the same instances.
	again, errs := launchAll(e.service(t, wideWindow), claims, "m5.large", "m5.xlarge")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for c, in := range again {
		if in.Id != got[c].Id {
			t.Errorf("%s: relaunch got %s, first %s", c, in.Id, got[c].Id)
		}
	}
	if n := len(e.sim.Instances()); n != len(claims) {
		t.Errorf("%d instances for %d claims", n, len(claims))
	}
}

// A launcher that stops after CreateFleet but before tagging each instance
// with its NodeClaim (here: CreateTags refused) must not launch a second
// instance on retry: the batch tags say whose each instance is.
func TestBatchRecoversUntaggedInstancesAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(ec2sim.Fault{Action: "CreateTags", Code: "UnauthorizedOperation", Status: 403})
	claims := claimNames("crash", 6)
	got, errs := launchAll(e.service(t, wideWindow), claims, "m5.large")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, in := range e.sim.Instances() {
		if in.Tags[launch.TagNodeClaim] != "" {
			t.Fatalf("instance %s tagged despite the fault: %v", in.ID, in.Tags)
		}
	}
	e.sim.ClearFaults()
	restarted := e.service(t, wideWindow)
	list, err := restarted.ListInstances(ctx, &launcherv1.ListInstancesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list.Instances {
		if got[in.NodeClaim] == nil || got[in.NodeClaim].Id != in.Id {
			t.Errorf("ListInstances: %s reported for claim %q", in.Id, in.NodeClaim)
		}
	}
	fleets := e.sim.Calls()["CreateFleet"]
	for _, c := range claims {
		resp, err := restarted.Launch(ctx, launchRequest(c, "m5.large"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Instance.Id != got[c].Id {
			t.Errorf("%s: retry got %s, first launch %s", c, resp.Instance.Id, got[c].Id)
		}
	}
	if e.sim.Calls()["CreateFleet"] != fleets || len(e.sim.Instances()) != len(claims) {
		t.Fatalf("retries launched: CreateFleet %d→%d, %d instances", fleets, e.sim.Calls()["CreateFleet"], len(e.sim.Instances()))
	}
	for _, in := range e.sim.Instances() {
		if in.Tags[launch.TagNodeClaim] == "" {
			t.Errorf("instance %s still lacks its node claim tag after recovery", in.ID)
		}
	}
}

func TestBatchPartialFulfilment(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t, wideWindow)
	// Three spot m5.large in all; on-demand takes the rest.
	for _, z := range e.sim.Zones() {
		e.sim.SetCapacity("m5.large", z, "spot", 1)
	}
	got, errs := launchAll(svc, claimNames("part", 5), "m5.large")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	spot := 0
	for _, in := range got {
		if in.CapacityType == "spot" {
			spot++
		}
	}
	if spot != 3 || len(got) != 5 {
		t.Fatalf("%d launched, %d spot; want 5 with 3 spot", len(got), spot)
	}
	// Nothing left anywhere: the unfilled get the typed error.
	for _, z := range e.sim.Zones() {
		e.sim.SetCapacity("c5.large", z, "spot", 0)
		e.sim.SetCapacity("c5.large", z, "on-demand", 0)
	}
	e.sim.SetCapacity("c5.large", e.sim.Zones()[0], "spot", 2)
	got, errs = launchAll(svc, claimNames("short", 4), "c5.large")
	if len(got) != 2 || len(errs) != 2 {
		t.Fatalf("launched %d, failed %d; want 2 and 2", len(got), len(errs))
	}
	for c, err := range errs {
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("%s: %v, want ResourceExhausted", c, err)
		}
	}
}
