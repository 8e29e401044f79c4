package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// watcherProc finds the watcher process the cluster started, measures its
// peak memory and replaces it after a kill. integration/cluster exposes no
// pids (requested), so the process is found in /proc by the --grpc-addr
// flag it was given.
type watcherProc struct {
	grpcAddr string
	// controllerMetrics is the --controller-metrics-addr the watcher
	// serves controller-runtime's metrics on, or "".
	controllerMetrics string
	logDir            string
	// replacement is the watcher this test started after a kill.
	replacement *exec.Cmd
	done        chan struct{}
	// peakKiB is the largest VmHWM seen of any watcher process so far.
	peakKiB int64
}

// findPid returns the pid of the process whose command line has
// --grpc-addr=addr.
func findPid(addr string) (int, []string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	flag := "--grpc-addr=" + addr
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		for _, a := range args[1:] {
			if a == flag {
				return pid, args, nil
			}
		}
	}
	return 0, nil, fmt.Errorf("no process with %s", flag)
}

// vmHWM reads a process's peak resident set size in KiB.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// sample records the running watcher's VmHWM and returns it in KiB.
func (w *watcherProc) sample() (int64, error) {
	pid, _, err := findPid(w.grpcAddr)
	if err != nil {
		return 0, err
	}
	kib, err := vmHWM(pid)
	if err != nil {
		return 0, err
	}
	w.peakKiB = max(w.peakKiB, kib)
	return kib, nil
}

// killAndRestart SIGKILLs the watcher, then starts the same binary with the
// same flags and environment, logging to watcher-restarted.log, and waits
// until it is healthy. The replacement is stopped by stop.
func (w *watcherProc) killAndRestart(ctx context.Context, t *testing.T) {
	t.Helper()
	pid, args, err := findPid(w.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.sample(); err != nil {
		t.Logf("VmHWM before the kill: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill watcher %d: %v", pid, err)
	}
	for i := 0; i < 100 && processAlive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("killed watcher pid %d", pid)
	logFile, err := os.Create(filepath.Join(w.logDir, "watcher-restarted.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...) //nolint:gosec // the watcher binary the cluster ran
	cmd.Env = strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The ports were the killed process's; retry while the kernel frees them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := cmd.Start(); err != nil {
			t.Fatalf("restart watcher: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
		err := waitServing(ctx, w.grpcAddr, done)
		if err == nil {
			w.replacement, w.done = cmd, done
			t.Logf("watcher restarted as pid %d", cmd.Process.Pid)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted watcher not healthy: %v", err)
		}
		logFile, _ = os.OpenFile(filepath.Join(w.logDir, "watcher-restarted.log"), os.O_APPEND|os.O_WRONLY, 0o600)
		cmd = exec.Command(args[0], args[1:]...) //nolint:gosec // as above
		cmd.Env = strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		time.Sleep(time.Second)
	}
}

func processAlive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie (state Z) has exited; its parent has not reaped it yet.
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

// waitServing waits until gRPC health at addr says SERVING, failing when
// done closes (the process exited).
func waitServing(ctx context.Context, addr string, done <-chan struct{}) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	h := healthpb.NewHealthClient(conn)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp, err := h.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-done:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends a replacement watcher this test started.
func (w *watcherProc) stop() {
	if w.replacement == nil {
		return
	}
	_ = w.replacement.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		_ = w.replacement.Process.Kill()
		<-w.done
	}
	w.replacement = nil
}
