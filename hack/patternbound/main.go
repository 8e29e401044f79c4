// Command patternbound measures how far a benchmark workload's plan can be
// from the cheapest: it runs the column generation of internal/patternlp
// on the workload (default: the trace), prints every round and the LP
// solution's heaviest patterns, and with -plan rounds the LP to whole
// nodes and prints that plan's cost. It takes minutes on the trace.
//
//	go run ./hack/patternbound [-workload trace] [-shared ../shared/data] [-rounds 500] [-plan]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/flotilla-io/flotilla/internal/patternlp"
	"github.com/flotilla-io/flotilla/internal/workload"
)

func main() {
	name := flag.String("workload", workload.BenchTrace, "the benchmark workload (see flotilla bench)")
	seed := flag.Int64("seed", workload.DefaultBenchSeed, "the seed of the karpenter-mix workloads")
	shared := flag.String("shared", "", "the shared data directory (default: found by walking up to shared/data)")
	rounds := flag.Int("rounds", 0, "column-generation rounds (0: default)")
	nodes := flag.Int("node-limit", 0, "branch-and-bound nodes per pricing knapsack (0: default)")
	top := flag.Int("patterns", 25, "print this many of the LP solution's patterns")
	round := flag.Bool("plan", false, "also round the LP to whole nodes and print that plan's cost")
	flag.Parse()
	dir := *shared
	if dir == "" {
		dir, _ = workload.FindSharedData()
	}
	p, err := workload.BuildBenchWorkload(*name, *seed, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "patternbound:", err)
		os.Exit(2)
	}
	in, dims := workload.PatternInput(p)
	opt := patternlp.Options{
		MaxRounds: *rounds,
		NodeLimit: *nodes,
		Progress: func(r patternlp.Round) {
			fmt.Printf("round %3d  master $%.2f/h  bound $%.2f/h  added %3d  exact %v  %s\n",
				r.Round, r.Master, r.Lower, r.Added, r.Exact, r.Elapsed.Round(1e6))
		},
	}
	var res patternlp.Result
	if *round {
		pr := patternlp.Plan(context.Background(), in, opt, 0)
		fmt.Printf("rounded plan: %d nodes, $%.2f/h after %d LPs\n", len(pr.Nodes), pr.Cost, pr.LPs)
		res = pr.Result
	} else {
		res = patternlp.Bound(context.Background(), in, opt)
	}
	unfit := 0
	for _, c := range res.Unfit {
		unfit += in.Classes[c].Count
	}
	fmt.Printf("%d classes (%d pods fit no type), %d instance types priced, %d columns, %d rounds, converged %v\n",
		len(in.Classes), unfit, res.Types, res.Columns, res.Rounds, res.Converged)
	fmt.Printf("proven lower bound $%.2f/h; LP optimum in [$%.2f, $%.2f]/h\n", res.Lower, res.Lower, res.Master)
	for i, pat := range res.Patterns {
		if i == *top {
			break
		}
		var pods []string
		for c, k := range pat.Counts {
			if k > 0 {
				pods = append(pods, fmt.Sprintf("%d×%v", k, in.Classes[c].Requests[:len(dims)-1]))
			}
		}
		fmt.Printf("%8.2f × %-16s $%.3f/h  %v\n", pat.Nodes, p.InstanceTypes[pat.Type].Name, in.Types[pat.Type].Price, pods)
	}
	fmt.Printf("(requests per pod in %v)\n", dims[:len(dims)-1])
}
