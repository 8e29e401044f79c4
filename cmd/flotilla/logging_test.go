package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lateMainEnv makes this test binary run main instead of the tests, that
// long (a duration) after it started.
const lateMainEnv = "FLOTILLA_TEST_LATE_MAIN"

// processStart is about when controller-runtime's log package started its
// 30-second clock.
var processStart = time.Now()

// runMainLate waits until after has passed since the process started, then
// runs main, which exits.
func runMainLate(after string) {
	d, err := time.ParseDuration(after)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", lateMainEnv, after, err)
		os.Exit(3)
	}
	time.Sleep(time.Until(processStart.Add(d)))
	main()
}

// TestNoControllerRuntimeLoggerWarning runs `flotilla plan` as a process
// whose controller-runtime client is made more than 30 seconds after it
// started: controller-runtime then prints "log.SetLogger(...) was never
// called" and a stack trace to stderr unless main set its logger. plan's
// stderr must hold only its own line (the cluster is unreachable).
func TestNoControllerRuntimeLoggerWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 seconds")
	}
	t.Parallel()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "plan", "--kubeconfig", kubeconfig, "--timeout", "10s")
	cmd.Env = append(os.Environ(), lateMainEnv+"=31s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if strings.Contains(stderr.String(), "was never called") {
		t.Fatalf("controller-runtime's logger was not set:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitBadInput {
		t.Fatalf("flotilla plan: %v, want exit %d; stderr:\n%s", err, exitBadInput, stderr.String())
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "flotilla plan: ") {
		t.Errorf("stderr is not plan's one line: %q", got)
	}
}
