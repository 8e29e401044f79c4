package launcher_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// launchOrphan starts an instance tagged for the cluster but with no
// NodeClaim, as a crashed launch or a manual one would leave behind.
func launchOrphan(t testing.TB, e *env) string {
	t.Helper()
	return launchTagged(t, e, map[string]string{launch.ClusterTag(cluster): "owned", launch.TagNodePool: "general"})
}

// launchTagged launches an m5.large with tags, behind the launcher's back.
func launchTagged(t testing.TB, e *env, tags map[string]string) string {
	t.Helper()
	var ec2Tags []ec2types.Tag
	for k, v := range tags {
		ec2Tags = append(ec2Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	c, err := awsclient.New(ctx, e.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	lts := e.sim.LaunchTemplates()
	subnets, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(lts) == 0 || len(subnets.Subnets) == 0 {
		t.Fatalf("setup: %v", err)
	}
	out, err := c.EC2.CreateFleet(ctx, &ec2.CreateFleetInput{
		Type: ec2types.FleetTypeInstant,
		LaunchTemplateConfigs: []ec2types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(lts[0].Name), Version: aws.String("$Latest")},
			Overrides:                   []ec2types.FleetLaunchTemplateOverridesRequest{{InstanceType: "m5.large", SubnetId: subnets.Subnets[0].SubnetId}},
		}},
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: "on-demand"},
		TagSpecifications:           []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags}},
	})
	if err != nil || len(out.Instances) == 0 {
		t.Fatalf("orphan launch: %v %+v", err, out)
	}
	return out.Instances[0].InstanceIds[0]
}

// serve runs the service behind internal/server on 127.0.0.1:0.
func serve(t testing.TB, svc *launcher.Service) launcherv1.LauncherServiceClient {
	srv, err := server.New(server.Config{Name: "launcher", GRPCAddr: "127.0.0.1:0", StopTimeout: time.Second, Insecure: true}, func(s *grpc.Server) {
		launcherv1.RegisterLauncherServiceServer(s, svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return launcherv1.NewLauncherServiceClient(conn)
}

func TestGRPC(t *testing.T) {
	e := newEnv(t)
	client := serve(t, e.service(t))
	types, err := client.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: nodeClass("al2023@latest")})
	if err != nil || len(types.InstanceTypes) == 0 {
		t.Fatalf("ListInstanceTypes: %v", err)
	}
	resp, err := client.Launch(ctx, launchRequest("grpc-1", "m5.large"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.Launch(ctx, launchRequest("grpc-1", "m5.large"))
	if err != nil || again.Instance.Id != resp.Instance.Id {
		t.Fatalf("relaunch: %v %v", again, err)
	}
	_, err = client.Launch(ctx, launchRequest("grpc-2", "m5.bogus"))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown type: %v, want InvalidArgument", err)
	}
	for _, z := range e.sim.Zones() {
		for _, ct := range []string{"spot", "on-demand"} {
			if _, err := client.MarkUnavailable(ctx, &launcherv1.MarkUnavailableRequest{InstanceType: "r5.large", Zone: z, CapacityType: ct, Ttl: durationpb.New(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err = client.Launch(ctx, launchRequest("grpc-3", "r5.large"))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("exhausted: %v, want ResourceExhausted", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.Reason != apierr.ReasonInsufficientCapacity || info.Metadata["offerings"] == "" {
		t.Fatalf("details %v", st.Details())
	}
	term, err := client.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: resp.Instance.Id, NodeClaim: "grpc-1"})
	if err != nil || term.State == "" {
		t.Fatalf("terminate: %v %v", term, err)
	}
	list, err := client.ListInstances(ctx, &launcherv1.ListInstancesRequest{})
	if err != nil || len(list.Instances) != 0 {
		t.Fatalf("list after terminate: %v %v", list, err)
	}
}

// launchMany launches n NodeClaims concurrently and returns each latency.
func launchMany(t testing.TB, launchFn func(*launcherv1.LaunchRequest) error, prefix string, n int) []time.Duration {
	var wg sync.WaitGroup
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = launchFn(launchRequest(fmt.Sprintf("%s-%03d", prefix, i), "m5.large", "m5.xlarge", "c5.xlarge", "m6i.large"))
			lat[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return lat
}

// TestAPICallsPerLaunchedNode measures EC2/SSM/Pricing calls per node for
// 100 concurrent launches from a cold launcher (catalog, node class and
// launch template fetched once) and again warm.
func TestAPICallsPerLaunchedNode(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	const n = 100
	launchMany(t, func(r *launcherv1.LaunchRequest) error { _, err := svc.Launch(ctx, r); return err }, "cold", n)
	cold := e.sim.Calls()
	e.sim.ResetCalls()
	launchMany(t, func(r *launcherv1.LaunchRequest) error { _, err := svc.Launch(ctx, r); return err }, "warm", n)
	warm := e.sim.Calls()
	if got := len(e.sim.Instances()); got != 2*n {
		t.Fatalf("%d instances, want %d", got, 2*n)
	}
	coldPer := float64(totalCalls(cold)) / n
	warmPer := float64(totalCalls(warm)) / n
	t.Logf("cold: %.2f API calls per launched node %v", coldPer, cold)
	t.Logf("warm: %.2f API calls per launched node %v", warmPer, warm)
	if coldPer > 2 || warmPer > 2 {
		t.Errorf("API calls per node: cold %.2f, warm %.2f; target ≤ 2", coldPer, warmPer)
	}
}

// BenchmarkLaunch reports Launch latency through gRPC against the
// simulator, 100 concurrent NodeClaims per iteration, with CreateFleet
// batching (the default window) and without.
func BenchmarkLaunch(b *testing.B) {
	for _, bc := range []struct {
		name   string
		window time.Duration
	}{{"batched", 0}, {"unbatched", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			client := serve(b, e.service(b, func(c *launcher.Config) { c.BatchWindow = bc.window }))
			var all []time.Duration
			for i := 0; b.Loop(); i++ {
				all = append(all, launchMany(b, func(r *launcherv1.LaunchRequest) error {
					_, err := client.Launch(ctx, r)
					return err
				}, fmt.Sprintf("bench%d", i), 100)...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			ms := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000 }
			calls := e.sim.Calls()
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(float64(totalCalls(calls))/float64(len(all)), "api-calls/node")
			b.ReportMetric(float64(calls["CreateFleet"])/float64(len(all)), "fleets/node")
		})
	}
}
