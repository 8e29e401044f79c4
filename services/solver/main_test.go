package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flotilla-io/flotilla/internal/localca"
	"github.com/flotilla-io/flotilla/internal/server"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format=xml"},
		{"--drain-period=soon"},
		{"--max-message-bytes=0"},
		{"extra"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	t.Setenv("FLOTILLA_LOG_LEVEL", "shout")
	if err := run(nil); err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Errorf("bad FLOTILLA_LOG_LEVEL: %v", err)
	}
}

// TestRunServesAndStopsOnSIGTERM runs the real main loop: configured from
// the environment, it serves health, then stops on SIGTERM.
func TestRunServesAndStopsOnSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv("FLOTILLA_GRPC_ADDR", addr)
	t.Setenv("FLOTILLA_DRAIN_PERIOD", "0s")
	t.Setenv("FLOTILLA_LOG_LEVEL", "warn")
	ca, err := localca.New("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, server.IdentitySolver, localca.LocalHosts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLOTILLA_TLS_CERT", files.Cert)
	t.Setenv("FLOTILLA_TLS_KEY", files.Key)
	t.Setenv("FLOTILLA_TLS_CA", files.CA)
	client, err := ca.WriteFiles(dir, "operator")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run([]string{"--metrics-addr="}) }()

	// A plaintext client is refused; one with a certificate of the CA is
	// served.
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Close() }()
	conn, err := server.DialWith(addr, server.DialOptions{TLS: client, ServerIdentity: server.IdentitySolver})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "flotilla.solver.v1.SolverService"})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service never became healthy: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := healthpb.NewHealthClient(plain).Check(context.Background(), &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a plaintext client was served")
	}
	// run has installed its signal handler by now (it serves only after).
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop on SIGTERM")
	}
}
