// Command watcher serves flotilla.watcher.v1.WatcherService and runs
// Flotilla's Kubernetes controller: provisioning, NodeClaim lifecycle,
// termination and disruption, with leader election on a Lease. It calls the
// solver and the launcher over gRPC.
//
// Every flag falls back to an environment variable named FLOTILLA_<FLAG>
// (FLOTILLA_CLUSTER_NAME, FLOTILLA_SOLVER_ADDR, ...); a flag given on the
// command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/version"
	"github.com/flotilla-io/flotilla/internal/watcher"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "watcher:", err)
		os.Exit(1)
	}
}

// watcherFlags are the watcher's own flags.
type watcherFlags struct {
	kubeconfig, cluster, solverAddr, launcherAddr           string
	batchIdle, batchMax, launchTimeout, registrationTimeout time.Duration
	disruptionInterval, disruptMinGrace, replaceTimeout     time.Duration
	leaderElect                                             bool
	leaderElectionNamespace, leaderElectionID               string
	controllerMetricsAddr                                   string
	kubeQPS                                                 float64
	kubeBurst                                               int
}

func addFlags(fs *flag.FlagSet) *watcherFlags {
	f := &watcherFlags{}
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	fs.StringVar(&f.cluster, "cluster-name", "", "cluster name, tagged on instances (required)")
	fs.StringVar(&f.solverAddr, "solver-addr", "localhost:50051", "solver gRPC address")
	fs.StringVar(&f.launcherAddr, "launcher-addr", "localhost:50052", "launcher gRPC address")
	fs.DurationVar(&f.batchIdle, "batch-idle-duration", time.Second, "a provisioning batch closes after this long without new pending pods")
	fs.DurationVar(&f.batchMax, "batch-max-duration", 10*time.Second, "a provisioning batch closes this long after it opened")
	fs.DurationVar(&f.launchTimeout, "launch-timeout", 5*time.Minute, "a NodeClaim not launched within this is deleted")
	fs.DurationVar(&f.registrationTimeout, "registration-timeout", 15*time.Minute, "a NodeClaim whose node did not register within this is deleted")
	fs.DurationVar(&f.disruptionInterval, "disruption-interval", 10*time.Second, "how often disruption (emptiness, consolidation, drift, expiration) runs")
	fs.DurationVar(&f.disruptMinGrace, "disrupt-min-grace", 30*time.Second,
		"least time a Disrupt leaves for evictions (PodDisruptionBudgets, do-not-disrupt) before pods may be deleted; an earlier deadline is moved to now plus this")
	fs.DurationVar(&f.replaceTimeout, "disruption-replace-timeout", 10*time.Minute,
		"how long a disruption waits for its replacement NodeClaims to become Initialized before rolling back (deleting them, untainting the candidates)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader on a Lease so only one replica acts")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "kube-system", "namespace of the leader Lease")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", "flotilla-watcher", "name of the leader Lease")
	fs.Float64Var(&f.kubeQPS, "kube-api-qps", 200, "requests per second to the Kubernetes API server (client-side rate limit)")
	fs.IntVar(&f.kubeBurst, "kube-api-burst", 300, "burst of requests to the Kubernetes API server above --kube-api-qps")
	fs.StringVar(&f.controllerMetricsAddr, "controller-metrics-addr", "0",
		"address serving controller-runtime's own metrics (client-go requests, workqueues, reconciles); 0 turns it off")
	return f
}

func (f *watcherFlags) check() error {
	var errs []error
	if f.cluster == "" {
		errs = append(errs, errors.New("--cluster-name: must not be empty"))
	}
	if f.solverAddr == "" || f.launcherAddr == "" {
		errs = append(errs, errors.New("--solver-addr and --launcher-addr: must not be empty"))
	}
	for name, d := range map[string]time.Duration{
		"--batch-idle-duration": f.batchIdle, "--batch-max-duration": f.batchMax, "--launch-timeout": f.launchTimeout,
		"--registration-timeout": f.registrationTimeout, "--disruption-interval": f.disruptionInterval,
		"--disrupt-min-grace": f.disruptMinGrace, "--disruption-replace-timeout": f.replaceTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %s is not positive", name, d))
		}
	}
	if f.kubeQPS <= 0 || f.kubeBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %v and --kube-api-burst %d: must be positive", f.kubeQPS, f.kubeBurst))
	}
	if f.batchMax < f.batchIdle {
		errs = append(errs, fmt.Errorf("--batch-max-duration %s is shorter than --batch-idle-duration %s", f.batchMax, f.batchIdle))
	}
	return errors.Join(errs...)
}

