package integration

import (
	"context"
	"crypto/tls"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/internal/localca"
	"github.com/flotilla-io/flotilla/internal/server"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// checkMutualTLS calls the launcher and watcher processes of a running
// cluster as an attacker and as the wrong service would: without a client
// certificate, with one from another CA, and with real identities calling
// what their role does not allow. A valid watcher Launch is
// checkLaunchedNode's.
func checkMutualTLS(ctx context.Context, t *testing.T, c harness.Cluster) {
	launcherAddr, watcherAddr := c.Addr(harness.Launcher), c.Addr(harness.Watcher)
	if launcherAddr == "" || watcherAddr == "" {
		t.Skip("needs the launcher and the watcher")
	}
	rawDial := func(cfg *tls.Config) *grpc.ClientConn {
		conn, err := grpc.NewClient(launcherAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	launchAs := func(conn *grpc.ClientConn) error {
		_, err := launcherv1.NewLauncherServiceClient(conn).Launch(ctx, &launcherv1.LaunchRequest{NodeClaim: "attacker"})
		return err
	}

	t.Run("no client certificate", func(t *testing.T) {
		err := launchAs(rawDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})) //nolint:gosec // the attacker does not care who the server is
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Launch without a client certificate: %v, want Unavailable (handshake failure)", err)
		}
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		other, err := localca.New("")
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := other.Issue(server.IdentityWatcher)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		err = launchAs(rawDial(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}})) //nolint:gosec // as above
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Launch with a watcher certificate of another CA: %v, want Unavailable", err)
		}
	})
	t.Run("interruption may not launch", func(t *testing.T) {
		conn, err := c.DialAs(harness.Launcher, server.IdentityInterruption)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := launchAs(conn); status.Code(err) != codes.PermissionDenied {
			t.Errorf("Launch as interruption: %v, want PermissionDenied", err)
		}
		_, err = launcherv1.NewLauncherServiceClient(conn).Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: "i-0123456789abcdef0"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("Terminate as interruption: %v, want PermissionDenied", err)
		}
	})
	t.Run("watcher may not disrupt", func(t *testing.T) {
		conn, err := c.DialAs(harness.Watcher, server.IdentityWatcher)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = watcherv1.NewWatcherServiceClient(conn).Disrupt(ctx, &watcherv1.DisruptRequest{InstanceId: "i-0123456789abcdef0", Reason: "attack"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("Disrupt as watcher: %v, want PermissionDenied", err)
		}
	})
	t.Run("grpcurl with the operator certificate the demo prints", func(t *testing.T) {
		root, err := harness.FindRepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "tools.sh"), "debug").Output()
		if err != nil {
			t.Fatalf("hack/tools.sh debug: %v", err)
		}
		grpcurl := filepath.Join(strings.TrimSpace(string(out)), "grpcurl")
		files, err := c.ClientTLS(harness.OperatorIdentity)
		if err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) (string, error) {
			full := append([]string{"-cacert", files.CA, "-cert", files.Cert, "-key", files.Key}, args...)
			b, err := exec.CommandContext(ctx, grpcurl, full...).CombinedOutput()
			return string(b), err
		}
		if out, err := run(watcherAddr, "list"); err != nil || !strings.Contains(out, "flotilla.watcher.v1.WatcherService") {
			t.Errorf("grpcurl list: %v\n%s", err, out)
		}
		if out, err := run(watcherAddr, "flotilla.watcher.v1.WatcherService/GetState"); err != nil {
			t.Errorf("grpcurl GetState: %v\n%s", err, out)
		}
		if out, err := run("-d", `{"instanceId":"i-0123456789abcdef0","reason":"attack"}`, watcherAddr, "flotilla.watcher.v1.WatcherService/Disrupt"); err == nil || !strings.Contains(out, "PermissionDenied") {
			t.Errorf("grpcurl Disrupt as operator: %v\n%s", err, out)
		}
		if out, err := exec.CommandContext(ctx, grpcurl, "-plaintext", "-connect-timeout", "2", watcherAddr, "list").CombinedOutput(); err == nil {
			t.Errorf("grpcurl -plaintext was served:\n%s", out)
		}
	})
	t.Run("an operator reads but does not act", func(t *testing.T) {
		conn, err := c.DialAs(harness.Watcher, harness.OperatorIdentity)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		w := watcherv1.NewWatcherServiceClient(conn)
		if _, err := w.GetState(ctx, &watcherv1.GetStateRequest{}); err != nil {
			t.Errorf("GetState as operator: %v", err)
		}
		if _, err := w.Disrupt(ctx, &watcherv1.DisruptRequest{InstanceId: "i-0123456789abcdef0", Reason: "attack"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("Disrupt as operator: %v, want PermissionDenied", err)
		}
	})
}
