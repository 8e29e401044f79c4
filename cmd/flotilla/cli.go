package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	exitOK       = 0
	exitInternal = 1
	exitBadInput = 2
)

const usage = `flotilla plans Kubernetes node capacity the way Karpenter would.

Usage:
  flotilla solve --pods PODS.yaml [--nodepools NODEPOOLS.yaml] --instance-types CATALOG [flags]
  flotilla ec2sim [--listen ADDR] [--catalog CATALOG.csv]
  flotilla plan [--kubeconfig PATH] [--launcher-addr ADDR] [-o text|json]
  flotilla audit [--kubeconfig PATH | -f FILE|DIR ...] [-o text|json]
  flotilla bench [--workloads LIST] [--runs N] [-o text|json]
  flotilla demo [--once]
  flotilla version
  flotilla help

Commands:
  solve     Plan where pending pods go and which nodes to launch for them.
  ec2sim    Run a simulated AWS region (EC2, SSM, Pricing) for tests and demos.
  plan      Show what Flotilla would launch and consolidate now in a live cluster, changing nothing.
  audit     Check a cluster or manifests against Karpenter's EKS best practices.
  bench     Time the solver on the benchmark workloads (karpenter-mix, the trace, 100k pods).
  demo      Run Flotilla on a local cluster: a spike, a Spot interruption, consolidation.
  version   Print the version, the commit it was built from and the Go version.
  help      Print this help.

Run 'flotilla solve -h' or 'flotilla ec2sim -h' for their flags.
`

// run runs the CLI with args (without the program name) and returns the
// exit code: 0 when it did its job, 2 on bad input or usage, 1 on an
// internal error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadInput
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if u, ok := commandUsage[argAt(args, 1)]; ok {
			fmt.Fprint(stdout, u)
			return exitOK
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		return runVersion(args[1:], stdout, stderr)
	case "solve":
		return runSolve(args[1:], stdout, stderr)
	case "ec2sim":
		return runEC2Sim(args[1:], stdout, stderr)
	case "plan":
		return runPlan(args[1:], stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "flotilla: unknown flag %s before a command; run 'flotilla help' for usage\n", args[0])
	} else {
		fmt.Fprintf(stderr, "flotilla: unknown command %q; run 'flotilla help' for usage\n", args[0])
	}
	return exitBadInput
}

// commandUsage is each command's usage text, for 'flotilla help COMMAND'.
var commandUsage = map[string]string{
	"solve": solveUsage, "ec2sim": ec2simUsage, "plan": planUsage,
	"audit": auditUsage, "bench": benchUsage, "demo": demoUsage,
	"version": versionUsage,
}

func argAt(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// flagError answers a command's flag-parsing error: -h prints the usage
// (exit 0), anything else a one-line reason (exit 2).
func flagError(cmd, usage string, err error, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "flotilla %s: %s; run 'flotilla %s -h' for usage\n", cmd, err, cmd)
	return exitBadInput
}
