package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePool is a template for the nodes Karpenter launches in response to
// unschedulable pods, and the policy for disrupting them. NodePools are
// cluster-scoped.
type NodePool struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata; only the name matters to
	// planning.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the NodePool.
	Spec NodePoolSpec `json:"spec"`
	// Status is the observed state of the NodePool.
	Status NodePoolStatus `json:"status,omitempty"`
}

// NodePoolList is a list of NodePools.
type NodePoolList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the NodePools.
	Items []NodePool `json:"items"`
}

// NodePoolSpec is the top-level NodePool specification. A NodePool launches
// nodes in response to pods that are unschedulable; one NodePool can manage
// a diverse set of nodes, whose properties come from the NodePool combined
// with the pods' scheduling constraints.
type NodePoolSpec struct {
	// Template describes the NodeClaims launched from this NodePool. The
	// NodeClaims are often further constrained than the template says.
	Template NodeClaimTemplate `json:"template"`
	// Disruption holds the parameters of Karpenter's disruption logic for
	// the NodePool's nodes. Defaults to consolidateAfter 0s.
	Disruption Disruption `json:"disruption"`
	// Limits bound the total capacity the NodePool may provision, by
	// resource name (for example cpu, memory, nvidia.com/gpu). A resource
	// not listed is unlimited.
	Limits Limits `json:"limits,omitempty"`
	// Weight is the priority of the NodePool during scheduling, 1 to 100: a
	// NodePool with a higher weight is tried before ones with lower weights.
	// A NodePool without a weight is treated as weight 0.
	Weight *int32 `json:"weight,omitempty"`
}

// Limits caps a NodePool's total capacity per resource name, as Kubernetes
// quantities.
type Limits corev1.ResourceList

// NodeClaimTemplate is the template of the NodeClaims a NodePool launches.
type NodeClaimTemplate struct {
	// ObjectMeta carries the labels and annotations put on every NodeClaim
	// and node launched from the template.
	ObjectMeta ObjectMeta `json:"metadata,omitempty"`
	// Spec is the NodeClaim spec without resource requests, which users
	// cannot set in a NodePool.
	Spec NodeClaimTemplateSpec `json:"spec"`
}

