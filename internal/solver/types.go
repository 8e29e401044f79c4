// Package solver plans where pending pods go: onto existing nodes, onto
// NodeClaims already in flight, or onto new NodeClaims it chooses from the
// NodePools and instance types it is given. It also plans simple
// consolidation. It is pure: no I/O, no clocks, no globals. The same input
// always yields the same plan.
//
// Every plan must be one the real kube-scheduler accepts, so the placement
// rules follow kube-scheduler's filters: resources, node selectors and
// affinity, taints and tolerations, inter-pod affinity and anti-affinity,
// topology spread, host ports and volume topology.
package solver

import "time"

// Well-known resource names. CPU is counted in millicores, memory and
// ephemeral storage in bytes, pods in pods; extended resources (for example
// "nvidia.com/gpu") in their own integer units.
const (
	ResourceCPU              = "cpu"
	ResourceMemory           = "memory"
	ResourcePods             = "pods"
	ResourceEphemeralStorage = "ephemeral-storage"
	// ResourceNodes counts nodes: only NodePool Limits and Usage carry it,
	// and every new NodeClaim adds 1 to it, as Karpenter counts
	// limits.nodes against status.resources.nodes.
	ResourceNodes = "nodes"
)

// Well-known labels the solver reads or writes.
const (
	LabelHostname     = "kubernetes.io/hostname"
	LabelZone         = "topology.kubernetes.io/zone"
	LabelInstanceType = "node.kubernetes.io/instance-type"
	LabelArch         = "kubernetes.io/arch"
	LabelOS           = "kubernetes.io/os"
	LabelCapacityType = "karpenter.sh/capacity-type"
	LabelNodePool     = "karpenter.sh/nodepool"

	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"

	// AnnotationDoNotDisrupt on a pod or node blocks voluntary disruption.
	AnnotationDoNotDisrupt = "karpenter.sh/do-not-disrupt"
)

// Resources maps a resource name to a non-negative integer amount in the
// units described above. A missing name means zero.
type Resources map[string]int64

// Operator is a node selector requirement operator.
type Operator string

// Node selector operators, as in Kubernetes' NodeSelectorRequirement.
const (
	OpIn           Operator = "In"
	OpNotIn        Operator = "NotIn"
	OpExists       Operator = "Exists"
	OpDoesNotExist Operator = "DoesNotExist"
	OpGt           Operator = "Gt"
	OpLt           Operator = "Lt"
	// OpGte and OpLte are Karpenter's (v1.10+) inclusive bounds, allowed in
	// NodePool requirements only: Kubernetes node selectors lack them.
	OpGte Operator = "Gte"
	OpLte Operator = "Lte"
)

// Requirement constrains a node label. Gt, Lt, Gte and Lte take exactly one
// integer value; Exists and DoesNotExist take none; In and NotIn take one or
// more.
// MinValues (NodePools only) asks for at least that many distinct values of
// Key among a NodeClaim's instance type options.
type Requirement struct {
	Key       string
	Operator  Operator
	Values    []string
	MinValues int
}

// NodeSelectorTerm is a list of requirements that must all hold (ANDed).
type NodeSelectorTerm struct {
	Requirements []Requirement
}

// PreferredSchedulingTerm is a weighted, optional node selector term.
type PreferredSchedulingTerm struct {
	Weight int32
	Term   NodeSelectorTerm
}

// TaintEffect is the effect of a taint.
type TaintEffect string

// Taint effects, as in Kubernetes.
const (
	EffectNoSchedule       TaintEffect = "NoSchedule"
	EffectPreferNoSchedule TaintEffect = "PreferNoSchedule"
	EffectNoExecute        TaintEffect = "NoExecute"
)

// Taint repels pods that do not tolerate it.
type Taint struct {
	Key    string
	Value  string
	Effect TaintEffect
}

// Toleration lets a pod tolerate matching taints. Operator is "Equal"
// (the default when empty) or "Exists"; an empty Key with Exists tolerates
// everything; an empty Effect matches every effect.
type Toleration struct {
	Key      string
	Operator string
	Value    string
	Effect   TaintEffect
}

// LabelSelectorRequirement is one expression of a label selector; Operator
// is In, NotIn, Exists or DoesNotExist.
type LabelSelectorRequirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// LabelSelector selects objects by labels. A nil *LabelSelector selects
// nothing; a non-nil empty one selects everything.
type LabelSelector struct {
	MatchLabels      map[string]string
	MatchExpressions []LabelSelectorRequirement
}

