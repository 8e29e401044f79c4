// Command interruption serves flotilla.interruption.v1.InterruptionService
// and handles EC2 interruption events: it long-polls the SQS queue that
// EventBridge fills (Spot interruption warnings, rebalance recommendations,
// AWS Health scheduled changes, instance state changes, capacity reservation
// interruption warnings), marks interrupted Spot offerings unavailable at the
// launcher and asks the watcher to Disrupt the nodes before the notice ends.
// Do not run aws-node-termination-handler beside it.
//
// AWS credentials come from the SDK's default chain (environment, shared
// config, IRSA web identity, instance metadata). Every flag falls back to an
// environment variable named FLOTILLA_<FLAG> (FLOTILLA_INTERRUPTION_QUEUE,
// FLOTILLA_CLUSTER_NAME, ...); a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"google.golang.org/grpc"

	"github.com/flotilla-io/flotilla/internal/interruption"
	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/version"
	interruptionv1 "github.com/flotilla-io/flotilla/proto/flotilla/interruption/v1"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		// After the first signal, restore default handling so a second
		// one kills the process during the drain.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "interruption:", err)
		os.Exit(1)
	}
}

// interruptionFlags are the service's own flags.
type interruptionFlags struct {
	queue, sqsEndpoint, region, cluster string
	accountID                           string
	watcherAddr, launcherAddr           string
	concurrency, maxMessages            int
	actOnRebalance                      bool
	waitTime, unavailableTTL            time.Duration
}

func addFlags(fs *flag.FlagSet) *interruptionFlags {
	f := &interruptionFlags{}
	fs.StringVar(&f.queue, "interruption-queue", "", "SQS queue of the EventBridge interruption events: a name or a URL (required)")
	fs.StringVar(&f.sqsEndpoint, "sqs-endpoint", "", "SQS endpoint override (a VPC endpoint, or an emulator in tests)")
	fs.StringVar(&f.region, "region", "us-east-1", "AWS region of the queue and the cluster; events of other regions are dropped")
	fs.StringVar(&f.accountID, "account-id", "",
		"AWS account id (12 digits) of the cluster; events of other accounts are dropped. Empty: any account is accepted (a warning is logged)")
	fs.StringVar(&f.cluster, "cluster-name", "", "cluster name; only this cluster's instances are acted on (required)")
	fs.StringVar(&f.watcherAddr, "watcher-addr", "localhost:50053", "watcher gRPC address (Disrupt)")
	fs.StringVar(&f.launcherAddr, "launcher-addr", "localhost:50052", "launcher gRPC address (ListInstances, MarkUnavailable)")
	fs.IntVar(&f.concurrency, "concurrency", interruption.DefaultConcurrency, "messages handled at once; one poller per 10")
	fs.BoolVar(&f.actOnRebalance, "act-on-rebalance", false, "disrupt nodes on EC2 rebalance recommendations (otherwise only recorded)")
	fs.IntVar(&f.maxMessages, "max-messages", interruption.DefaultMaxMessages, "messages per receive, 1 to 10")
	fs.DurationVar(&f.waitTime, "wait-time", interruption.DefaultWaitTime, "long-poll wait per receive, 0 to 20s")
	fs.DurationVar(&f.unavailableTTL, "unavailable-ttl", interruption.DefaultUnavailableTTL, "how long an interrupted Spot offering stays unavailable at the launcher")
	return f
}

