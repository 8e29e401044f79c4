// Package interruptiontest has fake watcher and launcher gRPC servers for
// testing the interruption service over real gRPC on loopback.
package interruptiontest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// Cluster is the cluster the fakes serve.
const Cluster = "test-cluster"

// InstanceID is the id of the i-th fake instance.
func InstanceID(i int) string { return fmt.Sprintf("i-%016x", i) }

// Watcher knows some instances as nodes and records Disrupt calls.
type Watcher struct {
	watcherv1.UnimplementedWatcherServiceServer
	mu       sync.Mutex
	nodes    map[string]string // instance id -> node name
	calls    []*watcherv1.DisruptRequest
	failures int
}

// Disrupt accepts instances it knows, refuses others with NotFound as the
// watcher does, and fails while failures are pending.
func (f *Watcher) Disrupt(_ context.Context, req *watcherv1.DisruptRequest) (*watcherv1.DisruptResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return nil, status.Error(codes.Internal, "watcher failed")
	}
	f.calls = append(f.calls, req)
	node, ok := f.nodes[req.GetInstanceId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "instance_id %q: no NodeClaim of this cluster has that instance id", req.GetInstanceId())
	}
	return &watcherv1.DisruptResponse{Accepted: true, NodeName: node, Message: "disruption started"}, nil
}

// Disrupts returns the accepted (not failed) calls so far.
func (f *Watcher) Disrupts() []*watcherv1.DisruptRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*watcherv1.DisruptRequest(nil), f.calls...)
}

// FailNext makes the next n calls fail with INTERNAL (not retried by the client).
func (f *Watcher) FailNext(n int) {
	f.mu.Lock()
	f.failures = n
	f.mu.Unlock()
}

// Launcher lists instances and records MarkUnavailable calls.
type Launcher struct {
	launcherv1.UnimplementedLauncherServiceServer
	mu        sync.Mutex
	instances []*launcherv1.Instance
	marks     []*launcherv1.MarkUnavailableRequest
	failures  int
}

// ListInstances lists the instances of Cluster; as the launcher does, it
// refuses a request naming another cluster.
func (f *Launcher) ListInstances(_ context.Context, req *launcherv1.ListInstancesRequest) (*launcherv1.ListInstancesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := req.GetCluster(); c != "" && c != Cluster { //nolint:staticcheck // read to refuse another cluster, as the launcher does
		return nil, status.Errorf(codes.InvalidArgument, "cluster: %q is not this launcher's cluster %q", c, Cluster)
	}
	return &launcherv1.ListInstancesResponse{Instances: f.instances}, nil
}

// MarkUnavailable records the call, or fails while failures are pending.
func (f *Launcher) MarkUnavailable(_ context.Context, req *launcherv1.MarkUnavailableRequest) (*launcherv1.MarkUnavailableResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return nil, status.Error(codes.Internal, "launcher failed")
	}
	f.marks = append(f.marks, req)
	return &launcherv1.MarkUnavailableResponse{}, nil
}

// Marked returns the recorded MarkUnavailable calls.
func (f *Launcher) Marked() []*launcherv1.MarkUnavailableRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*launcherv1.MarkUnavailableRequest(nil), f.marks...)
}

// FailNext makes the next n MarkUnavailable calls fail.
func (f *Launcher) FailNext(n int) {
	f.mu.Lock()
	f.failures = n
	f.mu.Unlock()
}

// Servers are a fake watcher and launcher on one loopback gRPC server.
type Servers struct {
	Watcher  *Watcher
	Launcher *Launcher
	// Addr is the server's address, such as 127.0.0.1:41234.
	Addr string
}

// Start serves a fake watcher knowing n instances (InstanceID(0) ...) as
// nodes "node-<id>", and a fake launcher listing them as spot m5.large in
// us-east-1a, until the test ends.
func Start(tb testing.TB, n int) *Servers {
	tb.Helper()
	s := &Servers{Watcher: &Watcher{nodes: map[string]string{}}, Launcher: &Launcher{}}
	for i := range n {
		id := InstanceID(i)
		s.Watcher.nodes[id] = "node-" + id
		s.Launcher.instances = append(s.Launcher.instances, &launcherv1.Instance{
			Id: id, InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot", State: "running",
			ProviderId: "aws:///us-east-1a/" + id,
		})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	watcherv1.RegisterWatcherServiceServer(srv, s.Watcher)
	launcherv1.RegisterLauncherServiceServer(srv, s.Launcher)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	s.Addr = lis.Addr().String()
	return s
}
