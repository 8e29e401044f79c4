package server

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// flaky answers UNAVAILABLE a few times, then serves.
type flaky struct {
	healthpb.UnimplementedHealthServer
	fails int
	calls int
}

func (f *flaky) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	f.calls++
	if f.calls <= f.fails {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func TestDialRetriesUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	f := &flaky{fails: 3}
	healthpb.RegisterHealthServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := DialWith(ln.Addr().String(), DialOptions{Insecure: true, Services: []string{healthpb.Health_ServiceDesc.ServiceName}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("after 3 UNAVAILABLE answers: %v", err)
	}
	if f.calls != 4 {
		t.Errorf("%d calls, want 4", f.calls)
	}
}

func TestDialDoesNotRetryOtherServices(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	f := &flaky{fails: 1}
	healthpb.RegisterHealthServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := DialWith(ln.Addr().String(), DialOptions{Insecure: true, Services: []string{"flotilla.other.v1.OtherService"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable || f.calls != 1 {
		t.Errorf("err %v after %d calls, want one UNAVAILABLE", err, f.calls)
	}
}

// standby always answers UNAVAILABLE, as a watcher that is not the leader.
type standby struct {
	healthpb.UnimplementedHealthServer
}

func (standby) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, status.Error(codes.Unavailable, "this replica is not the leader")
}

// With two replicas behind one name, one of them a standby, every call
// reaches the leader: round-robin picks and UNAVAILABLE retries.
func TestDialReachesTheLeaderAmongReplicas(t *testing.T) {
	var addrs []resolver.Address
	leader := &flaky{}
	for _, h := range []healthpb.HealthServer{standby{}, leader} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, h)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(srv.Stop)
		addrs = append(addrs, resolver.Address{Addr: ln.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("flotilla-test")
	r.InitialState(resolver.State{Addresses: addrs})
	resolver.Register(r)
	conn, err := DialWith("flotilla-test:///watcher", DialOptions{Insecure: true, MaxMessageBytes: 1 << 20, Services: []string{"grpc.health.v1.Health"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if leader.calls != 10 {
		t.Errorf("the leader answered %d of 10 calls", leader.calls)
	}
}
