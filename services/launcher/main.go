// Command launcher serves flotilla.launcher.v1.LauncherService, the only
// Flotilla service that talks to EC2: instance types and prices, node class
// resolution, and launches and terminations through aws-sdk-go-v2.
//
// AWS credentials come from the SDK's default chain (environment, shared
// config, IRSA web identity, instance metadata). EC2NodeClasses are read by
// name from the Kubernetes API server (--kubeconfig, or the in-cluster
// configuration): get, list and watch of ec2nodeclasses.karpenter.k8s.aws,
// nothing else. Every flag falls back to an
// environment variable named FLOTILLA_<FLAG> (FLOTILLA_REGION,
// FLOTILLA_CLUSTER_NAME, FLOTILLA_EC2_ENDPOINT, ...); a flag given on the
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
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flotilla-io/flotilla/internal/launcher"
	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/launcher/kubeversion"
	"github.com/flotilla-io/flotilla/internal/launcher/launch"
	"github.com/flotilla-io/flotilla/internal/launcher/metrics"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/version"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(1)
	}
}

// launcherFlags are the launcher's own flags.
type launcherFlags struct {
	kubeconfig                                         string
	kubeSyncTimeout                                    time.Duration
	region, cluster, k8sVersion                        string
	ec2Endpoint, ssmEndpoint, pricingEndpoint          string
	iamEndpoint                                        string
	clusterEndpoint, clusterCA, clusterCIDR            string
	isolatedVPC                                        bool
	refresh, onDemandRefresh, nodeClassTTL, maxBackoff time.Duration
	maxAttempts                                        int
	batchWindow, templateGrace, cleanupInterval        time.Duration
	maxBatch                                           int
}

func addFlags(fs *flag.FlagSet) *launcherFlags {
	f := &launcherFlags{}
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for reading EC2NodeClasses; empty means the in-cluster configuration")
	fs.DurationVar(&f.kubeSyncTimeout, "kube-sync-timeout", time.Minute, "how long to wait at start for the first list of EC2NodeClasses")
	fs.StringVar(&f.region, "region", "us-east-1", "AWS region")
	fs.StringVar(&f.cluster, "cluster-name", "", "cluster name, for tags and user data (required)")
	fs.StringVar(&f.k8sVersion, "kubernetes-version", "", "Kubernetes minor version of nodes (such as 1.31), for AMI alias resolution; empty means the API server's, read every 5 minutes")
	fs.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 endpoint override")
	fs.StringVar(&f.ssmEndpoint, "ssm-endpoint", "", "SSM endpoint override")
	fs.StringVar(&f.pricingEndpoint, "pricing-endpoint", "", "Pricing API endpoint override")
	fs.StringVar(&f.iamEndpoint, "iam-endpoint", "", "IAM endpoint override (instance profiles for node classes that name a role)")
	fs.StringVar(&f.clusterEndpoint, "cluster-endpoint", "", "Kubernetes API server URL for node user data")
	fs.StringVar(&f.clusterCA, "cluster-ca-bundle", "", "base64 cluster CA bundle for node user data")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", "", "service CIDR for node user data (al2023)")
	fs.BoolVar(&f.isolatedVPC, "isolated-vpc", false, "no Pricing API calls: on-demand prices come from the embedded catalog")
	fs.DurationVar(&f.refresh, "instance-type-refresh", instancetype.DefaultRefresh, "how long instance types, offerings and spot prices are cached")
	fs.DurationVar(&f.onDemandRefresh, "on-demand-price-refresh", instancetype.DefaultOnDemandRefresh, "how long on-demand prices are cached")
	fs.DurationVar(&f.nodeClassTTL, "node-class-ttl", nodeclass.DefaultTTL, "how long a node class resolution (subnets, security groups, AMIs) is reused")
	fs.IntVar(&f.maxAttempts, "aws-max-attempts", 5, "attempts per AWS call, retries of throttling and server errors included")
	fs.DurationVar(&f.maxBackoff, "aws-max-backoff", 20*time.Second, "cap of the jittered backoff between AWS attempts")
	fs.DurationVar(&f.batchWindow, "launch-batch-window", launch.DefaultBatchWindow, "how long a launch waits for others of the same fleet spec to share one CreateFleet; 0 turns batching off")
	fs.IntVar(&f.maxBatch, "launch-batch-max", launch.DefaultMaxBatch, "most NodeClaims served by one CreateFleet")
	fs.DurationVar(&f.templateGrace, "launch-template-grace", launch.DefaultTemplateGrace, "how long a launch template the launcher made may go unused before it is deleted")
	fs.DurationVar(&f.cleanupInterval, "launch-template-cleanup-interval", launch.DefaultCleanupInterval, "how often unused launch templates are looked for")
	return f
}

