package server_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/version"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

const solverService = "flotilla.solver.v1.SolverService"

// fakeSolver behaves according to the name of the first pod.
type fakeSolver struct {
	solverv1.UnimplementedSolverServiceServer
}

func (fakeSolver) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	name := ""
	if len(req.GetPods()) > 0 {
		name = req.GetPods()[0].GetName()
	}
	switch name {
	case "panic":
		panic("boom")
	case "invalid":
		return nil, fmt.Errorf("validate: %w", fmt.Errorf("%w: pods[0].containers[0].requests[\"cpu\"]: invalid quantity \"12x\"", apierr.ErrInvalidArgument))
	case "canceled":
		return nil, fmt.Errorf("solving: %w", context.Canceled)
	case "failed":
		return nil, errors.New("solver exploded")
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &solverv1.SolveResponse{Plan: &typesv1.Plan{CostPerHour: 1}}, nil
}

func (fakeSolver) Consolidate(context.Context, *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	return &solverv1.ConsolidateResponse{}, nil
}

type testServer struct {
	srv    *server.Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Name = "fake"
	cfg.GRPCAddr = "127.0.0.1:0"
	if cfg.MetricsAddr == "" {
		cfg.MetricsAddr = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Insecure = true // mutual TLS has its own tests (mtls_test.go)
	srv, err := server.New(cfg, func(s *grpc.Server) {
		solverv1.RegisterSolverServiceServer(s, fakeSolver{})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ts.done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ts.conn = conn
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

func solve(ctx context.Context, conn *grpc.ClientConn, podName string) (*solverv1.SolveResponse, error) {
	req := &solverv1.SolveRequest{}
	if podName != "" {
		req.Pods = []*typesv1.Pod{{Name: podName}}
	}
	return solverv1.NewSolverServiceClient(conn).Solve(ctx, req)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHealthServing(t *testing.T) {
	ts := start(t, server.Config{})
	hc := healthpb.NewHealthClient(ts.conn)
	for _, svc := range []string{"", solverService} {
		resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health %q: %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, want SERVING", svc, resp.GetStatus())
		}
	}
	if _, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of unknown service: %v, want NotFound", err)
	}
}

func TestReflectionListsService(t *testing.T) {
	ts := start(t, server.Config{Reflection: true})
	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{solverService, "grpc.health.v1.Health"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	_ = stream.CloseSend()
}

func TestPanicBecomesInternalAndServerSurvives(t *testing.T) {
	ts := start(t, server.Config{})
	_, err := solve(ctxT(t), ts.conn, "panic")
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking RPC: %v, want Internal", err)
	}
	if strings.Contains(err.Error(), "boom") {
		t.Errorf("panic value leaked to the client: %v", err)
	}
	if !strings.Contains(ts.logs.String(), "boom") {
		t.Errorf("panic not logged; logs:\n%s", ts.logs)
	}
	if _, err := solve(ctxT(t), ts.conn, "ok"); err != nil {
		t.Fatalf("RPC after panic: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	ts := start(t, server.Config{})
	for _, tc := range []struct {
		pod  string
		code codes.Code
		msg  string
	}{
		{"invalid", codes.InvalidArgument, `pods[0].containers[0].requests["cpu"]: invalid quantity "12x"`},
		{"canceled", codes.Canceled, "solving"},
		{"failed", codes.Internal, "solver exploded"},
		{"ok", codes.OK, ""},
	} {
		_, err := solve(ctxT(t), ts.conn, tc.pod)
		if got := status.Code(err); got != tc.code {
			t.Errorf("%s: code %v, want %v (%v)", tc.pod, got, tc.code, err)
		}
		if err != nil && !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: message %q does not contain %q", tc.pod, status.Convert(err).Message(), tc.msg)
		}
	}
}

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("a: %w", apierr.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("a: %w", apierr.ErrNotFound), codes.NotFound},
		{fmt.Errorf("a: %w", apierr.ErrFailedPrecondition), codes.FailedPrecondition},
		{fmt.Errorf("a: %w", apierr.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("pods: %w", apierr.ErrResourceExhausted), codes.ResourceExhausted},
		{fmt.Errorf("a: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("a: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{fmt.Errorf("a: %w", status.Error(codes.AlreadyExists, "x")), codes.AlreadyExists},
		{errors.New("plain"), codes.Internal},
		{errors.Join(errors.New("x"), apierr.ErrInvalidArgument), codes.InvalidArgument},
	} {
		if got := status.Code(server.ToStatus(tc.err)); got != tc.code {
			t.Errorf("ToStatus(%v) = %v, want %v", tc.err, got, tc.code)
		}
	}
	if server.ToStatus(nil) != nil {
		t.Error("ToStatus(nil) != nil")
	}
}

func TestValidatorRegistry(t *testing.T) {
	ts := start(t, server.Config{Validators: map[string]server.ValidatorFunc{
		solverv1.SolverService_Consolidate_FullMethodName: func(req any) error {
			if len(req.(*solverv1.ConsolidateRequest).GetNodes()) == 0 {
				return errors.New("nodes: must not be empty")
			}
			return nil
		},
	}})
	c := solverv1.NewSolverServiceClient(ts.conn)
	_, err := c.Consolidate(ctxT(t), &solverv1.ConsolidateRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "nodes: must not be empty") {
		t.Fatalf("Consolidate without nodes: %v, want InvalidArgument naming nodes", err)
	}
	if _, err := c.Consolidate(ctxT(t), &solverv1.ConsolidateRequest{Nodes: []*typesv1.Node{{Name: "n"}}}); err != nil {
		t.Fatalf("valid Consolidate: %v", err)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestMetricsAndHealthz(t *testing.T) {
	ts := start(t, server.Config{})
	if _, err := solve(ctxT(t), ts.conn, "ok"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + ts.srv.MetricsAddr().String()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Solve",grpc_service="flotilla.solver.v1.SolverService",grpc_type="unary"} 1`,
		"grpc_server_handling_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

func TestMetricsDisabled(t *testing.T) {
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0", Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.MetricsAddr() != nil {
		t.Errorf("MetricsAddr = %v, want nil", srv.MetricsAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownDrainsThenStops(t *testing.T) {
	ts := start(t, server.Config{DrainPeriod: 700 * time.Millisecond, StopTimeout: 5 * time.Second})
	hc := healthpb.NewHealthClient(ts.conn)
	if resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before shutdown: %v %v", resp, err)
	}
	began := time.Now()
	ts.cancel()

	// During the drain the server still answers, but NOT_SERVING.
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: solverService})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health during drain: %v %v, want NOT_SERVING", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := httpGet(t, "http://"+ts.srv.MetricsAddr().String()+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz during drain: %d, want 503", code)
	}
	if _, err := solve(ctxT(t), ts.conn, "ok"); err != nil {
		t.Errorf("RPC during drain: %v", err)
	}

	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(began); d < 700*time.Millisecond {
		t.Errorf("Serve returned after %v, before the drain period", d)
	}
	if _, err := solve(ctxT(t), ts.conn, "ok"); status.Code(err) != codes.Unavailable {
		t.Errorf("RPC after stop: %v, want Unavailable", err)
	}
}

func TestShutdownHardStopsAfterTimeout(t *testing.T) {
	ts := start(t, server.Config{StopTimeout: 300 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		_, err := solve(context.Background(), ts.conn, "block")
		errc <- err
	}()
	// Wait until the blocking RPC is in flight.
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the stop timeout")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("hard stop took %v", d)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("blocked RPC succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Error("blocked RPC never finished")
	}
}

func TestMaxMessageBytes(t *testing.T) {
	ts := start(t, server.Config{MaxMessageBytes: 1024})
	req := &solverv1.SolveRequest{Pods: []*typesv1.Pod{{Name: strings.Repeat("x", 2048)}}}
	_, err := solverv1.NewSolverServiceClient(ts.conn).Solve(ctxT(t), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v, want ResourceExhausted", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []server.Config{
		{GRPCAddr: "127.0.0.1:0", Insecure: true, DrainPeriod: -1},
		{GRPCAddr: "127.0.0.1:0", Insecure: true, StopTimeout: -1},
		{GRPCAddr: "127.0.0.1:0", Insecure: true, MaxMessageBytes: -1},
		{GRPCAddr: "not an address", Insecure: true},
		{GRPCAddr: "127.0.0.1:0"}, // neither TLS files nor Insecure
		{GRPCAddr: "127.0.0.1:0", Insecure: true, TLS: server.TLSFiles{Cert: "c"}},
		{GRPCAddr: "127.0.0.1:0", TLS: server.TLSFiles{Cert: "/nonexistent.crt", Key: "/nonexistent.key", CA: "/nonexistent-ca.crt"}},
	} {
		if _, err := server.New(cfg, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestParseFlagsEnvFallback(t *testing.T) {
	t.Setenv("FLOTILLA_GRPC_ADDR", ":6000")
	t.Setenv("FLOTILLA_DRAIN_PERIOD", "3s")
	t.Setenv("FLOTILLA_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := server.AddFlags(fs, server.Flags{GRPCAddr: ":50051", MetricsAddr: ":9090"})
	if err := server.ParseFlags(fs, []string{"--log-level=warn", "--insecure"}, server.EnvPrefix); err != nil {
		t.Fatal(err)
	}
	if f.GRPCAddr != ":6000" || f.DrainPeriod != 3*time.Second || f.LogLevel != "warn" || f.MetricsAddr != ":9090" || f.StopTimeout != server.DefaultStopTimeout {
		t.Errorf("flags = %+v", f)
	}
	if u := fs.Lookup("grpc-addr").Usage; !strings.Contains(u, "FLOTILLA_GRPC_ADDR") {
		t.Errorf("usage %q does not name the variable", u)
	}
	cfg, err := f.Config("solver")
	if err != nil || cfg.GRPCAddr != ":6000" || cfg.Logger == nil || cfg.MaxMessageBytes != server.DefaultMaxMessageBytes {
		t.Errorf("Config = %+v, %v", cfg, err)
	}

	t.Setenv("FLOTILLA_STOP_TIMEOUT", "soon")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	server.AddFlags(fs, server.Flags{GRPCAddr: ":1"})
	if err := server.ParseFlags(fs, nil, server.EnvPrefix); err == nil || !strings.Contains(err.Error(), "FLOTILLA_STOP_TIMEOUT") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestFlagsConfigRejectsBadValues(t *testing.T) {
	f := server.Flags{GRPCAddr: ":1", MaxMessageBytes: 1, StopTimeout: time.Second, LogFormat: "xml", LogLevel: "loud"}
	_, err := f.Config("x")
	if err == nil || !strings.Contains(err.Error(), "--log-format") || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("Config: %v", err)
	}
	for _, tc := range []struct {
		f    server.Flags
		want string
	}{
		{server.Flags{TLSCert: "c.pem"}, "--tls-key"},
		{server.Flags{Insecure: true, TLSCA: "ca.pem"}, "--insecure"},
		{server.Flags{Insecure: true, MaxInFlight: -2}, "--max-in-flight"},
		{server.Flags{Insecure: true, MaxInFlight: 1}, "--trust-domain"},
	} {
		tc.f.GRPCAddr, tc.f.MaxMessageBytes, tc.f.StopTimeout, tc.f.LogFormat, tc.f.LogLevel = ":1", 1, time.Second, "json", "info"
		if _, err := tc.f.Config("x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Config(%+v) = %v, want an error naming %s", tc.f, err, tc.want)
		}
	}
}

func TestEnvOr(t *testing.T) {
	t.Setenv("FLOTILLA_TEST_X", "set")
	if got := server.EnvOr("FLOTILLA_TEST_X", "def"); got != "set" {
		t.Errorf("EnvOr = %q", got)
	}
	if got := server.EnvOr("FLOTILLA_TEST_UNSET_Y", "def"); got != "def" {
		t.Errorf("EnvOr = %q", got)
	}
	if got := server.EnvName("FLOTILLA", "max-message-bytes"); got != "FLOTILLA_MAX_MESSAGE_BYTES" {
		t.Errorf("EnvName = %q", got)
	}
}

// TestParseFlagsVersionIgnoresTheEnvironment: --version has no variable,
// and given, it answers even when a FLOTILLA_* variable is bad.
func TestParseFlagsVersionIgnoresTheEnvironment(t *testing.T) {
	t.Setenv("FLOTILLA_STOP_TIMEOUT", "soon")
	t.Setenv("FLOTILLA_VERSION", "0.1.0")
	newFlags := func() (*flag.FlagSet, *bool) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		v := version.AddFlag(fs)
		server.AddFlags(fs, server.Flags{GRPCAddr: ":1"})
		return fs, v
	}
	fs, v := newFlags()
	if err := server.ParseFlags(fs, []string{"--version"}, server.EnvPrefix); err != nil || !*v {
		t.Errorf("--version with a bad environment: %v, version %v", err, *v)
	}
	if u := fs.Lookup(version.FlagName).Usage; strings.Contains(u, "FLOTILLA_VERSION") {
		t.Errorf("--version's usage names a variable: %q", u)
	}
	// Without it (or with --version=false) the environment is read as
	// always, FLOTILLA_VERSION aside.
	for _, args := range [][]string{nil, {"--version=false"}} {
		fs, v = newFlags()
		err := server.ParseFlags(fs, args, server.EnvPrefix)
		if err == nil || !strings.Contains(err.Error(), "FLOTILLA_STOP_TIMEOUT") || strings.Contains(err.Error(), "FLOTILLA_VERSION") || *v {
			t.Errorf("%q: %v, version %v", args, err, *v)
		}
	}
}
