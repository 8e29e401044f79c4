package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestServicesServe starts the four services from the binaries in their
// amd64 images, on loopback with --insecure, and waits for gRPC health
// SERVING: the solver alone; the launcher against a fake Kubernetes API
// (its EC2NodeClass informer) and the flotilla image's own ec2sim; the
// watcher against the fake API, the solver and the launcher; the
// interruption service against a fake SQS queue, which must see it poll.
func TestServicesServe(t *testing.T) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("runs the linux/amd64 binaries")
	}
	out := builtOut(t)
	bins := map[string]string{}
	for _, img := range images {
		bins[img.Binary] = extractBinary(t, out, img)
	}
	dir := t.TempDir()
	kube := newFakeKubeAPI(t)
	kubeconfig := kube.kubeconfig(t, dir)
	ec2 := startEC2Sim(t, bins["flotilla"])
	sqs := newFakeSQS(t)

	solver := startService(t, bins["solver"])
	launcher := startService(t, bins["launcher"], "--kubeconfig="+kubeconfig, "--cluster-name=imagetest", "--region=us-east-1",
		"--ec2-endpoint="+ec2, "--ssm-endpoint="+ec2, "--pricing-endpoint="+ec2, "--kube-sync-timeout=90s")
	solver.waitServing(t)
	launcher.waitServing(t)
	watcher := startService(t, bins["watcher"], "--kubeconfig="+kubeconfig, "--cluster-name=imagetest",
		"--solver-addr="+solver.addr, "--launcher-addr="+launcher.addr, "--leader-elect=false")
	interruption := startService(t, bins["interruption"], "--interruption-queue="+sqs.URL+"/000000000000/imagetest",
		"--sqs-endpoint="+sqs.URL, "--region=us-east-1", "--cluster-name=imagetest",
		"--watcher-addr="+watcher.addr, "--launcher-addr="+launcher.addr, "--wait-time=1s")
	watcher.waitServing(t)
	interruption.waitServing(t)
	deadline := time.Now().Add(30 * time.Second)
	for sqs.receives.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the interruption service never polled its queue\n%s", interruption.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The environment of the children: fake static AWS credentials, nothing
// from this machine's AWS or Flotilla settings.
var childEnv = []string{
	"AWS_ACCESS_KEY_ID=AKIDIMAGETEST", "AWS_SECRET_ACCESS_KEY=imagetest",
	"AWS_EC2_METADATA_DISABLED=true", "AWS_SHARED_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
}

// service is a started service binary.
type service struct {
	name, addr string
	cmd        *exec.Cmd
	out        *lockedBuffer
	done       chan struct{}
}

// startService runs bin with loopback addresses, --insecure and args; the
// test's cleanup stops it.
func startService(t *testing.T, bin string, args ...string) *service {
	t.Helper()
	addrs := freeAddrs(t, 2)
	s := &service{name: filepath.Base(bin), addr: addrs[0], out: &lockedBuffer{}, done: make(chan struct{})}
	args = append([]string{"--insecure", "--grpc-addr=" + addrs[0], "--metrics-addr=" + addrs[1], "--drain-period=0s"}, args...)
	s.cmd = exec.Command(bin, args...) //nolint:gosec // G204: the image's binary
	s.cmd.Env = append(childEnv, "HOME="+t.TempDir())
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *service) output() string { return s.out.String() }

// waitServing waits until the service's gRPC health says SERVING.
func (s *service) waitServing(t *testing.T) {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // a test client
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("%s exited: %s\n%s", s.name, s.cmd.ProcessState, s.output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not SERVING: %v %v\n%s", s.name, resp, err, s.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startEC2Sim runs `flotilla ec2sim` from the flotilla image and returns
// its URL once it accepts connections.
func startEC2Sim(t *testing.T, flotilla string) string {
	t.Helper()
	addr := freeAddrs(t, 1)[0]
	out := &lockedBuffer{}
	cmd := exec.Command(flotilla, "ec2sim", "--listen", addr) //nolint:gosec // G204: the image's binary
	cmd.Env = childEnv
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		select {
		case <-done:
			t.Fatalf("flotilla ec2sim exited: %s\n%s", cmd.ProcessState, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("flotilla ec2sim not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fakeSQS answers every SQS call (JSON protocol) with no messages and
// counts ReceiveMessage calls.
type fakeSQS struct {
	*httptest.Server
	receives atomic.Int64
}

func newFakeSQS(t *testing.T) *fakeSQS {
	t.Helper()
	f := &fakeSQS{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ReceiveMessage") {
			f.receives.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprint(w, `{"Messages":[]}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// freeAddrs reserves n loopback addresses; a child binds them a moment
// later.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() //nolint:errcheck // released when the function returns
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// lockedBuffer is a bytes.Buffer a child process and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