// PodAffinityTerm names the pods (by labels and namespaces) a pod wants to
// be with, or away from, within one topology domain.
type PodAffinityTerm struct {
	// LabelSelector selects the other pods; nil selects none.
	LabelSelector *LabelSelector
	// Namespaces lists namespaces the selector applies to. When both it
	// and NamespaceSelector are empty, the pod's own namespace is meant.
	Namespaces []string
	// NamespaceSelector selects namespaces by their labels (see
	// Problem.Namespaces); an empty non-nil selector means all namespaces.
	NamespaceSelector *LabelSelector
	// TopologyKey is the node label whose value defines a domain.
	TopologyKey string
	// MatchLabelKeys are pod label keys whose values (from the incoming
	// pod) are added to LabelSelector as In requirements.
	MatchLabelKeys []string
	// MismatchLabelKeys are pod label keys whose values are added to
	// LabelSelector as NotIn requirements.
	MismatchLabelKeys []string
}

// WeightedPodAffinityTerm is an optional pod (anti-)affinity term.
type WeightedPodAffinityTerm struct {
	Weight int32
	Term   PodAffinityTerm
}

// PodAffinity holds required and preferred pod affinity terms (or
// anti-affinity terms, where used as such).
type PodAffinity struct {
	Required  []PodAffinityTerm
	Preferred []WeightedPodAffinityTerm
}

// UnsatisfiableAction says what happens when a spread cannot be met.
type UnsatisfiableAction string

// Values of TopologySpreadConstraint.WhenUnsatisfiable.
const (
	DoNotSchedule  UnsatisfiableAction = "DoNotSchedule"
	ScheduleAnyway UnsatisfiableAction = "ScheduleAnyway"
)

// InclusionPolicy is a topology spread node inclusion policy.
type InclusionPolicy string

// Values of NodeAffinityPolicy and NodeTaintsPolicy.
const (
	PolicyHonor  InclusionPolicy = "Honor"
	PolicyIgnore InclusionPolicy = "Ignore"
)

// TopologySpreadConstraint spreads matching pods across topology domains,
// with kube-scheduler's semantics. NodeAffinityPolicy defaults to Honor and
// NodeTaintsPolicy to Ignore when empty; MinDomains 0 means 1.
type TopologySpreadConstraint struct {
	MaxSkew            int32
	TopologyKey        string
	WhenUnsatisfiable  UnsatisfiableAction
	LabelSelector      *LabelSelector
	MinDomains         int32
	NodeAffinityPolicy InclusionPolicy
	NodeTaintsPolicy   InclusionPolicy
	MatchLabelKeys     []string
}

// HostPort is a container port bound on the node. Two pods conflict when
// port and protocol are equal and their host IPs overlap (an empty IP or
// 0.0.0.0 overlaps every IP).
type HostPort struct {
	Port     int32
	Protocol string
	HostIP   string
}

// VolumeTopology is the node topology one of a pod's volumes allows: the
// node affinity of a bound zonal PersistentVolume, or a StorageClass's
// allowed topologies for a volume not yet provisioned. Terms are ORed; an
// empty list allows every node.
type VolumeTopology struct {
	Name  string
	Terms []NodeSelectorTerm
}

