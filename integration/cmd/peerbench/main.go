// Command peerbench runs the live side-by-side benchmark (`make
// peer-bench`): for Flotilla and for Karpenter's KWOK provider in turn, a
// fresh local control plane, the same catalog and NodePool, the spike
// workload (karpenter-mix pods created at once, then scaled to 20%), and
// the same API-server observer. It prints a Markdown table; --json writes
// every figure and the per-second samples.
//
//	peerbench [--pods 1000] [--sides flotilla,karpenter] [--shared-data DIR] [--json FILE] [--keep DIR]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/integration/peerbench"
	"github.com/flotilla-io/flotilla/internal/workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pods := fs.Int("pods", 1000, "spike size (karpenter-mix pods)")
	seed := fs.Int64("seed", workload.DefaultBenchSeed, "karpenter-mix seed")
	sides := fs.String("sides", peerbench.Flotilla+","+peerbench.Karpenter, "sides to run, in order")
	shared := fs.String("shared-data", "", "shared/data directory (default: found above the working directory)")
	jsonOut := fs.String("json", "", "write every figure and sample to this file")
	keep := fs.String("keep", "", "keep catalogs and logs in this directory (default: a temporary one, removed)")
	scaleUp := fs.Duration("scale-up-timeout", 10*time.Minute, "longest wait for the spike to be scheduled")
	settle := fs.Duration("settle-timeout", 10*time.Minute, "longest wait for consolidation after scaling to 20%")
	settled := fs.Duration("settled", 2*time.Minute, "consolidation has settled when the node count has not changed for this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *shared == "" {
		var ok bool
		if *shared, ok = workload.FindSharedData(); !ok {
			fmt.Fprintln(stderr, "peerbench: no shared/data directory found; pass --shared-data")
			return 2
		}
	}
	specs, err := peerbench.LoadShared(filepath.Join(*shared, "ec2-us-east-1.csv"))
	if err != nil {
		fmt.Fprintln(stderr, "peerbench:", err)
		return 1
	}
	cat, err := peerbench.NewCatalog(specs)
	if err != nil {
		fmt.Fprintln(stderr, "peerbench:", err)
		return 1
	}
	root, err := cluster.FindRepoRoot()
	if err != nil {
		fmt.Fprintln(stderr, "peerbench:", err)
		return 1
	}
	work := *keep
	if work == "" {
		if work, err = os.MkdirTemp("", "peerbench-"); err != nil {
			fmt.Fprintln(stderr, "peerbench:", err)
			return 1
		}
		defer os.RemoveAll(work)
	}
	o := peerbench.Options{RepoRoot: root, Catalog: cat, Pods: *pods, Seed: *seed, ScaleUpTimeout: *scaleUp,
		SettleTimeout: *settle, Settled: *settled, WorkDir: work, Log: stderr}
	fmt.Fprintf(stderr, "peerbench: %d types × %d zones × on-demand and spot; spike of %d pods; logs in %s\n", len(specs), len(peerbench.Zones), *pods, work)
	var outs []peerbench.Outcome
	code := 0
	for _, side := range strings.Split(*sides, ",") {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "peerbench: %s not run: %v\n", side, ctx.Err())
			code = 1
			break
		}
		out, err := peerbench.Run(ctx, side, o)
		if err != nil {
			fmt.Fprintf(stderr, "peerbench: %v\n", err)
			code = 1
			continue
		}
		outs = append(outs, out)
	}
	printTable(stdout, *pods, outs)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(outs, "", " ")
		if err == nil {
			err = os.WriteFile(*jsonOut, data, 0o600)
		}
		if err != nil {
			fmt.Fprintln(stderr, "peerbench:", err)
			code = 1
		}
	}
	return code
}

func printTable(w io.Writer, pods int, outs []peerbench.Outcome) {
	fmt.Fprintf(w, "spike %d → %d%% (%s, %d CPUs, %s UTC)\n\n", pods, 20, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintln(w, "| side | $·h | nodes peak → end | nodes launched | $/h at end | pending p50 / p99 / max | unscheduled | evictions | NodeClaims +/− | scale-up | settle | controller CPU s | peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, o := range outs {
		fmt.Fprintf(w, "| %s | %.3f | %d → %d | %d | %.3f | %s / %s / %s | %d | %d | %d / %d | %s | %s | %.1f | %d |\n",
			o.Side, o.DollarHours, o.NodesPeak, o.NodesEnd, o.NodesLaunched, o.CostEnd,
			o.PendingP50, o.PendingP99, o.PendingMax, o.Unscheduled, o.Evictions, o.ClaimsCreated, o.ClaimsDeleted,
			o.ScaleUp.Round(time.Second), o.Settle.Round(time.Second), o.Proc.CPUSeconds, o.Proc.PeakRSSBytes>>20)
	}
	fmt.Fprintln(w, "\nnodes / $/h each minute from the spike's creation:")
	for _, o := range outs {
		fmt.Fprintf(w, "%-9s", o.Side)
		next := time.Duration(0)
		for _, s := range o.Samples {
			if s.At >= next {
				fmt.Fprintf(w, " %d/%.1f", s.Nodes, s.Dollars)
				next += time.Minute
			}
		}
		fmt.Fprintln(w)
	}
	for _, o := range outs {
		if len(o.UnknownOfferings) > 0 {
			fmt.Fprintf(w, "\n%s: offerings outside the catalog, charged $0: %s\n", o.Side, strings.Join(o.UnknownOfferings, ", "))
		}
	}
}
