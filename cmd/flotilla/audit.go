package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/flotilla-io/flotilla/internal/audit"
)

const auditUsage = `Usage:
  flotilla audit [--kubeconfig PATH] [--context NAME] [-o text|json]
  flotilla audit -f FILE|DIR [-f FILE|DIR ...] [-o text|json]

Checks a cluster's node autoscaling setup (Flotilla or Karpenter) against the
Karpenter and EKS best-practice checklist: pinned AMIs, the controller kept
off the nodes it manages, Spot interruption handling, NodePool weights,
limits and Spot instance diversity, and the workload settings consolidation
relies on (PodDisruptionBudgets, resource requests, memory limits,
LimitRanges, CoreDNS lameduck). Each finding is ranked required, high or
recommended. See docs/audit.md.

Without -f it reads the cluster of the kubeconfig, with list requests only:
nothing is ever changed. With -f it reads manifest files instead and contacts
no cluster.

Flags:
  --kubeconfig PATH        Kubeconfig (default $KUBECONFIG, else ~/.kube/config).
  --context NAME           Kubeconfig context (default: the current context).
  -f, --filename FILE|DIR  Manifests (multi-document YAML or JSON); a directory
                           is read recursively (.yaml, .yml, .json). Repeatable;
                           comma-separated too.
  -o, --output text|json   Output format (default text).

Exit status: 0 when no required item fails, 1 when one does (or on an
internal error), 2 on bad input: unreadable or malformed manifests, a cluster
without the karpenter.sh/v1 NodePool CRD, a list RBAC forbids, an API server
that cannot be reached.
`

// auditTimeout bounds reading a live cluster.
const auditTimeout = 2 * time.Minute

type auditFlags struct {
	kubeconfig, context, output string
	files                       fileList
}

func parseAuditFlags(args []string) (*auditFlags, error) {
	f := &auditFlags{}
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&f.context, "context", "", "")
	fs.Var(&f.files, "f", "")
	fs.Var(&f.files, "filename", "")
	fs.StringVar(&f.output, "o", "text", "")
	fs.StringVar(&f.output, "output", "text", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return nil, &usageError{fmt.Sprintf("unexpected argument %q: manifests are given with -f", fs.Arg(0))}
	case f.output != "text" && f.output != "json":
		return nil, &usageError{fmt.Sprintf("-o %q: use text or json", f.output)}
	case len(f.files) > 0 && (f.kubeconfig != "" || f.context != ""):
		return nil, &usageError{"-f reads manifests and contacts no cluster: drop --kubeconfig and --context"}
	}
	return f, nil
}

// runAudit runs 'flotilla audit'.
func runAudit(args []string, stdout, stderr io.Writer) int {
	f, err := parseAuditFlags(args)
	if err != nil {
		return flagError("audit", auditUsage, err, stdout, stderr)
	}
	in, source, err := loadAuditInputs(f)
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla audit: "+err.Error()))
		return exitBadInput
	}
	rep := audit.Run(in)
	if f.output == "json" {
		err = writeAuditJSON(stdout, source, rep)
	} else {
		err = writeAuditText(stdout, source, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, oneLine("flotilla audit: writing the report: "+err.Error()))
		return exitInternal
	}
	if rep.Failed() {
		return exitInternal
	}
	return exitOK
}

// loadAuditInputs reads the manifests, or the cluster of the kubeconfig.
func loadAuditInputs(f *auditFlags) (*audit.Inputs, string, error) {
	if len(f.files) > 0 {
		in, err := audit.LoadManifests(f.files)
		return in, "manifests", err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	in, err := audit.Load(ctx, cfg)
	return in, "cluster", err
}

// auditJSON is the JSON report (schema version 1, docs/audit.md).
type auditJSON struct {
	SchemaVersion int             `json:"schemaVersion"`
	Source        string          `json:"source"`
	Summary       auditSummary    `json:"summary"`
	Findings      []audit.Finding `json:"findings"`
	Skipped       []audit.Skipped `json:"skipped"`
}

type auditSummary struct {
	Required    int  `json:"required"`
	High        int  `json:"high"`
	Recommended int  `json:"recommended"`
	Total       int  `json:"total"`
	Passed      bool `json:"passed"`
}

func summarize(rep *audit.Report) auditSummary {
	return auditSummary{
		Required:    rep.Count(audit.SeverityRequired),
		High:        rep.Count(audit.SeverityHigh),
		Recommended: rep.Count(audit.SeverityRecommended),
		Total:       len(rep.Findings),
		Passed:      !rep.Failed(),
	}
}

func writeAuditJSON(w io.Writer, source string, rep *audit.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(auditJSON{SchemaVersion: 1, Source: source, Summary: summarize(rep), Findings: rep.Findings, Skipped: rep.Skipped})
}

// writeAuditText prints the findings grouped by severity, then the skipped
// checks, then a summary line.
func writeAuditText(w io.Writer, source string, rep *audit.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Audit of the %s against the Karpenter/EKS best-practice checklist\n", source)
	for _, sev := range audit.Severities {
		n := rep.Count(sev)
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%d)\n", strings.ToUpper(string(sev)), n)
		for _, f := range rep.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(&b, "  %s  [%s]\n", f.Object, f.Check)
			fmt.Fprintf(&b, "      %s\n", f.Message)
			fmt.Fprintf(&b, "      why: %s\n", f.Why)
			fmt.Fprintf(&b, "      fix: %s\n", f.Fix)
		}
	}
	if len(rep.Skipped) > 0 {
		b.WriteString("\nNot checked\n")
		for _, s := range rep.Skipped {
			fmt.Fprintf(&b, "  %s: %s\n", s.Check, s.Reason)
		}
	}
	s := summarize(rep)
	verdict := "PASS: no required item fails"
	if !s.Passed {
		verdict = "FAIL: a required item fails"
	}
	fmt.Fprintf(&b, "\n%d required, %d high, %d recommended: %s\n", s.Required, s.High, s.Recommended, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}