func (f *interruptionFlags) check() error {
	var errs []error
	if f.queue == "" {
		errs = append(errs, errors.New("--interruption-queue: must not be empty"))
	}
	if f.cluster == "" {
		errs = append(errs, errors.New("--cluster-name: must not be empty"))
	}
	if f.region == "" {
		errs = append(errs, errors.New("--region: must not be empty"))
	}
	if f.accountID != "" && !accountIDPattern.MatchString(f.accountID) {
		errs = append(errs, fmt.Errorf("--account-id: %q is not a 12-digit AWS account id", f.accountID))
	}
	if f.watcherAddr == "" || f.launcherAddr == "" {
		errs = append(errs, errors.New("--watcher-addr and --launcher-addr: must not be empty"))
	}
	if f.concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency: %d is not positive", f.concurrency))
	}
	if f.maxMessages < 1 || f.maxMessages > 10 {
		errs = append(errs, fmt.Errorf("--max-messages: %d is not between 1 and 10", f.maxMessages))
	}
	if f.waitTime < 0 || f.waitTime > 20*time.Second {
		errs = append(errs, fmt.Errorf("--wait-time: %s is not between 0 and 20s", f.waitTime))
	}
	if f.unavailableTTL <= 0 || f.unavailableTTL > unavailable.MaxTTL {
		errs = append(errs, fmt.Errorf("--unavailable-ttl: %s is not positive and at most %s (the launcher's limit)", f.unavailableTTL, unavailable.MaxTTL))
	}
	return errors.Join(errs...)
}

func sqsClient(ctx context.Context, region, endpoint string) (*sqs.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// run serves until ctx is done.
// stdout receives the --version line; tests replace it.
var stdout io.Writer = os.Stdout

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("interruption", flag.ContinueOnError)
	showVersion := version.AddFlag(fs)
	flags := server.AddFlags(fs, server.Flags{GRPCAddr: ":50054", MetricsAddr: ":9093", MaxInFlight: 16})
	f := addFlags(fs)
	if err := server.ParseFlags(fs, args, server.EnvPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Line("interruption"))
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := f.check(); err != nil {
		return err
	}
	cfg, err := flags.Config("interruption")
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	client, err := sqsClient(ctx, f.region, f.sqsEndpoint)
	if err != nil {
		return err
	}
	watcherConn, err := cfg.Dial(f.watcherAddr, server.IdentityWatcher, watcherv1.WatcherService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	defer watcherConn.Close() //nolint:errcheck // closing at exit
	launcherConn, err := cfg.Dial(f.launcherAddr, server.IdentityLauncher, launcherv1.LauncherService_ServiceDesc.ServiceName)
	if err != nil {
		return err
	}
	defer launcherConn.Close() //nolint:errcheck // closing at exit

	if f.accountID == "" {
		cfg.Logger.Warn("--account-id is not set: events of any AWS account are accepted; only their region is checked")
	}
	m := interruption.NewMetrics()
	journal := interruption.NewJournal(interruption.JournalSize)
	consumer := &interruption.Consumer{
		SQS: client, Queue: f.queue, MaxMessages: f.maxMessages, WaitTime: waitTime(f.waitTime), Concurrency: f.concurrency,
		Region: f.region, Account: f.accountID,
		Actor: &interruption.Actor{
			Watcher: watcherv1.NewWatcherServiceClient(watcherConn), Launcher: launcherv1.NewLauncherServiceClient(launcherConn),
			ClusterName: f.cluster, ActOnRebalance: f.actOnRebalance, UnavailableTTL: f.unavailableTTL,
			Metrics: m, Log: cfg.Logger,
		},
		Journal: journal, Metrics: m, Log: cfg.Logger,
	}
	srv, err := server.New(cfg, func(s *grpc.Server) {
		interruptionv1.RegisterInterruptionServiceServer(s, &interruption.Service{Journal: journal})
	})
	if err != nil {
		return err
	}
	srv.Registry().MustRegister(m.Collectors()...)
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- consumer.Run(ctx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx) }()
	select {
	case err := <-consumerDone:
		if err != nil {
			// The queue could not be resolved: nothing to serve for.
			stop()
			return errors.Join(err, <-serveErr)
		}
		return <-serveErr
	case err := <-serveErr:
		stop()
		return errors.Join(err, <-consumerDone)
	}
}

// accountIDPattern is an AWS account id.
var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// waitTime maps the flag (0 meaning no wait) to Consumer.WaitTime (0 meaning
// the default, negative meaning no wait).
func waitTime(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