// setLoggers sends controller-runtime's logs and client-go's (klog: leader
// election, throttling) to the service's logger, so the watcher's log has
// one format and one level, and controller-runtime never prints its
// "log.SetLogger(...) was never called" stack trace.
func setLoggers(l *slog.Logger) {
	ctrl.SetLogger(logr.FromSlogHandler(l.Handler()))
	klog.SetSlogLogger(l)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// stdout receives the --version line; tests replace it.
var stdout io.Writer = os.Stdout

func run(args []string) error {
	fs := flag.NewFlagSet("watcher", flag.ContinueOnError)
	showVersion := version.AddFlag(fs)
	flags := server.AddFlags(fs, server.Flags{GRPCAddr: ":50053", MetricsAddr: ":9092", MaxMessageBytes: 16 << 20, MaxInFlight: 32})
	wf := addFlags(fs)
	if err := server.ParseFlags(fs, args, server.EnvPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Line("watcher"))
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := wf.check(); err != nil {
		return err
	}
	cfg, err := flags.Config("watcher")
	if err != nil {
		return err
	}
	setLoggers(cfg.Logger)
	kcfg, err := restConfig(wf.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	// client-go's default (5 requests per second, burst 10) throttles the
	// NodeClaim lifecycle and events of a scale-up of a few dozen nodes.
	kcfg.QPS, kcfg.Burst = float32(wf.kubeQPS), wf.kubeBurst
	solverConn, err := cfg.Dial(wf.solverAddr, server.IdentitySolver, solverv1.SolverService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	defer solverConn.Close() //nolint:errcheck // closing at exit
	launcherConn, err := cfg.Dial(wf.launcherAddr, server.IdentityLauncher, launcherv1.LauncherService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	defer launcherConn.Close() //nolint:errcheck // closing at exit
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	mgr, err := ctrl.NewManager(kcfg, manager.Options{
		Scheme:                        watcher.Scheme(),
		Metrics:                       metricsserver.Options{BindAddress: wf.controllerMetricsAddr},
		HealthProbeBindAddress:        "0",
		LeaderElection:                wf.leaderElect,
		LeaderElectionNamespace:       wf.leaderElectionNamespace,
		LeaderElectionID:              wf.leaderElectionID,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	m, dm, drm := metrics.New(), drain.NewMetrics(), disruption.NewMetrics()
	w, err := watcher.Setup(ctx, mgr, watcher.Config{
		ClusterName: wf.cluster, Solver: solverv1.NewSolverServiceClient(solverConn), Launcher: launcherv1.NewLauncherServiceClient(launcherConn),
		BatchIdle: wf.batchIdle, BatchMax: wf.batchMax, LaunchTimeout: wf.launchTimeout, RegistrationTimeout: wf.registrationTimeout,
		DisruptionInterval: wf.disruptionInterval, DisruptMinGrace: wf.disruptMinGrace, ReplaceTimeout: wf.replaceTimeout, Metrics: m, DrainMetrics: dm, DisruptMetrics: drm, Log: cfg.Logger,
	})
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, func(s *grpc.Server) { watcherv1.RegisterWatcherServiceServer(s, w.Service) })
	if err != nil {
		return err
	}
	srv.Registry().MustRegister(m.Collectors()...)
	srv.Registry().MustRegister(dm.Collectors()...)
	srv.Registry().MustRegister(drm.Collectors()...)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	go func() {
		// After the first signal, restore default handling so a second
		// one kills the process during the drain.
		<-ctx.Done()
		stop()
	}()
	serveErr := srv.Serve(ctx)
	stop()
	return errors.Join(serveErr, <-mgrDone)
}
