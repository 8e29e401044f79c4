package server_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/localca"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// recorder serves the launcher, watcher and solver methods the tests call
// and records who reached a handler.
type recorder struct {
	launcherv1.UnimplementedLauncherServiceServer
	watcherv1.UnimplementedWatcherServiceServer
	solverv1.UnimplementedSolverServiceServer
	mu      sync.Mutex
	callers []string
	release chan struct{}
}

func (r *recorder) seen(ctx context.Context) {
	id, _ := server.PeerIdentity(ctx)
	r.mu.Lock()
	r.callers = append(r.callers, id)
	r.mu.Unlock()
}

func (r *recorder) Launch(ctx context.Context, _ *launcherv1.LaunchRequest) (*launcherv1.LaunchResponse, error) {
	r.seen(ctx)
	return &launcherv1.LaunchResponse{Instance: &launcherv1.Instance{Id: "i-1"}}, nil
}

func (r *recorder) Disrupt(ctx context.Context, _ *watcherv1.DisruptRequest) (*watcherv1.DisruptResponse, error) {
	r.seen(ctx)
	return &watcherv1.DisruptResponse{}, nil
}

func (r *recorder) Solve(ctx context.Context, req *solverv1.SolveRequest) (*solverv1.SolveResponse, error) {
	r.seen(ctx)
	if len(req.GetPods()) > 0 && req.GetPods()[0].GetName() == "block" {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &solverv1.SolveResponse{Plan: &typesv1.Plan{}}, nil
}

type mtlsEnv struct {
	ca   *localca.CA
	dir  string
	addr string
	rec  *recorder
	srv  *server.Server
}

// startMTLS serves the recorder with the solver identity's certificate.
func startMTLS(t *testing.T, cfg server.Config) *mtlsEnv {
	t.Helper()
	ca, err := localca.New("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, "solver", localca.LocalHosts...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.GRPCAddr, cfg.TLS = "solver", "127.0.0.1:0", files
	cfg.Logger = slog.New(slog.NewTextHandler(&syncBuffer{}, nil))
	rec := &recorder{release: make(chan struct{})}
	srv, err := server.New(cfg, func(s *grpc.Server) {
		launcherv1.RegisterLauncherServiceServer(s, rec)
		watcherv1.RegisterWatcherServiceServer(s, rec)
		solverv1.RegisterSolverServiceServer(s, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &mtlsEnv{ca: ca, dir: dir, addr: srv.Addr().String(), rec: rec, srv: srv}
}

// dialAs connects with a certificate for identity issued by the env's CA.
func (e *mtlsEnv) dialAs(t *testing.T, identity string) *grpc.ClientConn {
	t.Helper()
	files, err := e.ca.WriteFiles(filepath.Join(e.dir, "clients"), identity)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := server.DialWith(e.addr, server.DialOptions{TLS: files, ServerIdentity: server.IdentitySolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestMTLSRefusesClientsWithoutACertificateOfTheCA(t *testing.T) {
	e := startMTLS(t, server.Config{})
	caPool := func() *tls.Config {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec // the test is about the server's check
		return cfg
	}

	// No client certificate at all: the handshake fails.
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(caPool())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = solverv1.NewSolverServiceClient(conn).Solve(ctxT(t), &solverv1.SolveRequest{})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("no client certificate: %v, want Unavailable (handshake failure)", err)
	}

	// A certificate from another CA, with a Flotilla identity: refused.
	other, err := localca.New("")
	if err != nil {
		t.Fatal(err)
	}
	files, err := other.WriteFiles(t.TempDir(), server.IdentityWatcher)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := caPool()
	cfg.Certificates = []tls.Certificate{pair}
	conn2, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	_, err = launcherv1.NewLauncherServiceClient(conn2).Launch(ctxT(t), &launcherv1.LaunchRequest{})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("certificate of another CA: %v, want Unavailable (handshake failure)", err)
	}

	// A plaintext client: refused.
	conn3, err := server.DialWith(e.addr, server.DialOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	if _, err := solverv1.NewSolverServiceClient(conn3).Solve(ctxT(t), &solverv1.SolveRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext client: %v, want Unavailable", err)
	}
	if n := len(e.rec.callers); n != 0 {
		t.Errorf("%d calls reached a handler", n)
	}
}

func TestMTLSAuthorizesEachMethodByIdentity(t *testing.T) {
	e := startMTLS(t, server.Config{})
	launch := func(id string) error {
		_, err := launcherv1.NewLauncherServiceClient(e.dialAs(t, id)).Launch(ctxT(t), &launcherv1.LaunchRequest{})
		return err
	}
	disrupt := func(id string) error {
		_, err := watcherv1.NewWatcherServiceClient(e.dialAs(t, id)).Disrupt(ctxT(t), &watcherv1.DisruptRequest{})
		return err
	}
	solve := func(id string) error {
		_, err := solverv1.NewSolverServiceClient(e.dialAs(t, id)).Solve(ctxT(t), &solverv1.SolveRequest{})
		return err
	}
	for _, tc := range []struct {
		name string
		call func(string) error
		id   string
		want codes.Code
	}{
		{"watcher launches", launch, server.IdentityWatcher, codes.OK},
		{"interruption may not launch", launch, server.IdentityInterruption, codes.PermissionDenied},
		{"an operator may not launch", launch, "operator", codes.PermissionDenied},
		{"interruption disrupts", disrupt, server.IdentityInterruption, codes.OK},
		{"watcher may not disrupt", disrupt, server.IdentityWatcher, codes.PermissionDenied},
		{"anyone authenticated solves", solve, "some-other-tool", codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.id)
			if status.Code(err) != tc.want {
				t.Fatalf("%s: %v, want %s", tc.id, err, tc.want)
			}
			if tc.want == codes.PermissionDenied && (!strings.Contains(err.Error(), tc.id) || !strings.Contains(err.Error(), "may not call")) {
				t.Errorf("denial %q does not name the identity and method", err)
			}
		})
	}
	mfs, err := e.srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	denied := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "flotilla_grpc_authz_denied_total" {
			for _, m := range mf.GetMetric() {
				denied += m.GetCounter().GetValue()
			}
		}
	}
	if denied != 3 {
		t.Errorf("flotilla_grpc_authz_denied_total = %v, want 3", denied)
	}
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if got := strings.Join(e.rec.callers, ","); got != "watcher,interruption,some-other-tool" {
		t.Errorf("handlers saw callers %q, want only the allowed ones", got)
	}
}

func TestMTLSPolicyDeniesUnlistedMethodsAndReflectionIsOff(t *testing.T) {
	for method, who := range server.PolicyTable() {
		if len(who) == 0 {
			t.Errorf("%s allows nobody", method)
		}
	}
	if server.Allowed("/flotilla.launcher.v1.LauncherService/Launch", "launcher") {
		t.Error("the launcher may launch through itself")
	}
	if server.Allowed("/flotilla.launcher.v1.LauncherService/NewMethod", "watcher") {
		t.Error("a method missing from the policy is allowed")
	}
	e := startMTLS(t, server.Config{})
	stream, err := reflectionpb.NewServerReflectionClient(e.dialAs(t, "operator")).ServerReflectionInfo(ctxT(t))
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection without --reflection: %v, want Unimplemented", err)
	}
}

func TestMTLSClientChecksTheServerIdentity(t *testing.T) {
	e := startMTLS(t, server.Config{})
	files, err := e.ca.WriteFiles(filepath.Join(e.dir, "w"), server.IdentityWatcher)
	if err != nil {
		t.Fatal(err)
	}
	// The server is the solver; a watcher expecting its launcher refuses it.
	conn, err := server.DialWith(e.addr, server.DialOptions{TLS: files, ServerIdentity: server.IdentityLauncher})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := launcherv1.NewLauncherServiceClient(conn).Launch(ctxT(t), &launcherv1.LaunchRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("server of the wrong identity: %v, want Unavailable", err)
	}
	// Without an expected identity the host name is checked: 127.0.0.1 is
	// in the certificate.
	conn2, err := server.DialWith(e.addr, server.DialOptions{TLS: files})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := launcherv1.NewLauncherServiceClient(conn2).Launch(ctxT(t), &launcherv1.LaunchRequest{}); err != nil {
		t.Errorf("host name check: %v", err)
	}
}

func TestInFlightLimitRefusesBeforeWorkAndSparesHealth(t *testing.T) {
	e := startMTLS(t, server.Config{MaxInFlight: 2})
	conn := e.dialAs(t, "tool")
	client := solverv1.NewSolverServiceClient(conn)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.Solve(ctxT(t), &solverv1.SolveRequest{Pods: []*typesv1.Pod{{Name: "block"}}})
			errs <- err
		}()
	}
	waitFor(t, func() bool { e.rec.mu.Lock(); defer e.rec.mu.Unlock(); return len(e.rec.callers) == 2 })

	_, err := client.Solve(ctxT(t), &solverv1.SolveRequest{})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max-in-flight") {
		t.Fatalf("third call with two in flight: %v, want ResourceExhausted naming the limit", err)
	}
	if r := server.ErrorReason(err); r != apierr.ReasonOverloaded {
		t.Errorf("overload reason %q, want %q", r, apierr.ReasonOverloaded)
	}
	hc := healthpb.NewHealthClient(conn)
	if resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health while at the limit: %v %v", resp, err)
	}
	close(e.rec.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("blocked call: %v", err)
		}
	}
	// The slots came back: as many calls as the limit succeed again, in
	// sequence and repeatedly.
	for i := range 5 {
		if _, err := client.Solve(ctxT(t), &solverv1.SolveRequest{}); err != nil {
			t.Fatalf("call %d after the blocked ones ended: %v", i, err)
		}
	}
	// A refused call (denied or unknown) takes no slot either.
	for range 5 {
		_, _ = launcherv1.NewLauncherServiceClient(conn).Terminate(ctxT(t), &launcherv1.TerminateRequest{})
	}
	if _, err := client.Solve(ctxT(t), &solverv1.SolveRequest{}); err != nil {
		t.Fatalf("after denied calls: %v", err)
	}
}

