package server

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

	conn, err := Dial(ln.Addr().String(), DefaultMaxMessageBytes, healthpb.Health_ServiceDesc.ServiceName)
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

	conn, err := Dial(ln.Addr().String(), DefaultMaxMessageBytes, "flotilla.other.v1.OtherService")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable || f.calls != 1 {
		t.Errorf("err %v after %d calls, want one UNAVAILABLE", err, f.calls)
	}
}
