// Package audit checks a cluster's Karpenter (or Flotilla) setup against the
// Karpenter and EKS best-practice checklist: pinned AMIs, where the
// controller runs, Spot interruption handling, NodePool weights, limits and
// instance diversity, and the workload settings consolidation relies on
// (disruption budgets, requests, memory limits, LimitRanges, CoreDNS).
//
// The checks are pure functions over an Inputs value, which comes from
// manifest files (LoadManifests) or from a live cluster (Load). Nothing is
// ever modified: the live loader only lists objects.
package audit

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// Severity ranks a finding as the best-practice checklist does.
type Severity string

// Severities, most serious first.
const (
	// SeverityRequired is a checklist item a production cluster must meet;
	// the CLI exits 1 when one fails.
	SeverityRequired Severity = "required"
	// SeverityHigh is an item that prevents outages or runaway cost.
	SeverityHigh Severity = "high"
	// SeverityRecommended is an item that makes disruption smoother.
	SeverityRecommended Severity = "recommended"
)

// Rank orders severities: 0 for required, 1 for high, 2 for recommended.
func (s Severity) Rank() int {
	switch s {
	case SeverityRequired:
		return 0
	case SeverityHigh:
		return 1
	}
	return 2
}

// Severities lists every severity, most serious first.
var Severities = []Severity{SeverityRequired, SeverityHigh, SeverityRecommended}

// Check IDs, stable names for the JSON output and docs/audit.md.
const (
	CheckAMIPinned           = "ami-pinned"
	CheckControllerPlacement = "controller-placement"
	CheckInterruption        = "interruption-handling"
	CheckNodePoolOverlap     = "nodepool-overlap"
	CheckSpotDiversity       = "spot-diversity"
	CheckNodePoolLimits      = "nodepool-limits"
	CheckDisruptionBudget    = "disruption-budget"
	CheckResourceRequests    = "resource-requests"
	CheckMemoryLimits        = "memory-requests-equal-limits"
	CheckLimitRange          = "limit-range"
	CheckCoreDNS             = "coredns-lameduck"
)

// Object names a Kubernetes object.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders the object as Kind namespace/name (or Kind name).
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Finding is one checklist item an object fails.
type Finding struct {
	// Check is the check's ID (Check* constants).
	Check string `json:"check"`
	// Severity ranks the item.
	Severity Severity `json:"severity"`
	// Object is the object that fails it.
	Object Object `json:"object"`
	// Message says what is wrong with this object.
	Message string `json:"message"`
	// Why says why it matters.
	Why string `json:"why"`
	// Fix says how to fix it.
	Fix string `json:"fix"`
}

// Skipped is a check that could not be evaluated on the inputs, with why.
type Skipped struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// Report is the outcome of every check.
type Report struct {
	// Findings, sorted by severity, then object, then check.
	Findings []Finding `json:"findings"`
	// Skipped lists checks the inputs could not answer, by check.
	Skipped []Skipped `json:"skipped"`
}

// Count returns how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Failed reports whether a required item fails.
func (r *Report) Failed() bool { return r.Count(SeverityRequired) > 0 }

// Inputs is the set of objects the checks look at.
type Inputs struct {
	NodePools       []karpv1.NodePool
	EC2NodeClasses  []awsv1.EC2NodeClass
	Deployments     []appsv1.Deployment
	StatefulSets    []appsv1.StatefulSet
	DaemonSets      []appsv1.DaemonSet
	Pods            []corev1.Pod
	PDBs            []policyv1.PodDisruptionBudget
	Namespaces      []corev1.Namespace
	LimitRanges     []corev1.LimitRange
	ConfigMaps      []corev1.ConfigMap
	Nodes           []corev1.Node
	FromLiveCluster bool
}

// checkFunc is one check: it appends findings and skips to the report.
type checkFunc func(in *Inputs, r *Report)

// checks are run in this order; the report is sorted afterwards.
var checks = []checkFunc{
	checkAMIPinned,
	checkControllerPlacement,
	checkInterruption,
	checkNodePoolOverlap,
	checkSpotDiversity,
	checkNodePoolLimits,
	checkDisruptionBudgets,
	checkResourceRequests,
	checkMemoryLimits,
	checkLimitRanges,
	checkCoreDNS,
}

// Run runs every check over in and returns the sorted report.
func Run(in *Inputs) *Report {
	r := &Report{Findings: []Finding{}, Skipped: []Skipped{}}
	if in == nil {
		in = &Inputs{}
	}
	for _, c := range checks {
		c(in, r)
	}
	sortFindings(r.Findings)
	sort.SliceStable(r.Skipped, func(i, j int) bool { return r.Skipped[i].Check < r.Skipped[j].Check })
	return r
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() < b.Severity.Rank()
		}
		if a.Object.Kind != b.Object.Kind {
			return a.Object.Kind < b.Object.Kind
		}
		if a.Object.Namespace != b.Object.Namespace {
			return a.Object.Namespace < b.Object.Namespace
		}
		if a.Object.Name != b.Object.Name {
			return a.Object.Name < b.Object.Name
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		return a.Message < b.Message
	})
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Report) skip(check, reason string) {
	r.Skipped = append(r.Skipped, Skipped{Check: check, Reason: reason})
}
