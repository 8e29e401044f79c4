// `flotilla ec2sim` runs the EC2 simulator (internal/ec2sim) as a server.
// It is a TEST AND DEMO TOOL, not part of a production deployment: it fakes
// an AWS region (EC2's query API, plus SSM Parameter Store with the public
// EKS AMI parameters and the Pricing API through the same endpoint) so the
// launcher and the aws CLI can run against it without an AWS account.
// Everything is in memory and lost when it stops; it checks no signatures.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eventsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/iamsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/nodebridge"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/ssmsim"
)

const ec2simUsage = `Usage:
  flotilla ec2sim [--listen 127.0.0.1:4566] [--catalog FILE.csv] [--region us-east-1]
                  [--zones a,b,c] [--spot-discount 0.3] [--k8s-versions 1.31,1.32]
                  [--iam-roles KarpenterNodeRole,...] [--vcpu-quota G=0,spot:P=96]
                  [--events-queue URL [--sqs-endpoint URL]]
                  [--kubeconfig PATH [--cluster-name NAME] [--node-sync-interval 300ms]]

Runs an in-memory simulation of an AWS region for tests and demos: the EC2
API calls a node autoscaler makes (DescribeInstanceTypes, CreateFleet,
DescribeInstances, TerminateInstances, ...), SSM Parameter Store holding the
public EKS AMI parameters, the Pricing API, and IAM's instance-profile calls
(the launcher's --iam-endpoint), all on one HTTP endpoint.
Point an SDK or the aws CLI at it with --endpoint-url / BaseEndpoint and any
credentials. It seeds one subnet per zone and a security group tagged
karpenter.sh/discovery=test-cluster, and EKS AMIs owned by 602401143452.
It is not a production component. Stop it with Ctrl-C (SIGINT) or SIGTERM.

Flags:
  --listen ADDR          Address to serve on (default 127.0.0.1:4566; port 0
                         picks a free port, printed at start).
  --catalog FILE         Instance type catalog CSV (the format of
                         shared/data/ec2-us-east-1.csv). Default: the catalog
                         compiled into flotilla.
  --region NAME          Region to simulate (default us-east-1).
  --zones LIST           Zones, comma-separated (default REGION a,b,c).
  --spot-discount F      Spot price as a fraction of on-demand (default 0.3).
  --k8s-versions LIST    Kubernetes versions to publish EKS AMIs for
                         (default: the simulator's usual set).
  --iam-roles LIST       IAM roles that exist, comma-separated, for the
                         instance profiles the launcher makes from an
                         EC2NodeClass role (default KarpenterNodeRole).
  --vcpu-quota LIST      The account's vCPU quotas per instance family class,
                         comma-separated CLASS=VCPUS for on-demand and spot,
                         or on-demand:CLASS=VCPUS / spot:CLASS=VCPUS for one
                         (classes Standard, G, P, F, X, Inf, Trn, DL,
                         HighMemory; default: unlimited). A launch over one
                         fails with VcpuLimitExceeded (on-demand) or
                         MaxSpotInstanceCountExceeded (spot), as EC2's does.
  --events-queue URL     Play EventBridge: POST /_sim/interrupt?Version=flotilla-eventsim&instance=i-...&kind=spot
                         (kinds spot, rebalance, health, state,
                         capacity-reservation; terminate_after=2m ends the
                         instance when the notice runs out) puts the event
                         on this SQS queue, for the interruption service.
  --sqs-endpoint URL     SQS endpoint of --events-queue (an emulator in tests).
  --kubeconfig PATH      Also act as the kubelets of the simulated instances
                         on that cluster: register a Node (annotated
                         kwok.x-k8s.io/node=fake, for kwok) for every running
                         instance and delete it once the instance terminates.
  --cluster-name NAME    With --kubeconfig: only instances tagged
                         kubernetes.io/cluster/NAME (default: all instances);
                         also the karpenter.sh/discovery tag of the seeded
                         subnets and security group (default test-cluster).
  --node-sync-interval D How often Nodes are synced with the instances
                         (default 300ms).
`

func runEC2Sim(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runEC2SimContext(ctx, args, stdout, stderr)
}

