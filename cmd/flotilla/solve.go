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
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/catalog"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	"github.com/flotilla-io/flotilla/internal/planner"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

const solveUsage = `Usage:
  flotilla solve --pods PODS.yaml [--nodepools NODEPOOLS.yaml]
                 [--region us-east-1 | --instance-types CATALOG]
                 [--zones us-east-1a,us-east-1b,us-east-1c] [--spot-price-factor F]
                 [--daemonsets DS.yaml] [--nodes NODES.yaml] [--overhead none|eks]
                 [--ignore-preferences] [--improve-budget D] [--improve-rounds N]
                 [--min-spot-types N] [-o table|json]

Plans where the pending pods go: onto existing nodes or onto new nodes
launched from the NodePools, choosing the cheapest instance types of the
catalog that fit, and prints the plan.

Without --instance-types the catalog is the one compiled into flotilla:
every EC2 instance type with the labels, capacity and allocatable the
launcher gives it (default kubelet settings, 20Gi root volume), offered on
demand at its Linux on-demand price and on spot at --spot-price-factor
times it, in every zone of --region.

Flags:
  --pods FILE               Kubernetes YAML with Pods, Deployments, ReplicaSets,
                            StatefulSets, Jobs (and any other kind --nodes and
                            --daemonsets take). Repeatable; comma-separated too.
  --nodepools FILE          karpenter.sh/v1 NodePools. Repeatable. Without it,
                            one NodePool "default" with no requirements.
  --instance-types FILE     Instance type catalog: CSV with a header line, or a
                            YAML/JSON list of instance types. Default: the
                            embedded EC2 catalog.
  --region REGION           Region of the embedded catalog (default us-east-1,
                            the one it has). Only without --instance-types: a
                            catalog file brings its own prices; give its zones
                            with --zones.
  --zones LIST              Zones the catalog rows are offered in (default: the
                            region's zones, us-east-1a,us-east-1b,us-east-1c;
                            with the embedded catalog, a subset of them).
  --spot-price-factor F     Also offer every catalog row as spot at F times its
                            on-demand price (default 0.3 with the embedded
                            catalog, 0 with --instance-types; 0: no spot).
  --daemonsets FILE         DaemonSets whose pods run on every node. Repeatable.
  --nodes FILE              Existing Nodes, with the Pods bound to them
                            (spec.nodeName). Repeatable.
  --overhead none|eks       Allocatable of CSV rows: as given (none, default),
                            or less EKS's kube-reserved and eviction threshold.
                            Only with --instance-types: the embedded catalog's
                            allocatable already is the launcher's.
  --ignore-preferences      Ignore preferred affinities, ScheduleAnyway spreads
                            and PreferNoSchedule taints.
  --max-instance-type-options N
                            Instance types listed per new node (default 60).
  --improve-budget D        Wall-clock cap on further placement strategies
                            and repacking (default 0: no cap, the effort is
                            counted in work and the plan does not depend on
                            the machine's speed; negative: the first
                            strategy only). With a cap, as many strategies
                            run as fit in it; 1s or more also plans
                            resource-only batches by the pattern LP.
  --improve-rounds N        Run N placement strategies (default 0: 2, and
                            one more while the last beats all before it;
                            or as many as fit in --improve-budget).
  --min-spot-types N        Spot diversity: open a node on spot only when at
                            least N instance types could take its first pod
                            as spot in that zone (default 15, as Karpenter;
                            negative: no rule).
  -o, --output table|json   Output format (default table).

Exit status: 0 when a plan was made (even with unschedulable pods), 2 on bad
input, 1 on an internal error.
`

// fileList is a repeatable, comma-separated list of file names.
type fileList []string

func (f *fileList) String() string { return strings.Join(*f, ",") }

func (f *fileList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*f = append(*f, s)
		}
	}
	return nil
}

type solveFlags struct {
	pods, nodePools, daemonSets, nodes fileList
	instanceTypes                      string
	region                             string
	zones                              string
	spotFactor                         float64
	overhead                           string
	ignorePreferences                  bool
	maxOptions                         int
	improveBudget                      time.Duration
	improveRounds                      int
	minSpotTypes                       int
	output                             string
}

