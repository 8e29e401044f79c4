package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/planner"
	"github.com/flotilla-io/flotilla/internal/server"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

const planUsage = `Usage:
  flotilla plan [--kubeconfig FILE] [--context NAME] [--launcher-addr HOST:PORT | --catalog FILE.csv]
                [--solver-addr HOST:PORT] [--tls-cert FILE --tls-key FILE --tls-ca FILE | --insecure]
                [-o text|json] [--timeout D]

Reads a live cluster and prints what Flotilla would do now, changing
nothing: the NodeClaims it would launch for the pending pods (NodePool,
instance type options, zone, capacity type, $/hour, pods), the pods no
NodePool can take and why, and for every launched NodeClaim whether it would
be deleted or replaced (expired, drifted, empty, underutilized: with the
saving and the replacement's cost) or why it stays (PodDisruptionBudget,
do-not-disrupt, disruption budget, no cheaper fit, consolidation policy).
Ends with the cost now and after the plan.

Only get and list requests are sent to the API server (any other request is
refused before it leaves the process); no event is recorded.

Flags:
  --kubeconfig FILE         kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
  --context NAME            kubeconfig context (default: the current context).
  --launcher-addr HOST:PORT Take instance types and prices from the launcher
                            (ListInstanceTypes per EC2NodeClass, as the watcher).
  --catalog FILE.csv        Without a launcher: an instance type catalog CSV
                            (the format of ec2sim --catalog). Default: the
                            catalog compiled into flotilla, as the launcher's
                            --isolated-vpc prices.
  --spot-price-factor F     Without a launcher: offer spot at F times the
                            on-demand price (default 0.3; 0: no spot).
  --solver-addr HOST:PORT   Plan with the solver service (default: in-process).
  --tls-cert, --tls-key, --tls-ca FILE
                            The client certificate, its key and the CA bundle
                            for --launcher-addr and --solver-addr: Flotilla's
                            services accept only mutual TLS (docs/grpcurl.md
                            says how to get a certificate).
  --insecure                Dial the services in plaintext (a local test
                            cluster started with --insecure).
  -o, --output text|json    Output format (default text).
  --timeout D               Give up after D (default 1m).

Exit status: 0 when a plan was made, 2 on bad input or when the cluster
(missing CRDs, RBAC denied, unreachable), the launcher or the solver cannot
be used, 1 on an internal error.
`

type planFlags struct {
	kubeconfig, context      string
	launcherAddr, solverAddr string
	catalog                  string
	spotFactor               float64
	output                   string
	timeout                  time.Duration
	tls                      server.TLSFiles
	insecure                 bool
}

func parsePlanFlags(args []string) (*planFlags, error) {
	f := &planFlags{}
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&f.context, "context", "", "")
	fs.StringVar(&f.launcherAddr, "launcher-addr", "", "")
	fs.StringVar(&f.solverAddr, "solver-addr", "", "")
	fs.StringVar(&f.catalog, "catalog", "", "")
	fs.Float64Var(&f.spotFactor, "spot-price-factor", planner.DefaultSpotPriceFactor, "")
	fs.StringVar(&f.output, "o", "text", "")
	fs.StringVar(&f.output, "output", "text", "")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "")
	fs.StringVar(&f.tls.Cert, "tls-cert", "", "")
	fs.StringVar(&f.tls.Key, "tls-key", "", "")
	fs.StringVar(&f.tls.CA, "tls-ca", "", "")
	fs.BoolVar(&f.insecure, "insecure", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return nil, &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case f.output != "text" && f.output != "json":
		return nil, &usageError{fmt.Sprintf("-o %q: use text or json", f.output)}
	case f.timeout <= 0:
		return nil, &usageError{fmt.Sprintf("--timeout %v: must be positive", f.timeout)}
	case f.launcherAddr != "" && f.catalog != "":
		return nil, &usageError{"--launcher-addr and --catalog: give one; the launcher has its own prices"}
	case (f.launcherAddr != "" || f.solverAddr != "") && !f.insecure && (f.tls.Cert == "" || f.tls.Key == "" || f.tls.CA == ""):
		return nil, &usageError{"--launcher-addr and --solver-addr need --tls-cert, --tls-key and --tls-ca (or --insecure for a plaintext test cluster)"}
	case f.insecure && (f.tls.Cert != "" || f.tls.Key != "" || f.tls.CA != ""):
		return nil, &usageError{"--insecure: cannot be combined with --tls-cert, --tls-key or --tls-ca"}
	case math.IsNaN(f.spotFactor) || math.IsInf(f.spotFactor, 0) || f.spotFactor < 0 || f.spotFactor > 1:
		return nil, &usageError{fmt.Sprintf("--spot-price-factor %v: must be between 0 and 1", f.spotFactor)}
	}
	return f, nil
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	f, err := parsePlanFlags(args)
	if err != nil {
		return flagError("plan", planUsage, err, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	opts, closeConns, err := planOptions(f)
	defer closeConns()
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla plan: "+err.Error()))
		return exitBadInput
	}
	kube, err := planClient(f)
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla plan: "+err.Error()))
		return exitBadInput
	}
	rep, err := planner.Plan(ctx, kube, opts)
	if err != nil {
		if errors.Is(err, planner.ErrNoCRDs) || errors.Is(err, planner.ErrForbidden) || errors.Is(err, planner.ErrUnreachable) {
			fmt.Fprintln(stderr, oneLine("flotilla plan: "+err.Error()))
			return exitBadInput
		}
		fmt.Fprintln(stderr, oneLine("flotilla plan: internal error: "+err.Error()))
		return exitInternal
	}
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = planner.WriteText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla plan: writing the plan: "+err.Error()))
		return exitInternal
	}
	return exitOK
}

