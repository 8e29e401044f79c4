// Command solver serves flotilla.solver.v1.SolverService: cluster state in,
// a priced plan out. It is stateless and talks to nobody.
//
// Every flag falls back to an environment variable (FLOTILLA_GRPC_ADDR,
// FLOTILLA_METRICS_ADDR, FLOTILLA_MAX_MESSAGE_BYTES, FLOTILLA_DRAIN_PERIOD,
// FLOTILLA_STOP_TIMEOUT, FLOTILLA_LOG_FORMAT, FLOTILLA_LOG_LEVEL,
// FLOTILLA_MAX_PODS, FLOTILLA_MAX_INSTANCE_TYPES); a flag given on the
// command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/version"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "solver:", err)
		os.Exit(1)
	}
}

// stdout receives the --version line; tests replace it.
var stdout io.Writer = os.Stdout

func run(args []string) error {
	fs := flag.NewFlagSet("solver", flag.ContinueOnError)
	showVersion := version.AddFlag(fs)
	flags := server.AddFlags(fs, server.Flags{GRPCAddr: ":50051", MetricsAddr: ":9090", MaxMessageBytes: 16 << 20, MaxInFlight: 4})
	maxPods := fs.Int("max-pods", solverapi.DefaultLimits.MaxPods, "largest request served, in pods (pending plus bound); larger ones get RESOURCE_EXHAUSTED; 0: no limit")
	maxTypes := fs.Int("max-instance-types", solverapi.DefaultLimits.MaxInstanceTypes, "largest request served, in instance types; larger ones get RESOURCE_EXHAUSTED; 0: no limit")
	if err := server.ParseFlags(fs, args, server.EnvPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Line("solver"))
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *maxPods < 0 || *maxTypes < 0 {
		return fmt.Errorf("--max-pods %d and --max-instance-types %d must not be negative", *maxPods, *maxTypes)
	}
	cfg, err := flags.Config("solver")
	if err != nil {
		return err
	}
	m := solverapi.NewMetrics()
	srv, err := server.New(cfg, func(s *grpc.Server) {
		solverv1.RegisterSolverServiceServer(s, &solverapi.Service{Limits: solverapi.Limits{MaxPods: *maxPods, MaxInstanceTypes: *maxTypes}, Metrics: m})
	})
	if err != nil {
		return err
	}
	srv.Registry().MustRegister(m.Collectors()...)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		// After the first signal, restore default handling so a second
		// one kills the process during the drain.
		<-ctx.Done()
		stop()
	}()
	return srv.Serve(ctx)
}