// ObjectMeta is the subset of object metadata a NodeClaim template may set.
type ObjectMeta struct {
	// Labels are string keys and values that organise and categorise
	// (scope and select) objects; they are applied to the node.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are unstructured key-value data set by external tools to
	// store and retrieve arbitrary metadata; they are applied to the node.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NodeClaimTemplateSpec is the desired state of the NodeClaims in a
// NodePool: a NodeClaimSpec without resource requests.
type NodeClaimTemplateSpec struct {
	// Taints are applied to the NodeClaim's node.
	Taints []corev1.Taint `json:"taints,omitempty"`
	// StartupTaints are applied to nodes at startup and are expected to be
	// removed automatically within a short time, typically by a DaemonSet
	// that tolerates them; they are used for initialisation and to enforce
	// startup ordering. Pods need not tolerate startup taints for Karpenter
	// to provision nodes for them.
	StartupTaints []corev1.Taint `json:"startupTaints,omitempty"`
	// Requirements are layered with the template labels and applied to
	// every node. At most 100.
	Requirements []NodeSelectorRequirementWithMinValues `json:"requirements"`
	// NodeClassRef refers to the object holding the cloud-provider specific
	// configuration, such as an EC2NodeClass.
	NodeClassRef *NodeClassReference `json:"nodeClassRef"`
	// TerminationGracePeriod is the longest the controller waits before
	// forcefully deleting the pods on a node, measured from when the node's
	// deletion begins. It takes precedence over pods' own
	// terminationGracePeriodSeconds, PodDisruptionBudgets and the
	// karpenter.sh/do-not-disrupt annotation. Unset, the controller waits
	// indefinitely for pods to drain.
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`
	// ExpireAfter is how long after its creation a node is terminated, for
	// eventually consistent upgrades, memory-leak protection and disruption
	// testing: a duration such as "720h" (the default) or "Never".
	ExpireAfter NillableDuration `json:"expireAfter,omitzero"`
}

// NodeSelectorRequirementWithMinValues is a node selector requirement (key,
// operator, values) with an optional minimum number of distinct values.
type NodeSelectorRequirementWithMinValues struct {
	// NodeSelectorRequirement is the key, operator (In, NotIn, Exists,
	// DoesNotExist, Gt, Lt) and values.
	corev1.NodeSelectorRequirement `json:",inline"`
	// MinValues is the minimum number of distinct values of the key that
	// the instance types of a NodeClaim must offer, 1 to 50. Alpha in
	// Karpenter.
	MinValues *int `json:"minValues,omitempty"`
}

// NodeClassReference refers to a cloud-provider NodeClass object.
type NodeClassReference struct {
	// Kind of the referent, such as EC2NodeClass.
	Kind string `json:"kind"`
	// Name of the referent.
	Name string `json:"name"`
	// Group is the API group of the referent, such as karpenter.k8s.aws;
	// it contains no slash.
	Group string `json:"group"`
}

// Disruption holds the parameters of Karpenter's disruption logic.
type Disruption struct {
	// ConsolidateAfter is how long the controller waits after a pod is
	// added to or removed from a node before it considers consolidating the
	// node: a duration such as "30s", or "Never". See ConsolidationPolicy for
	// which nodes are considered.
	ConsolidateAfter NillableDuration `json:"consolidateAfter"`
	// ConsolidationPolicy says which nodes Karpenter may disrupt through
	// consolidation: WhenEmpty or WhenEmptyOrUnderutilized (the default).
	ConsolidationPolicy ConsolidationPolicy `json:"consolidationPolicy,omitempty"`
	// Budgets limit how many of the NodePool's nodes may be disrupted at
	// once; when several are active the most restrictive applies. Unset, a
	// single budget of nodes "10%" applies. At most 50.
	Budgets []Budget `json:"budgets,omitempty"`
}

// ConsolidationPolicy says which nodes consolidation may disrupt.
type ConsolidationPolicy string

// Consolidation policies.
const (
	// ConsolidationPolicyWhenEmpty consolidates only nodes without pods
	// (DaemonSet pods aside).
	ConsolidationPolicyWhenEmpty ConsolidationPolicy = "WhenEmpty"
	// ConsolidationPolicyWhenEmptyOrUnderutilized also consolidates nodes
	// whose pods fit elsewhere or on a cheaper replacement.
	ConsolidationPolicyWhenEmptyOrUnderutilized ConsolidationPolicy = "WhenEmptyOrUnderutilized"
)

// DisruptionReason names a disruption method a budget applies to.
type DisruptionReason string

// Disruption reasons.
const (
	DisruptionReasonUnderutilized DisruptionReason = "Underutilized"
	DisruptionReasonEmpty         DisruptionReason = "Empty"
	DisruptionReasonDrifted       DisruptionReason = "Drifted"
)

// Budget restricts how many NodeClaims may be terminating at the same time,
// optionally only during a recurring window.
type Budget struct {
	// Reasons are the disruption methods the budget applies to
	// (Underutilized, Empty, Drifted); unset, it applies to all of them.
	Reasons []DisruptionReason `json:"reasons,omitempty"`
	// Nodes is the most NodeClaims of the NodePool that may be terminating
	// at once, as a count ("5") or a percentage of the NodePool's nodes
	// ("10%", rounded up). Nodes with a deletion timestamp, or being deleted
	// by Karpenter, count. Defaults to "10%".
	Nodes string `json:"nodes"`
	// Schedule is when the budget becomes active, in cron syntax (UTC, no
	// time zones), or a macro such as @daily. Unset, the budget is always
	// active. Required when Duration is set.
	Schedule *string `json:"schedule,omitempty"`
	// Duration is how long the budget stays active after each Schedule hit,
	// in hours and minutes (for example "8h" or "1h30m"). Required when
	// Schedule is set.
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// NodePoolStatus is the observed state of a NodePool.
type NodePoolStatus struct {
	// Resources is the total capacity the NodePool has provisioned.
	Resources corev1.ResourceList `json:"resources,omitempty"`
	// Nodes is the number of nodes that belong to the NodePool.
	Nodes *int64 `json:"nodes,omitempty"`
	// Conditions signal the NodePool's health and readiness, such as
	// ValidationSucceeded, NodeClassReady and NodeRegistrationHealthy.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
