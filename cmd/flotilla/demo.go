package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

const demoUsage = `Usage: flotilla demo [--once] [--spike N] [--refresh DURATION]

Runs Flotilla on a local cluster built from this checkout: etcd,
kube-apiserver, kube-scheduler, kube-controller-manager and kwok (built from
the Go module proxy on the first run, about 10 minutes, cached in
~/.cache/flotilla), ec2sim, an SQS emulator (Node.js) and the four services.
It applies examples/karpenter, scales a workload up, interrupts a Spot node,
scales down for consolidation, with a live view, then prints a summary.
Ctrl-C stops every process it started.

  --once       run the script and exit: 0 when every step succeeded
  --spike N    replicas of the spike Deployment (default 40)
  --refresh D  live view refresh period (default 2s)

The demo lives in the integration module (integration/demo); this command
runs it there with 'go run', so it needs the Flotilla checkout and Go.
Same as: make demo [ARGS=--once]
`

// runDemo runs integration/cmd/flotilla-demo from the checkout that holds
// the working directory.
func runDemo(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(stdout, demoUsage)
			return exitOK
		}
	}
	root, err := checkoutRoot()
	if err != nil {
		fmt.Fprintf(stderr, "flotilla demo: %v\n", err)
		return exitBadInput
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/flotilla-demo"}, args...)...) //nolint:gosec // fixed program, user flags
	cmd.Dir = filepath.Join(root, "integration")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// Ctrl-C reaches the demo through the terminal's process group; it
	// stops its cluster and exits. Give it time before killing.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(stderr, "flotilla demo: %v\n", err)
		return exitInternal
	}
	return exitOK
}

// checkoutRoot walks up from the working directory to the Flotilla
// checkout (the directory holding go.work and integration/).
func checkoutRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) && fileExists(filepath.Join(dir, "integration", "cmd", "flotilla-demo")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the Flotilla checkout (the demo is built from integration/)")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
