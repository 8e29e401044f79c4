// Package disruption decides which of Karpenter-style NodePools' nodes to take
// away, and when: expired nodes (forcefully, as in Karpenter v1), drifted nodes
// (replaced), empty nodes (deleted) and underutilized nodes (deleted or
// replaced by something cheaper, as the solver's Consolidate proposes). It
// honours NodePool disruption budgets, the karpenter.sh/do-not-disrupt
// annotation and PodDisruptionBudgets, and explains every decision and every
// blocked node through events and its Report.
//
// The package holds no controller-runtime machinery: the watcher gives it the
// cluster state (Cluster), the means to act (Actuator) and the solver, and
// calls Controller.Run once per disruption interval.
package disruption

import (
	"context"
	"log/slog"
	"sync"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Candidate is one launched NodeClaim with everything disruption looks at.
type Candidate struct {
	// NodeClaim is the claim; never nil.
	NodeClaim *karpv1.NodeClaim
	// Node is the node it registered as; nil while not registered.
	Node *corev1.Node
	// NodePool is the claim's NodePool; nil when it no longer exists.
	NodePool *karpv1.NodePool
	// NodeClass is the claim's EC2NodeClass; nil when unknown.
	NodeClass *awsv1.EC2NodeClass
	// Pods are the pods bound to the node.
	Pods []*corev1.Pod
	// PricePerHour is what the node costs, in US dollars per hour.
	PricePerHour float64
	// Unpriced says why PricePerHour is unknown (its EC2NodeClass's
	// instance types could not be listed, or none of them prices its
	// instance type, zone and capacity type); empty when it is known. An
	// unpriced node is no consolidation candidate: priced 0, it would look
	// free to keep and never worth replacing.
	Unpriced string
	// UnpricedReason is BlockedUnpriced or BlockedTypesUnlisted, with
	// Unpriced.
	UnpricedReason string
}

// UnconvertedDaemonSet is a DaemonSet whose pods could not be described to
// the solver, and why.
type UnconvertedDaemonSet struct {
	// Name is namespace/name.
	Name string
	// Err is the conversion error.
	Err error
}

// Cluster reads the cluster state.
type Cluster interface {
	// Candidates returns every launched NodeClaim with its Node, pool, class
	// and pods.
	Candidates(ctx context.Context) ([]Candidate, error)
	// PDBs returns the PodDisruptionBudgets of all namespaces.
	PDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error)
	// InstanceTypes returns the instance types replacements may use.
	InstanceTypes(ctx context.Context) ([]*typesv1.InstanceType, error)
	// DaemonSets returns the DaemonSets, whose pods every node runs, and
	// those that could not be converted (their overhead unknown).
	DaemonSets(ctx context.Context) ([]*typesv1.DaemonSet, []UnconvertedDaemonSet, error)
}

// Actuator carries out decisions.
type Actuator interface {
	// Replace creates the replacement NodeClaims of the solver's plan and
	// returns their names once all are Initialized, or an error (ctx
	// deadline) — then the candidates are NOT touched.
	Replace(ctx context.Context, claims []*typesv1.NodeClaim, reason string) ([]string, error)
	// Taint puts karpenter.sh/disrupted:NoSchedule on a node, so that no
	// new pod lands on it while it is replaced and drained; idempotent.
	Taint(ctx context.Context, node string) error
	// Untaint removes that taint, when the disruption is given up;
	// idempotent, and a node already gone is no error.
	Untaint(ctx context.Context, node string) error
	// Delete starts termination of a NodeClaim (sets deletionTimestamp; the
	// termination controller drains).
	Delete(ctx context.Context, nodeClaim string, reason string) error
	// Event records a Kubernetes event on obj (Normal or Warning) — every
	// decision and every blocked candidate.
	Event(obj runtime.Object, eventType, reason, message string)
}

// Solver proposes consolidation actions.
type Solver interface {
	// Consolidate proposes nodes to delete or replace.
	Consolidate(ctx context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error)
}

// Controller makes disruption passes.
type Controller struct {
	// Cluster reads the cluster state.
	Cluster Cluster
	// Actuator carries decisions out.
	Actuator Actuator
	// Solver proposes consolidation; nil disables underutilization
	// consolidation (empty nodes are still removed).
	Solver Solver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives decisions; nil means slog.Default().
	Log *slog.Logger
	// Metrics counts decisions; nil records nothing.
	Metrics *Metrics
	// ReplaceTimeout bounds how long a replacement may take to launch and
	// become Initialized; past it the replacement is rolled back and the
	// candidate kept. 0 means DefaultReplaceTimeout.
	ReplaceTimeout time.Duration

	mu sync.Mutex
	// noticed is, per NodeClaim, the last quiet block notice sent as an
	// event, so that a block that lasts is not announced every pass.
	noticed map[string]notice
}