// planClient is a read-only client for the kubeconfig: every request other
// than GET is refused at the transport.
func planClient(f *planFlags) (client.Reader, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "flotilla-plan"
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Wrap(planner.ReadOnlyTransport)
	return newReadOnlyClient(cfg)
}

func newReadOnlyClient(cfg *rest.Config) (client.Reader, error) {
	c, err := client.New(cfg, client.Options{Scheme: planner.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// planOptions picks the instance type source and the solver; the returned
// function closes the gRPC connections.
func planOptions(f *planFlags) (planner.Options, func(), error) {
	var conns []interface{ Close() error }
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	opts := planner.Options{Solver: planner.InProcess{}, SolverName: "in-process"}
	if f.solverAddr != "" {
		conn, err := server.DialWith(f.solverAddr, server.DialOptions{
			MaxMessageBytes: 16 << 20, TLS: f.tls, Insecure: f.insecure, Services: []string{solverv1.SolverService_ServiceDesc.ServiceName},
		})
		if err != nil {
			return opts, closeAll, fmt.Errorf("--solver-addr: %w", err)
		}
		conns = append(conns, conn)
		opts.Solver, opts.SolverName = planner.Remote{Client: solverv1.NewSolverServiceClient(conn)}, "solver at "+f.solverAddr
	}
	switch {
	case f.launcherAddr != "":
		conn, err := server.DialWith(f.launcherAddr, server.DialOptions{
			MaxMessageBytes: 16 << 20, TLS: f.tls, Insecure: f.insecure, Services: []string{launcherv1.LauncherService_ServiceDesc.ServiceName},
		})
		if err != nil {
			return opts, closeAll, fmt.Errorf("--launcher-addr: %w", err)
		}
		conns = append(conns, conn)
		opts.Types = planner.LauncherTypes(launcherv1.NewLauncherServiceClient(conn), f.launcherAddr)
		opts.InstanceTypesSource = "launcher at " + f.launcherAddr
	case f.catalog != "":
		specs, err := readCatalog(f.catalog)
		if err != nil {
			return opts, closeAll, err
		}
		opts.Types = &planner.CatalogTypes{Specs: specs, SpotPriceFactor: f.spotFactor}
		opts.InstanceTypesSource = fmt.Sprintf("catalog %s, %d types, spot at %.2fx on-demand", f.catalog, len(specs), f.spotFactor)
	default:
		specs := ec2catalog.Embedded()
		opts.Types = &planner.CatalogTypes{Specs: specs, SpotPriceFactor: f.spotFactor}
		opts.InstanceTypesSource = fmt.Sprintf("embedded catalog, %d types, spot at %.2fx on-demand", len(specs), f.spotFactor)
	}
	return opts, closeAll, nil
}

func readCatalog(name string) ([]ec2catalog.Spec, error) {
	fh, err := os.Open(name) //nolint:gosec // the user names the catalog file
	if err != nil {
		return nil, fmt.Errorf("--catalog: %w", err)
	}
	defer fh.Close()
	specs, err := ec2catalog.Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("--catalog %s: %w", name, err)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("--catalog %s: no instance types", name)
	}
	return specs, nil
}