// runEC2SimContext serves until ctx is done.
func runEC2SimContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:4566", "")
	catalogFile := fs.String("catalog", "", "")
	region := fs.String("region", "us-east-1", "")
	zones := fs.String("zones", "", "")
	discount := fs.Float64("spot-discount", 0.3, "")
	k8s := fs.String("k8s-versions", "", "")
	roles := fs.String("iam-roles", "KarpenterNodeRole", "")
	quotas := fs.String("vcpu-quota", "", "")
	eventsQueue := fs.String("events-queue", "", "")
	sqsEndpoint := fs.String("sqs-endpoint", "", "")
	kubeconfig := fs.String("kubeconfig", "", "")
	clusterName := fs.String("cluster-name", "", "")
	syncInterval := fs.Duration("node-sync-interval", nodebridge.DefaultInterval, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ec2simUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "flotilla ec2sim: %v\n\n%s", err, ec2simUsage)
		return exitBadInput
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flotilla ec2sim: unexpected argument %q\n", fs.Arg(0))
		return exitBadInput
	}
	if !(*discount > 0 && *discount <= 1) {
		fmt.Fprintf(stderr, "flotilla ec2sim: --spot-discount %v is not in (0, 1]\n", *discount)
		return exitBadInput
	}
	if *syncInterval <= 0 {
		fmt.Fprintf(stderr, "flotilla ec2sim: --node-sync-interval %s is not positive\n", *syncInterval)
		return exitBadInput
	}
	if *kubeconfig == "" && *clusterName != "" {
		fmt.Fprintln(stderr, "flotilla ec2sim: --cluster-name needs --kubeconfig")
		return exitBadInput
	}
	var specs []ec2catalog.Spec
	if *catalogFile != "" {
		f, err := os.Open(*catalogFile)
		if err != nil {
			fmt.Fprintf(stderr, "flotilla ec2sim: %v\n", err)
			return exitBadInput
		}
		specs, err = ec2catalog.Parse(f)
		_ = f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "flotilla ec2sim: %s: %v\n", *catalogFile, err)
			return exitBadInput
		}
	} else {
		specs = ec2catalog.Embedded()
	}
	vcpuQuotas, err := ec2sim.ParseVcpuQuotas(*quotas)
	if err != nil {
		fmt.Fprintf(stderr, "flotilla ec2sim: --vcpu-quota: %v\n", err)
		return exitBadInput
	}
	opts := ec2sim.Options{Catalog: specs, Region: *region, SpotDiscount: *discount, Cluster: *clusterName, VcpuQuotas: vcpuQuotas}
	if *zones != "" {
		for _, z := range strings.Split(*zones, ",") {
			if z = strings.TrimSpace(z); z != "" {
				opts.Zones = append(opts.Zones, z)
			}
		}
	}
	var versions []string
	if *k8s != "" {
		for _, v := range strings.Split(*k8s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				versions = append(versions, v)
			}
		}
	}

	sim := ec2sim.New(opts)
	ssm := ssmsim.New(nil)
	ssm.Region = sim.Region()
	eksami.Seed(func(a eksami.AMI) {
		sim.AddImage(ec2sim.Image{ID: a.ID, Name: a.Name, OwnerID: a.OwnerID, Architecture: a.Arch, CreationDate: a.Created})
	}, ssm.Set, versions...)
	sim.JSONHandlers["AmazonSSM"] = ssm
	sim.JSONHandlers["AWSPriceListService"] = pricingsim.New(specs, sim.Region())
	iam := iamsim.New(ec2sim.AccountID, nil)
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			iam.AddRole(r)
		}
	}
	sim.QueryHandlers[iamsim.APIVersion] = iam
	if *eventsQueue != "" {
		sqsOpts := sqs.Options{Region: sim.Region(), Credentials: credentials.NewStaticCredentialsProvider("ec2sim", "ec2sim", "")}
		if *sqsEndpoint != "" {
			sqsOpts.BaseEndpoint = aws.String(*sqsEndpoint)
		}
		sender := &eventsim.Sender{SQS: sqs.New(sqsOpts), QueueURL: *eventsQueue, Sim: sim}
		defer sender.Stop()
		eventsim.Install(sim, sender)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "flotilla ec2sim: %v\n", err)
		return exitBadInput
	}
	fmt.Fprintf(stdout, "ec2sim (test and demo tool) serving %s with %d instance types in %s on http://%s\n",
		sim.Region(), len(specs), strings.Join(sim.Zones(), ","), ln.Addr())
	if *kubeconfig != "" {
		bridge, err := newNodeBridge(*kubeconfig, "http://"+ln.Addr().String(), sim.Region(), *clusterName, *syncInterval, stderr)
		if err != nil {
			_ = ln.Close()
			fmt.Fprintf(stderr, "flotilla ec2sim: %v\n", err)
			return exitBadInput
		}
		fmt.Fprintf(stdout, "ec2sim: registering Nodes for simulated instances on the cluster of %s\n", *kubeconfig)
		bridgeCtx, stopBridge := context.WithCancel(ctx)
		bridgeDone := make(chan struct{})
		go func() { defer close(bridgeDone); _ = bridge.Run(bridgeCtx) }()
		defer func() { stopBridge(); <-bridgeDone }()
	}
	if err := ec2sim.ServeListener(ctx, ln, sim); err != nil {
		fmt.Fprintf(stderr, "flotilla ec2sim: %v\n", err)
		return exitInternal
	}
	fmt.Fprintln(stdout, "ec2sim stopped")
	return exitOK
}

// newNodeBridge connects the node bridge to the cluster of kubeconfig and,
// through the real EC2 SDK client, to the simulator serving endpoint.
func newNodeBridge(kubeconfig, endpoint, region, cluster string, interval time.Duration, stderr io.Writer) (*nodebridge.Bridge, error) {
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	// Registering many instances at once (a scale-up of a hundred nodes)
	// must not wait on client-go's default 5 requests per second.
	restCfg.QPS, restCfg.Burst = 200, 400
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	// Built directly rather than from the SDK's default chain: the
	// simulator checks no signatures, and the caller's AWS environment
	// (profiles, CA bundles) must not matter.
	ec := ec2.New(ec2.Options{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEC2SIMBRIDGE", "ec2sim", ""),
		HTTPClient:       ec2sim.HTTPClient(),
		RetryMaxAttempts: 3,
	})
	return nodebridge.New(nodebridge.Options{
		Kube: kube, EC2: ec, ClusterName: cluster, Region: region, Interval: interval,
		Log: slog.New(slog.NewTextHandler(stderr, nil)),
	})
}