func TestCertificatesReloadWhenTheFilesChange(t *testing.T) {
	e := startMTLS(t, server.Config{})
	// Rotate to a new CA: new server certificate and bundle on disk.
	ca2, err := localca.New("")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca2.Issue(server.IdentitySolver, localca.LocalHosts...)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the files are looked at once a second at most
	for name, data := range map[string][]byte{"solver.crt": certPEM, "solver.key": keyPEM, "ca.crt": ca2.CertPEM()} {
		if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ca2.WriteFiles(t.TempDir(), "tool")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := server.DialWith(e.addr, server.DialOptions{TLS: files, ServerIdentity: server.IdentitySolver})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := solverv1.NewSolverServiceClient(conn).Solve(ctxT(t), &solverv1.SolveRequest{}); err != nil {
		t.Fatalf("a client of the new CA after rotation: %v", err)
	}
	// A client of the old CA is now refused.
	old := e.dialAs(t, "tool")
	if _, err := solverv1.NewSolverServiceClient(old).Solve(ctxT(t), &solverv1.SolveRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("a client of the old CA after rotation: %v, want Unavailable", err)
	}
}

func TestInsecureRequiresExplicitChoice(t *testing.T) {
	_, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("New without TLS or Insecure: %v", err)
	}
	_, err = server.DialWith("127.0.0.1:1", server.DialOptions{})
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("DialWith without TLS or Insecure: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
