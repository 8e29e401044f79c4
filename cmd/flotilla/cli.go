package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Exit codes.
const (
	exitOK       = 0
	exitInternal = 1
	exitBadInput = 2
)

// version is set at link time with -ldflags "-X main.version=v1.2.3".
var version = ""

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
  version   Print the version.
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
		if len(args) > 1 && args[1] == "solve" {
			fmt.Fprint(stdout, solveUsage)
			return exitOK
		}
		if len(args) > 1 && args[1] == "ec2sim" {
			fmt.Fprint(stdout, ec2simUsage)
			return exitOK
		}
		if len(args) > 1 && args[1] == "plan" {
			fmt.Fprint(stdout, planUsage)
			return exitOK
		}
		if len(args) > 1 && args[1] == "audit" {
			fmt.Fprint(stdout, auditUsage)
			return exitOK
		}
		if len(args) > 1 && args[1] == "bench" {
			fmt.Fprint(stdout, benchUsage)
			return exitOK
		}
		if len(args) > 1 && args[1] == "demo" {
			fmt.Fprint(stdout, demoUsage)
			return exitOK
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "flotilla %s %s/%s %s\n", versionString(), runtime.GOOS, runtime.GOARCH, runtime.Version())
		return exitOK
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

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