// Pod is a pod to place, or one already bound to a node.
type Pod struct {
	Namespace   string
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Owner identifies the controller that made the pod (for example
	// "ReplicaSet/default/web-5d8f"); pods with the same owner and spec are
	// placed as one class.
	Owner string
	// DaemonSet is true for pods a DaemonSet made; they move with their
	// node and are never consolidated onto another.
	DaemonSet bool
	// Requests are the pod's effective requests as kube-scheduler computes
	// them (see EffectiveRequests); "pods" is implied as 1.
	Requests Resources
	// NodeSelector labels must all be present on the node.
	NodeSelector map[string]string
	// RequiredNodeAffinity terms are ORed; empty means no constraint.
	RequiredNodeAffinity []NodeSelectorTerm
	// PreferredNodeAffinity terms are honoured when possible.
	PreferredNodeAffinity []PreferredSchedulingTerm
	Tolerations           []Toleration
	PodAffinity           PodAffinity
	PodAntiAffinity       PodAffinity
	TopologySpread        []TopologySpreadConstraint
	HostPorts             []HostPort
	Volumes               []VolumeTopology
	Priority              int32
}

// Offering is one way to buy an instance type: a zone and a capacity type
// at a price per hour. Unavailable offerings (for example after an
// insufficient-capacity error) are never chosen.
type Offering struct {
	Zone         string
	CapacityType string
	PricePerHour float64
	Available    bool
}

// InstanceType is a node shape the cloud provider can launch.
type InstanceType struct {
	Name string
	// Capacity is the machine's full capacity; Allocatable is what pods
	// may use after reserved resources and eviction thresholds.
	Capacity    Resources
	Allocatable Resources
	// Labels are the type's well-known labels (arch, os, family, size,
	// GPU name and count, ...), without zone and capacity type, which come
	// from the offering.
	Labels    map[string]string
	Offerings []Offering
}

// NodePool is a template for new nodes, as in karpenter.sh/v1.
type NodePool struct {
	Name          string
	Weight        int32
	Labels        map[string]string
	Annotations   map[string]string
	Taints        []Taint
	StartupTaints []Taint
	Requirements  []Requirement
	// Limits caps the total capacity of the NodePool's nodes; a resource
	// missing from Limits is unlimited. A nil map means no limits.
	// Limits[ResourceNodes] caps the number of nodes.
	Limits Resources
	// Usage is the capacity the NodePool's nodes already have;
	// Usage[ResourceNodes] is how many nodes (and NodeClaims) it has.
	Usage Resources
}

// Node is a node that exists, with the pods bound to it (DaemonSet pods
// included).
type Node struct {
	Name        string
	NodePool    string // empty when no NodePool manages the node
	Labels      map[string]string
	Annotations map[string]string
	Taints      []Taint
	Allocatable Resources
	Pods        []*Pod
	// Unschedulable is true for a cordoned node: no new pods go there.
	Unschedulable bool
	// InstanceType, Zone, CapacityType and PricePerHour describe what the
	// node costs; consolidation uses them.
	InstanceType string
	Zone         string
	CapacityType string
	PricePerHour float64
}

// NodeClaim is a node that was requested but has not registered yet. The
// solver places pods on it as if it existed, using its instance type's
// allocatable resources less DaemonSet overhead.
type NodeClaim struct {
	Name         string
	NodePool     string
	InstanceType string
	Zone         string
	CapacityType string
	PricePerHour float64
	Labels       map[string]string
	Taints       []Taint
	Allocatable  Resources
	Pods         []*Pod // pods already nominated to it
}

// DaemonSet runs a copy of Template on every node whose labels and taints
// its pod accepts.
type DaemonSet struct {
	Namespace string
	Name      string
	Template  Pod
}

// Options tune a solve.
type Options struct {
	// IgnorePreferences skips preferred node affinity, preferred pod
	// (anti-)affinity, ScheduleAnyway spread and PreferNoSchedule taints.
	IgnorePreferences bool
	// MaxInstanceTypeOptions caps how many instance types a new NodeClaim
	// lists (cheapest first); 0 means 60.
	MaxInstanceTypeOptions int
	// ImproveBudget is a wall-clock cap on a solve's improvement (further
	// placement strategies, repacking, the pattern strategy from
	// PatternMinBudget on; see improve.go), counted from the start of the
	// solve: 0 means no cap (the effort is then counted in work alone), a
	// negative value runs the first strategy only. The first strategy
	// always runs to its end.
	ImproveBudget time.Duration
	// ImproveRounds, when positive, is the number of strategies to run
	// (at most all of them); 0 means DefaultImproveRounds, or as many as
	// fit within a positive ImproveBudget. Without a time cap the plan
	// does not depend on the machine's speed.
	ImproveRounds int
	// MinSpotInstanceTypes is the spot diversity rule: a new NodeClaim is
	// opened on a spot offering only when at least that many instance
	// types could take the pod at that zone as spot, so CreateFleet can
	// pick among them (Karpenter uses 15). Spot is used anyway when no
	// other capacity type is allowed. 0 means DefaultMinSpotInstanceTypes;
	// a negative value turns the rule off.
	MinSpotInstanceTypes int
}

// DefaultMinSpotInstanceTypes is the spot diversity rule's default.
const DefaultMinSpotInstanceTypes = 15

// Problem is the whole input of a solve.
type Problem struct {
	Pods          []*Pod
	NodePools     []NodePool
	InstanceTypes []InstanceType
	Nodes         []Node
	NodeClaims    []NodeClaim
	DaemonSets    []DaemonSet
	// Namespaces maps a namespace name to its labels, for namespace
	// selectors in pod affinity terms.
	Namespaces map[string]map[string]string
	Options    Options
	// PodDisruptionBudgets limit, for Consolidate, how many of the pods
	// they select all actions together may evict.
	PodDisruptionBudgets []PodDisruptionBudget
	// DisruptionAllowance caps, for Consolidate, how many nodes of each
	// NodePool (by name) all actions together may remove, as the caller's
	// disruption budgets allow now. A NodePool missing from the map is not
	// capped; a nil map caps none.
	DisruptionAllowance map[string]int
}

// PodDisruptionBudget is a policy/v1 PodDisruptionBudget as consolidation
// needs it: the pods it selects and how many of them may be evicted now
// (its status.disruptionsAllowed).
type PodDisruptionBudget struct {
	Namespace string
	Name      string
	// Selector selects pods of Namespace; nil selects none, an empty one
	// every pod of the namespace (as policy/v1).
	Selector           *LabelSelector
	DisruptionsAllowed int
}

// PodRef names a pod.
type PodRef struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Ref returns the pod's reference.
func (p *Pod) Ref() PodRef { return PodRef{Namespace: p.Namespace, Name: p.Name} }

// PlannedNodeClaim is a new node the plan launches.
type PlannedNodeClaim struct {
	NodePool string
	// Requirements are the NodePool's requirements narrowed by the pods:
	// they always pin the zone and capacity type of the offering and list
	// the instance type options.
	Requirements  []Requirement
	Labels        map[string]string
	Taints        []Taint
	StartupTaints []Taint
	// InstanceTypeOptions are every instance type that fits all Pods plus
	// DaemonSet overhead and meets Requirements, cheapest first.
	InstanceTypeOptions []string
	// InstanceType, Zone, CapacityType and PricePerHour are the offering
	// the plan would launch: the cheapest compatible one.
	InstanceType string
	Zone         string
	CapacityType string
	PricePerHour float64
	Pods         []PodRef
	// Requests are the total requests of Pods plus DaemonSet overhead.
	Requests Resources
}

// UnschedulablePod is a pod the plan could not place, with the reason.
type UnschedulablePod struct {
	Pod    PodRef
	Reason string
	// NodePools says, for every NodePool in weight order, which constraint
	// ruled it out: an untolerated taint, requirements no offering meets,
	// the resources that rule out each instance family, limits, or the
	// placement rule that failed (see explain.go).
	NodePools []NodePoolReason
}

// Plan is the result of a solve.
type Plan struct {
	NodeClaims []PlannedNodeClaim
	// ExistingBindings maps an existing node or in-flight NodeClaim name
	// to the pending pods placed on it.
	ExistingBindings map[string][]PodRef
	Unschedulable    []UnschedulablePod
	// CostPerHour is the price of the new NodeClaims.
	CostPerHour float64
	// LowerBoundPerHour is a proven lower bound on CostPerHour for every
	// valid plan that places the pods this plan places (see bound.go).
	LowerBoundPerHour float64
}

// ConsolidationAction is one change consolidation proposes.
type ConsolidationAction struct {
	// Kind is "Delete" (the nodes go, their pods fit elsewhere) or
	// "Replace" (the nodes go and Replacement takes their pods).
	Kind  string
	Nodes []string
	// Replacement is the NodeClaim launched first, for Replace.
	Replacement *PlannedNodeClaim
	// Bindings maps each moved pod to the node it moves to.
	Bindings map[PodRef]string
	// SavingsPerHour is the cost removed minus the cost added.
	SavingsPerHour float64
	Reason         string
}

// BlockedCandidate is a node consolidation considered and left alone.
type BlockedCandidate struct {
	Node   string
	Reason string
	// Kind classifies Reason: one of the Blocked* constants.
	Kind string
}

// Kinds of BlockedCandidate.
const (
	// BlockedUnmanaged: the node has no NodePool.
	BlockedUnmanaged = "Unmanaged"
	// BlockedDoNotDisrupt: karpenter.sh/do-not-disrupt on the node or a pod.
	BlockedDoNotDisrupt = "DoNotDisrupt"
	// BlockedPDB: a PodDisruptionBudget allows too few evictions.
	BlockedPDB = "PDB"
	// BlockedBudget: the NodePool's disruption allowance is used up.
	BlockedBudget = "Budget"
	// BlockedPodAffinity: pods take part in hostname pod affinity or
	// instance type topology and are not moved.
	BlockedPodAffinity = "PodAffinity"
	// BlockedNoCheaperFit: the pods fit neither elsewhere nor on a
	// cheaper replacement.
	BlockedNoCheaperFit = "NoCheaperFit"
)

// ConsolidationPlan is the result of Consolidate.
type ConsolidationPlan struct {
	Actions []ConsolidationAction
	Blocked []BlockedCandidate
	// CurrentCostPerHour is what the candidates (nodes with a NodePool)
	// cost now; NewCostPerHour what the kept ones and the replacements
	// cost after every action; SavingsPerHour is the difference, the sum
	// of the actions' savings.
	CurrentCostPerHour float64
	NewCostPerHour     float64
	SavingsPerHour     float64
}