// usageError is a problem with the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func parseSolveFlags(args []string) (*solveFlags, error) {
	f := &solveFlags{}
	fs := flag.NewFlagSet("solve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&f.pods, "pods", "")
	fs.Var(&f.nodePools, "nodepools", "")
	fs.Var(&f.daemonSets, "daemonsets", "")
	fs.Var(&f.nodes, "nodes", "")
	fs.StringVar(&f.instanceTypes, "instance-types", "", "")
	fs.StringVar(&f.region, "region", ec2catalog.Region, "")
	fs.StringVar(&f.zones, "zones", strings.Join(catalog.DefaultZones, ","), "")
	fs.Float64Var(&f.spotFactor, "spot-price-factor", 0, "")
	fs.StringVar(&f.overhead, "overhead", catalog.OverheadNone, "")
	fs.BoolVar(&f.ignorePreferences, "ignore-preferences", false, "")
	fs.IntVar(&f.maxOptions, "max-instance-type-options", 0, "")
	fs.Var(budgetFlag{&f.improveBudget}, "improve-budget", "")
	fs.IntVar(&f.improveRounds, "improve-rounds", 0, "")
	fs.IntVar(&f.minSpotTypes, "min-spot-types", 0, "")
	fs.StringVar(&f.output, "o", "table", "")
	fs.StringVar(&f.output, "output", "table", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{fmt.Sprintf("unexpected argument %q: files are given with --pods, --nodepools and --instance-types", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if err := f.catalogDefaults(set); err != nil {
		return nil, err
	}
	switch {
	case len(f.pods) == 0:
		return nil, &usageError{"--pods is required"}
	case f.output != "table" && f.output != "json":
		return nil, &usageError{fmt.Sprintf("-o %q: use table or json", f.output)}
	case f.overhead != catalog.OverheadNone && f.overhead != catalog.OverheadEKS:
		return nil, &usageError{fmt.Sprintf("--overhead %q: use none or eks", f.overhead)}
	case math.IsNaN(f.spotFactor) || math.IsInf(f.spotFactor, 0) || f.spotFactor < 0:
		return nil, &usageError{fmt.Sprintf("--spot-price-factor %v: must be 0 or more", f.spotFactor)}
	case f.improveRounds < 0 || f.improveRounds > math.MaxInt32:
		return nil, &usageError{fmt.Sprintf("--improve-rounds %d: must be 0 or more", f.improveRounds)}
	case f.improveBudget > 10*time.Minute:
		return nil, &usageError{fmt.Sprintf("--improve-budget %v: at most 10m", f.improveBudget)}
	case f.minSpotTypes < math.MinInt32 || f.minSpotTypes > math.MaxInt32:
		return nil, &usageError{fmt.Sprintf("--min-spot-types %d: out of range", f.minSpotTypes)}
	case f.maxOptions < 0 || f.maxOptions > math.MaxInt32:
		return nil, &usageError{fmt.Sprintf("--max-instance-type-options %d: must be 0 or more", f.maxOptions)}
	}
	return f, nil
}

// catalogDefaults checks --region, --zones, --overhead and
// --spot-price-factor against the catalog in use and fills in the embedded
// catalog's defaults.
func (f *solveFlags) catalogDefaults(set map[string]bool) error {
	if f.instanceTypes != "" {
		if set["region"] {
			return &usageError{fmt.Sprintf("--region %q: only for the embedded catalog; with --instance-types the file gives the prices, --zones the zones", f.region)}
		}
		return nil
	}
	zones, ok := ec2catalog.RegionZones(f.region)
	if !ok {
		return &usageError{fmt.Sprintf("--region %q: the embedded catalog has no such region (it has %s)", f.region, strings.Join(ec2catalog.Regions(), ", "))}
	}
	if f.overhead == catalog.OverheadEKS {
		return &usageError{"--overhead eks: only with --instance-types; the embedded catalog's allocatable already is the launcher's (kube-reserved and eviction threshold subtracted)"}
	}
	if !set["spot-price-factor"] {
		f.spotFactor = planner.DefaultSpotPriceFactor
	}
	if !set["zones"] {
		f.zones = strings.Join(zones, ",")
		return nil
	}
	for _, z := range strings.Split(f.zones, ",") {
		if z = strings.TrimSpace(z); z != "" && !slices.Contains(zones, z) {
			return &usageError{fmt.Sprintf("--zones: %q is not a zone of the embedded catalog's region %s (%s)", z, f.region, strings.Join(zones, ","))}
		}
	}
	return nil
}

func runSolve(args []string, stdout, stderr io.Writer) int {
	f, err := parseSolveFlags(args)
	if err != nil {
		return flagError("solve", solveUsage, err, stdout, stderr)
	}
	in, err := loadInputs(f)
	if err != nil {
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return exitBadInput
	}
	resp, err := solverapi.Solve(context.Background(), in.req)
	if err != nil {
		if errors.Is(err, solverapi.ErrInvalidArgument) {
			fmt.Fprintln(stderr, oneLine(in.explain(err)))
			return exitBadInput
		}
		fmt.Fprintln(stderr, oneLine("flotilla solve: internal error: "+err.Error()))
		return exitInternal
	}
	out := planOutput(resp)
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, oneLine("flotilla solve: writing the plan: "+err.Error()))
			return exitInternal
		}
		return exitOK
	}
	if err := writeTable(stdout, out); err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla solve: writing the plan: "+err.Error()))
		return exitInternal
	}
	return exitOK
}

