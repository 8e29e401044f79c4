package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
)

// watcherProc measures the watcher process the cluster started and kills
// and restarts it for restart_safety.
type watcherProc struct {
	c harness.Cluster
	// controllerMetrics is the --controller-metrics-addr the watcher
	// serves controller-runtime's metrics on, or "".
	controllerMetrics string
	// peakKiB is the largest VmHWM seen of any watcher process so far.
	peakKiB int64
}

// sample records the running watcher's VmHWM and returns it in KiB.
func (w *watcherProc) sample() (int64, error) {
	pid := w.c.Pid(harness.Watcher)
	if pid == 0 {
		return 0, fmt.Errorf("the watcher is not running")
	}
	kib, err := vmHWM(pid)
	if err != nil {
		return 0, err
	}
	w.peakKiB = max(w.peakKiB, kib)
	return kib, nil
}

// killAndRestart SIGKILLs the watcher (no graceful drain), then starts it
// again with the same flags and waits until it is healthy.
func (w *watcherProc) killAndRestart(ctx context.Context, t *testing.T) {
	t.Helper()
	w.kill(t)
	w.restart(ctx, t)
}

// kill SIGKILLs the watcher (no graceful drain).
func (w *watcherProc) kill(t *testing.T) {
	t.Helper()
	if _, err := w.sample(); err != nil {
		t.Logf("VmHWM before the kill: %v", err)
	}
	pid := w.c.Pid(harness.Watcher)
	if err := w.c.Kill(harness.Watcher); err != nil {
		t.Fatalf("kill the watcher: %v", err)
	}
	t.Logf("killed watcher pid %d", pid)
}

// restart starts the killed watcher again with the same flags and waits
// until it is healthy.
func (w *watcherProc) restart(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := w.c.Restart(ctx, harness.Watcher); err != nil {
		t.Fatalf("restart the watcher: %v", err)
	}
	t.Logf("watcher restarted as pid %d", w.c.Pid(harness.Watcher))
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
