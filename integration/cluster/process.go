package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// spec is how to run a process: enough to run it again.
type spec struct {
	name, bin, logDir string
	env, args         []string
}

// process is a Flotilla child process logging to a file; done closes when
// it exits.
type process struct {
	spec
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// startProcess runs s.bin with s.args, s.env added to childEnv(), and
// output to logDir/name.log (appended to when appendLog is set, as for a
// restart).
func startProcess(s spec, appendLog bool) (*process, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendLog {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	logFile, err := os.OpenFile(filepath.Join(s.logDir, s.name+".log"), flags, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.bin, s.args...) //nolint:gosec // G204: runs the binaries BuildFlotilla built
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(childEnv(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &process{spec: s, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.log.Close()
}

// exited returns an error once the process has ended.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s", p.name, p.cmd.ProcessState)
	default:
		return nil
	}
}

// stop sends SIGTERM and kills after grace.
func (p *process) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.log.Close()
}

// Fake AWS credentials for the children: ec2sim checks no signatures, and
// the SDK's default chain must find these before anything on the machine.
const (
	fakeAccessKeyID     = "AKIDFLOTILLAINTEGRATION"
	fakeSecretAccessKey = "flotilla-integration-secret"
)

// childEnv is this process's environment without AWS_* and FLOTILLA_*
// variables (a CA bundle, a profile or a service flag set on the machine
// must not leak into the services), plus fake static AWS credentials.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "FLOTILLA_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+fakeAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+fakeSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_SHARED_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
}

// freeAddrs reserves n loopback addresses. The ports are free when this
// returns; a child binds them a moment later.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// waitHealthy waits until the gRPC health service over conn reports the
// server SERVING, failing early when p exits.
func waitHealthy(ctx context.Context, p *process, conn *grpc.ClientConn) error {
	health := healthpb.NewHealthClient(conn)
	var lastErr error
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(callCtx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("health %s", resp.GetStatus())
		}
		lastErr = err
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