// inputs is a request with the side tables that map its items back to the
// files and documents they came from.
type inputs struct {
	req         *solverv1.SolveRequest
	docs        *kubeyaml.Documents
	poolSources []string
	catalogFile string
}

func loadInputs(f *solveFlags) (*inputs, error) {
	loader := kubeyaml.NewLoader()
	var files []string
	files = append(files, f.pods...)
	files = append(files, f.daemonSets...)
	files = append(files, f.nodes...)
	seen := map[string]bool{}
	for _, name := range files {
		if seen[name] {
			continue // the same file twice would only duplicate everything
		}
		seen[name] = true
		if err := withFile(name, func(r io.Reader) error { return loader.Add(name, r) }); err != nil {
			return nil, err
		}
	}
	docs, err := loader.Documents()
	if err != nil {
		return nil, err
	}
	in := &inputs{docs: docs, catalogFile: f.instanceTypes}
	if in.catalogFile == "" {
		in.catalogFile = "the embedded catalog (" + f.region + ")"
	}

	var pools []*typesv1.NodePool
	poolAt := map[string]string{}
	for _, name := range f.nodePools {
		var ps []*typesv1.NodePool
		var srcs []kubeyaml.Source
		err := withFile(name, func(r io.Reader) error {
			var err error
			ps, srcs, err = kubeyaml.LoadNodePoolsWithSources(name, r)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, p := range ps {
			if prev, ok := poolAt[p.Name]; ok {
				return nil, fmt.Errorf("%s: duplicate NodePool %s: already defined at %s", srcs[i], p.Name, prev)
			}
			poolAt[p.Name] = srcs[i].String()
			pools = append(pools, p)
			in.poolSources = append(in.poolSources, srcs[i].String())
		}
	}
	if len(f.nodePools) == 0 {
		pools = []*typesv1.NodePool{{Name: "default"}}
		in.poolSources = []string{"the built-in NodePool default"}
	} else if len(pools) == 0 {
		return nil, fmt.Errorf("%s: no NodePool documents", strings.Join(f.nodePools, ", "))
	}

	var zones []string
	for _, z := range strings.Split(f.zones, ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	if len(zones) == 0 {
		return nil, &usageError{"--zones: no zones given"}
	}
	var types []*typesv1.InstanceType
	if f.instanceTypes == "" {
		// The launcher's view of the embedded catalog, shared with
		// `flotilla plan`: a zero EC2NodeClass is the default kubelet
		// settings and root volume.
		types, err = planner.CatalogInstanceTypes(ec2catalog.Embedded(), f.spotFactor, zones, &awsv1.EC2NodeClass{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.catalogFile, err)
		}
	} else {
		err = withFile(f.instanceTypes, func(r io.Reader) error {
			var err error
			types, err = catalog.Load(f.instanceTypes, r, catalog.Options{Zones: zones, SpotPriceFactor: f.spotFactor, Overhead: f.overhead})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	priceNodes(docs.Nodes, types)

	in.req = &solverv1.SolveRequest{
		Pods:          docs.Pods,
		NodePools:     pools,
		InstanceTypes: types,
		Nodes:         docs.Nodes,
		DaemonSets:    docs.DaemonSets,
		Namespaces:    docs.Namespaces,
		Options: &solverv1.SolveOptions{
			IgnorePreferences:      f.ignorePreferences,
			MaxInstanceTypeOptions: int32(f.maxOptions),
			ImproveBudgetSeconds:   f.improveBudget.Seconds(),
			ImproveRounds:          int32(f.improveRounds),
			MinSpotInstanceTypes:   int32(f.minSpotTypes),
		},
	}
	return in, nil
}

func withFile(name string, fn func(io.Reader) error) error {
	fh, err := os.Open(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s: %w", name, pe.Err)
		}
		return err
	}
	defer fh.Close()
	return fn(fh)
}

// priceNodes fills in the price of existing nodes from the catalog offering
// of their instance type, zone and capacity type.
func priceNodes(nodes []*typesv1.Node, types []*typesv1.InstanceType) {
	byName := map[string]*typesv1.InstanceType{}
	for _, it := range types {
		byName[it.Name] = it
	}
	for _, n := range nodes {
		it := byName[n.InstanceType]
		if n.PricePerHour != 0 || it == nil {
			continue
		}
		ct := n.CapacityType
		if ct == "" {
			ct = "on-demand"
		}
		for _, o := range it.Offerings {
			if o.Zone == n.Zone && o.CapacityType == ct {
				n.PricePerHour = o.PricePerHour
				break
			}
		}
	}
}

var fieldRE = regexp.MustCompile(`^(pods|node_pools|daemon_sets|nodes|instance_types)\[(\d+)\]\.?(.*)$`)

// explain maps a validation error of the request back to the file and
// document the offending item came from.
func (in *inputs) explain(err error) string {
	var fe *solverapi.FieldError
	if !errors.As(err, &fe) {
		return "flotilla solve: invalid input: " + err.Error()
	}
	m := fieldRE.FindStringSubmatch(fe.Field)
	if m == nil {
		return "flotilla solve: invalid input: " + fe.Error()
	}
	i, _ := strconv.Atoi(m[2])
	rest := m[3]
	where := ""
	switch m[1] {
	case "pods":
		if i < len(in.docs.PodSources) {
			p := in.req.Pods[i]
			where = fmt.Sprintf("%s: pod %s/%s", in.docs.PodSources[i], p.Namespace, p.Name)
		}
	case "node_pools":
		if i < len(in.poolSources) {
			where = in.poolSources[i]
		}
	case "daemon_sets":
		if i < len(in.docs.DaemonSetSources) {
			where = in.docs.DaemonSetSources[i].String()
		}
	case "nodes":
		if i < len(in.docs.NodeSources) {
			where = in.docs.NodeSources[i].String()
		}
	case "instance_types":
		if i < len(in.req.InstanceTypes) {
			where = fmt.Sprintf("%s: instance type %s", in.catalogFile, in.req.InstanceTypes[i].Name)
		}
	}
	if where == "" {
		return "flotilla solve: invalid input: " + fe.Error()
	}
	if rest != "" {
		return where + ": " + rest + ": " + fe.Reason
	}
	return where + ": " + fe.Reason
}

// Output is the plan as `flotilla solve -o json` prints it.
type Output struct {
	NodeClaims           []OutputNodeClaim     `json:"nodeClaims"`
	ExistingNodeBindings map[string][]string   `json:"existingNodeBindings"`
	Unschedulable        []OutputUnschedulable `json:"unschedulable"`
	CostPerHour          float64               `json:"costPerHour"`
	// LowerBoundPerHour is a proven lower bound on CostPerHour for any
	// valid plan placing the same pods; CostToBoundRatio is their ratio.
	LowerBoundPerHour float64 `json:"lowerBoundPerHour"`
	CostToBoundRatio  float64 `json:"costToBoundRatio"`
	SolveSeconds      float64 `json:"solveSeconds"`
}

// OutputNodeClaim is one new node of the plan.
type OutputNodeClaim struct {
	NodePool            string   `json:"nodePool"`
	InstanceType        string   `json:"instanceType"`
	CapacityType        string   `json:"capacityType"`
	Zone                string   `json:"zone"`
	PricePerHour        float64  `json:"pricePerHour"`
	InstanceTypeOptions []string `json:"instanceTypeOptions"`
	Pods                []string `json:"pods"`
}

// OutputUnschedulable is a pod the plan could not place; NodePools says
// which constraint ruled out each NodePool.
type OutputUnschedulable struct {
	Pod       string             `json:"pod"`
	Reason    string             `json:"reason"`
	NodePools []OutputPoolReason `json:"nodePools,omitempty"`
}

// OutputPoolReason is why one NodePool cannot take a pod.
type OutputPoolReason struct {
	NodePool string `json:"nodePool"`
	Reason   string `json:"reason"`
}

func planOutput(resp *solverv1.SolveResponse) *Output {
	plan := resp.GetPlan()
	out := &Output{
		NodeClaims:           []OutputNodeClaim{},
		ExistingNodeBindings: map[string][]string{},
		Unschedulable:        []OutputUnschedulable{},
		CostPerHour:          plan.GetCostPerHour(),
		LowerBoundPerHour:    resp.GetLowerBoundPerHour(),
		CostToBoundRatio:     resp.GetCostToBoundRatio(),
		SolveSeconds:         resp.GetSolveSeconds(),
	}
	for _, nc := range plan.GetNodeClaims() {
		out.NodeClaims = append(out.NodeClaims, OutputNodeClaim{
			NodePool:            nc.GetNodePool(),
			InstanceType:        nc.GetInstanceType(),
			CapacityType:        nc.GetCapacityType(),
			Zone:                nc.GetZone(),
			PricePerHour:        nc.GetPricePerHour(),
			InstanceTypeOptions: append([]string{}, nc.GetInstanceTypeOptions()...),
			Pods:                append([]string{}, nc.GetPods()...),
		})
	}
	for node, pods := range plan.GetExistingNodeBindings() {
		out.ExistingNodeBindings[node] = append([]string{}, pods.GetPods()...)
	}
	byPod := map[string][]OutputPoolReason{}
	for _, e := range resp.GetExplanations() {
		for _, r := range e.GetNodePools() {
			byPod[e.GetPod()] = append(byPod[e.GetPod()], OutputPoolReason{NodePool: r.GetNodePool(), Reason: r.GetReason()})
		}
	}
	for _, u := range plan.GetUnschedulable() {
		out.Unschedulable = append(out.Unschedulable, OutputUnschedulable{Pod: u.GetPod(), Reason: u.GetReason(), NodePools: byPod[u.GetPod()]})
	}
	return out
}

func writeTable(w io.Writer, out *Output) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	placedNew := 0
	if len(out.NodeClaims) == 0 {
		fmt.Fprintln(tw, "No new nodes needed.")
	} else {
		fmt.Fprintln(tw, "NEW NODE\tNODEPOOL\tINSTANCE TYPE\tZONE\tCAPACITY TYPE\t$/HOUR\tPODS")
		for i, nc := range out.NodeClaims {
			placedNew += len(nc.Pods)
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", i+1, nc.NodePool, nc.InstanceType, nc.Zone, nc.CapacityType, money(nc.PricePerHour), len(nc.Pods))
		}
	}
	placedExisting := 0
	if len(out.ExistingNodeBindings) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "EXISTING NODE\tPODS\t")
		nodes := make([]string, 0, len(out.ExistingNodeBindings))
		for n := range out.ExistingNodeBindings {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			placedExisting += len(out.ExistingNodeBindings[n])
			fmt.Fprintf(tw, "%s\t%d\t\n", n, len(out.ExistingNodeBindings[n]))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(out.Unschedulable) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "UNSCHEDULABLE POD\tREASON")
		for _, u := range out.Unschedulable {
			fmt.Fprintf(tw, "%s\t%s\n", u.Pod, oneLine(u.Reason))
			for _, r := range u.NodePools {
				fmt.Fprintf(tw, "\t  nodepool %s: %s\n", r.NodePool, oneLine(r.Reason))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\nTotal: %d new %s, %s/hour (lower bound %s/hour, ratio %.3f); %d pods on new nodes, %d on existing nodes, %d unschedulable (solved in %.3fs)\n",
		len(out.NodeClaims), plural(len(out.NodeClaims), "node", "nodes"), money(out.CostPerHour),
		money(out.LowerBoundPerHour), out.CostToBoundRatio,
		placedNew, placedExisting, len(out.Unschedulable), out.SolveSeconds)
	return err
}

func money(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 4, 64) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}
