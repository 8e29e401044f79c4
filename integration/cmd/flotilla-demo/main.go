// Command flotilla-demo runs Flotilla on a local cluster and shows it at
// work: `make demo` (interactive: the cluster stays up until Ctrl-C) or
// `make demo ARGS=--once` (runs the script and exits 0 when every step
// succeeded; CI runs it). See integration/demo.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flotilla-io/flotilla/integration/demo"
)

func main() {
	quietControllerRuntime()
	os.Exit(run(os.Args[1:]))
}

// quietControllerRuntime gives controller-runtime a logger that drops
// everything. The demo's client logs nothing a newcomer needs (the demo
// reports through its steps, and the live view owns the terminal), but left
// without a logger it prints a "log.SetLogger(...) was never called" stack
// trace when it is first used 30 seconds or more after the process started —
// which is always, since the cluster takes longer than that to come up.
func quietControllerRuntime() {
	ctrllog.SetLogger(logr.Discard())
}

func run(args []string) int {
	fs := flag.NewFlagSet("flotilla-demo", flag.ContinueOnError)
	once := fs.Bool("once", false, "run the script once without waiting for Ctrl-C; exit 0 when every step succeeded")
	spike := fs.Int("spike", 40, "replicas of the spike Deployment (1 to 1000)")
	refresh := fs.Duration("refresh", 2*time.Second, "live view refresh period")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *spike < 1 || *spike > 1000 || *refresh <= 0 {
		fmt.Fprintln(os.Stderr, "flotilla-demo: usage: flotilla-demo [--once] [--spike 1..1000] [--refresh DURATION]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := demo.Run(ctx, demo.Options{Once: *once, Out: os.Stdout, Spike: int32(*spike), Refresh: *refresh}) //nolint:gosec // bounded above
	if err != nil {
		fmt.Fprintln(os.Stderr, "flotilla-demo:", err)
		return 1
	}
	return 0
}