// DefaultReplaceTimeout is how long a replacement may take to become
// Initialized: Karpenter's disruption queue gives a command at least 10
// minutes (pkg/controllers/disruption/queue.go, minRetryDuration) before it
// rolls the command back.
const DefaultReplaceTimeout = 10 * time.Minute

// Disruption reasons, as reported and passed to the Actuator. Expired is not
// a budget reason: expiration is forceful.
const (
	ReasonExpired       = "Expired"
	ReasonDrifted       = string(karpv1.DisruptionReasonDrifted)
	ReasonEmpty         = string(karpv1.DisruptionReasonEmpty)
	ReasonUnderutilized = string(karpv1.DisruptionReasonUnderutilized)
)

// Actions of a Decision.
const (
	ActionDelete  = "Delete"
	ActionReplace = "Replace"
)

// Event reasons the controller records.
const (
	EventDisrupting          = "DisruptionTerminating"
	EventReplacing           = "DisruptionLaunching"
	EventBlocked             = "DisruptionBlocked"
	EventReplaceFailed       = "DisruptionReplaceFailed"
	EventDeleteFailed        = "DisruptionDeleteFailed"
	EventTaintFailed         = "DisruptionTaintFailed"
	EventBudgetMisconfigured = "DisruptionBudgetInvalid"
)

// Decision is one node the pass disrupts.
type Decision struct {
	// NodeClaim is the claim disrupted.
	NodeClaim string
	// Node is its node, if registered.
	Node string
	// NodePool is its NodePool.
	NodePool string
	// Reason is Expired, Drifted, Empty or Underutilized.
	Reason string
	// Action is Delete or Replace.
	Action string
	// Replacements are the NodeClaims launched in its place, for Replace.
	Replacements []string
	// Message explains the decision.
	Message string
	// SavingsPerHour is the consolidation saving of the action the node
	// belongs to, in US dollars per hour.
	SavingsPerHour float64
}

// Blocked is a candidate left alone, and why.
type Blocked struct {
	// NodeClaim is the claim left alone.
	NodeClaim string
	// Node is its node, if registered.
	Node string
	// NodePool is its NodePool, possibly missing.
	NodePool string
	// Reason is a short code: DoNotDisrupt, PodDisruptionBudget,
	// NotInitialized, Deleting, NodePoolMissing, Budget, ReplaceFailed,
	// DeleteFailed, TaintFailed, Solver, Unpriced, InstanceTypesUnlisted or
	// DaemonSetUnconverted.
	Reason string
	// Message explains it in words.
	Message string
}

// Report is what one pass decided.
type Report struct {
	// Time is when the pass ran.
	Time time.Time
	// Decisions are the nodes disrupted, in order.
	Decisions []Decision
	// Blocked are the candidates left alone.
	Blocked []Blocked
}

// Blocked reasons.
const (
	BlockedDoNotDisrupt    = "DoNotDisrupt"
	BlockedPDB             = "PodDisruptionBudget"
	BlockedNotInitialized  = "NotInitialized"
	BlockedDeleting        = "Deleting"
	BlockedNodePoolMissing = "NodePoolMissing"
	BlockedBudget          = "Budget"
	BlockedReplaceFailed   = "ReplaceFailed"
	BlockedDeleteFailed    = "DeleteFailed"
	BlockedTaintFailed     = "TaintFailed"
	BlockedSolver          = "Solver"
	// BlockedUnpriced: no listed offering prices the node's instance
	// type, zone and capacity type.
	BlockedUnpriced = "Unpriced"
	// BlockedTypesUnlisted: the instance types of the node's EC2NodeClass
	// could not be listed, so its price is unknown.
	BlockedTypesUnlisted = "InstanceTypesUnlisted"
	// BlockedDaemonSetUnconverted: a DaemonSet could not be converted, so
	// the overhead of every node is unknown and consolidation would pack
	// too tight; it blocks consolidation in every NodePool.
	BlockedDaemonSetUnconverted = "DaemonSetUnconverted"
)