// stdout receives the --version line; tests replace it.
var stdout io.Writer = os.Stdout

func run(args []string) error {
	fs := flag.NewFlagSet("launcher", flag.ContinueOnError)
	showVersion := version.AddFlag(fs)
	flags := server.AddFlags(fs, server.Flags{GRPCAddr: ":50052", MetricsAddr: ":9091", MaxMessageBytes: 8 << 20, MaxInFlight: 64})
	lf := addFlags(fs)
	if err := server.ParseFlags(fs, args, server.EnvPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Line("launcher"))
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if lf.cluster == "" {
		return errors.New("--cluster-name: must not be empty")
	}
	if lf.batchWindow < 0 || lf.maxBatch < 1 || lf.templateGrace <= 0 || lf.cleanupInterval <= 0 {
		return errors.New("--launch-batch-window must be >= 0, --launch-batch-max >= 1, and the template grace and cleanup interval > 0")
	}
	batchWindow := lf.batchWindow
	if batchWindow == 0 {
		batchWindow = -1 // launcher.Config: negative turns batching off
	}
	cfg, err := flags.Config("launcher")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	kcfg, err := restConfig(lf.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes config: %w", err)
	}
	kcfg.UserAgent = "flotilla-launcher"
	classCache, err := startClasses(ctx, kcfg, lf.kubeSyncTimeout, cfg.Logger)
	if err != nil {
		return err
	}
	var k8sVersion *kubeversion.Source
	if lf.k8sVersion == "" {
		dc, err := discovery.NewDiscoveryClientForConfig(kcfg)
		if err != nil {
			return fmt.Errorf("kubernetes discovery client: %w", err)
		}
		k8sVersion = kubeversion.Discover(dc, kubeversion.DefaultRefresh, nil, cfg.Logger)
		if _, err := k8sVersion.Get(ctx); err != nil {
			return err
		}
	}
	m := metrics.New()
	svc, err := launcher.New(ctx, launcher.Config{
		Classes: classCache,
		AWS: awsclient.Config{
			Region: lf.region, EC2Endpoint: lf.ec2Endpoint, SSMEndpoint: lf.ssmEndpoint, PricingEndpoint: lf.pricingEndpoint, IAMEndpoint: lf.iamEndpoint,
			IsolatedVPC: lf.isolatedVPC, MaxAttempts: lf.maxAttempts, MaxBackoff: lf.maxBackoff,
		},
		ClusterName: lf.cluster, KubernetesVersion: lf.k8sVersion, KubernetesVersionSource: k8sVersion,
		ClusterEndpoint: lf.clusterEndpoint, ClusterCA: lf.clusterCA, ClusterCIDR: lf.clusterCIDR,
		Refresh: lf.refresh, OnDemandRefresh: lf.onDemandRefresh, NodeClassTTL: lf.nodeClassTTL,
		BatchWindow: batchWindow, MaxBatch: lf.maxBatch, TemplateGrace: lf.templateGrace, CleanupInterval: lf.cleanupInterval,
		Metrics: m, Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, func(s *grpc.Server) {
		launcherv1.RegisterLauncherServiceServer(s, svc)
	})
	if err != nil {
		return err
	}
	srv.Registry().MustRegister(m.Collectors()...)
	go svc.RunCleanup(ctx)
	go func() {
		// After the first signal, restore default handling so a second
		// one kills the process during the drain.
		<-ctx.Done()
		stop()
	}()
	return srv.Serve(ctx)
}

// startClasses starts the EC2NodeClass informer and waits for its first
// list, so the launcher serves only once it knows the cluster's classes.
func startClasses(ctx context.Context, kcfg *rest.Config, syncTimeout time.Duration, log *slog.Logger) (*classes.Cache, error) {
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	c, err := classes.NewCache(ctx, kcfg)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := c.Run(ctx); err != nil {
			log.Error("EC2NodeClass informer stopped", slog.Any("error", err))
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	return c, c.WaitForSync(sctx)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}
