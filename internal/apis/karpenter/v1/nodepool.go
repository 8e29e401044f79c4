package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePool is a template for the nodes Karpenter launches in response to
// unschedulable pods, and the policy for disrupting them. NodePools are
// cluster-scoped.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=nodepools,scope=Cluster,categories=karpenter,shortName={np,nps}
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.nodes
// +kubebuilder:printcolumn:name="NodeClass",type="string",JSONPath=".spec.template.spec.nodeClassRef.name",description="NodeClass of the NodePool's nodes"
// +kubebuilder:printcolumn:name="Nodes",type="string",JSONPath=".status.resources.nodes",description="Nodes the NodePool provisioned"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Readiness of the NodePool"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Weight",type="integer",JSONPath=".spec.weight",priority=1,description="Scheduling priority"
// +kubebuilder:printcolumn:name="CPU",type="string",JSONPath=".status.resources.cpu",priority=1,description="CPU the NodePool provisioned"
// +kubebuilder:printcolumn:name="Memory",type="string",JSONPath=".status.resources.memory",priority=1,description="Memory the NodePool provisioned"
type NodePool struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata; only the name matters to
	// planning.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the NodePool.
	// +required
	Spec NodePoolSpec `json:"spec"`
	// Status is the observed state of the NodePool.
	// +optional
	Status NodePoolStatus `json:"status,omitempty"`
}

// NodePoolList is a list of NodePools.
//
// +kubebuilder:object:root=true
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
//
// +kubebuilder:validation:XValidation:message="Cannot transition NodePool between static (replicas set) and dynamic (replicas unset) provisioning modes",rule="has(self.replicas) == has(oldSelf.replicas)"
// +kubebuilder:validation:XValidation:message="only 'limits.nodes' is supported on static NodePools",rule="!has(self.replicas) || (!has(self.limits) || size(self.limits) == 0 || (size(self.limits) == 1 && 'nodes' in self.limits))"
// +kubebuilder:validation:XValidation:message="'weight' is not supported on static NodePools",rule="!has(self.replicas) || !has(self.weight)"
type NodePoolSpec struct {
	// Template describes the NodeClaims launched from this NodePool. The
	// NodeClaims are often further constrained than the template says.
	// +required
	Template NodeClaimTemplate `json:"template"`
	// Disruption holds the parameters of Karpenter's disruption logic for
	// the NodePool's nodes. Defaults to consolidateAfter 0s.
	// +kubebuilder:default:={consolidateAfter: "0s"}
	// +optional
	Disruption Disruption `json:"disruption"`
	// Limits bound the total capacity the NodePool may provision, by
	// resource name (for example cpu, memory, nvidia.com/gpu). A resource
	// not listed is unlimited.
	// +optional
	Limits Limits `json:"limits,omitempty"`
	// Weight is the priority of the NodePool during scheduling, 1 to 100: a
	// NodePool with a higher weight is tried before ones with lower weights.
	// A NodePool without a weight is treated as weight 0.
	// +kubebuilder:validation:Minimum:=1
	// +kubebuilder:validation:Maximum:=100
	// +optional
	Weight *int32 `json:"weight,omitempty"`
	// Replicas makes the NodePool static: it keeps this many nodes whatever
	// the pods need (Karpenter's alpha static capacity; consolidation
	// settings, limits other than nodes, and weight do not apply). Flotilla
	// accepts the field but does not provision static NodePools yet: such a
	// NodePool is not Ready and launches nothing, and its
	// ValidationSucceeded condition says why.
	// +kubebuilder:validation:Minimum:=0
	// +optional
	Replicas *int64 `json:"replicas,omitempty"`
}

// Limits caps a NodePool's total capacity per resource name, as Kubernetes
// quantities.
type Limits corev1.ResourceList

// NodeClaimTemplate is the template of the NodeClaims a NodePool launches.
type NodeClaimTemplate struct {
	// ObjectMeta carries the labels and annotations put on every NodeClaim
	// and node launched from the template.
	// +optional
	ObjectMeta ObjectMeta `json:"metadata,omitempty"`
	// Spec is the NodeClaim spec without resource requests, which users
	// cannot set in a NodePool.
	// +required
	Spec NodeClaimTemplateSpec `json:"spec"`
}

// ObjectMeta is the subset of object metadata a NodeClaim template may set.
type ObjectMeta struct {
	// Labels are string keys and values that organise and categorise
	// (scope and select) objects; they are applied to the node. Keys in
	// the kubernetes.io, k8s.io, karpenter.sh and karpenter.k8s.aws domains
	// are reserved, except for the well-known labels a user may set. Values
	// are label values (checked by the schema, see
	// internal/apis/internal/crdpatch).
	// +kubebuilder:validation:MaxProperties:=100
	// +kubebuilder:validation:XValidation:message="label keys must be qualified names (an optional DNS subdomain prefix and '/', then a name of at most 63 characters)",rule="self.all(x, x.size() <= 316 && x.matches('^(([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*)/)?(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])$'))"
	// +kubebuilder:validation:XValidation:message="label domain \"kubernetes.io\" is restricted",rule="self.all(x, x in ['beta.kubernetes.io/instance-type', 'failure-domain.beta.kubernetes.io/region', 'beta.kubernetes.io/os', 'beta.kubernetes.io/arch', 'failure-domain.beta.kubernetes.io/zone', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region', 'kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/windows-build'] || x.find('^([^/]+)').endsWith('node.kubernetes.io') || x.find('^([^/]+)').endsWith('node-restriction.kubernetes.io') || !x.find('^([^/]+)').endsWith('kubernetes.io'))"
	// +kubebuilder:validation:XValidation:message="label domain \"k8s.io\" is restricted",rule="self.all(x, x.find('^([^/]+)').endsWith('kops.k8s.io') || !x.find('^([^/]+)').endsWith('k8s.io'))"
	// +kubebuilder:validation:XValidation:message="label domain \"karpenter.sh\" is restricted",rule="self.all(x, x in ['karpenter.sh/capacity-type', 'karpenter.sh/nodepool'] || !x.find('^([^/]+)').endsWith('karpenter.sh'))"
	// +kubebuilder:validation:XValidation:message="label \"karpenter.sh/nodepool\" is restricted",rule="self.all(x, x != 'karpenter.sh/nodepool')"
	// +kubebuilder:validation:XValidation:message="label \"kubernetes.io/hostname\" is restricted",rule="self.all(x, x != 'kubernetes.io/hostname')"
	// +kubebuilder:validation:XValidation:message="label domain \"karpenter.k8s.aws\" is restricted",rule="self.all(x, x in ['karpenter.k8s.aws/instance-tenancy', 'karpenter.k8s.aws/capacity-reservation-type', 'karpenter.k8s.aws/capacity-reservation-id', 'karpenter.k8s.aws/capacity-reservation-interruptible', 'karpenter.k8s.aws/ec2nodeclass', 'karpenter.k8s.aws/instance-encryption-in-transit-supported', 'karpenter.k8s.aws/nitro-sandbox', 'karpenter.k8s.aws/instance-category', 'karpenter.k8s.aws/instance-hypervisor', 'karpenter.k8s.aws/instance-family', 'karpenter.k8s.aws/instance-generation', 'karpenter.k8s.aws/instance-local-nvme', 'karpenter.k8s.aws/instance-size', 'karpenter.k8s.aws/instance-cpu', 'karpenter.k8s.aws/instance-cpu-manufacturer', 'karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz', 'karpenter.k8s.aws/instance-memory', 'karpenter.k8s.aws/instance-ebs-bandwidth', 'karpenter.k8s.aws/instance-network-bandwidth', 'karpenter.k8s.aws/instance-gpu-name', 'karpenter.k8s.aws/instance-gpu-manufacturer', 'karpenter.k8s.aws/instance-gpu-count', 'karpenter.k8s.aws/instance-gpu-memory', 'karpenter.k8s.aws/instance-accelerator-name', 'karpenter.k8s.aws/instance-accelerator-manufacturer', 'karpenter.k8s.aws/instance-accelerator-count', 'karpenter.k8s.aws/instance-capability-flex', 'karpenter.k8s.aws/placement-group-id', 'karpenter.k8s.aws/placement-group-partition'] || !x.find('^([^/]+)').endsWith('karpenter.k8s.aws'))"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are unstructured key-value data set by external tools to
	// store and retrieve arbitrary metadata; they are applied to the node.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NodeClaimTemplateSpec is the desired state of the NodeClaims in a
// NodePool: a NodeClaimSpec without resource requests.
type NodeClaimTemplateSpec struct {
	// Taints are applied to the NodeClaim's node.
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`
	// StartupTaints are applied to nodes at startup and are expected to be
	// removed automatically within a short time, typically by a DaemonSet
	// that tolerates them; they are used for initialisation and to enforce
	// startup ordering. Pods need not tolerate startup taints for Karpenter
	// to provision nodes for them.
	// +optional
	StartupTaints []corev1.Taint `json:"startupTaints,omitempty"`
	// Requirements are layered with the template labels and applied to
	// every node. At most 100.
	// +kubebuilder:validation:MaxItems:=100
	// +kubebuilder:validation:XValidation:message="label \"karpenter.sh/nodepool\" is restricted",rule="self.all(x, x.key != 'karpenter.sh/nodepool')"
	// +required
	Requirements []NodeSelectorRequirementWithMinValues `json:"requirements"`
	// NodeClassRef refers to the object holding the cloud-provider specific
	// configuration, such as an EC2NodeClass.
	// +required
	NodeClassRef *NodeClassReference `json:"nodeClassRef"`
	// TerminationGracePeriod is the longest the controller waits before
	// forcefully deleting the pods on a node, measured from when the node's
	// deletion begins. It takes precedence over pods' own
	// terminationGracePeriodSeconds, PodDisruptionBudgets and the
	// karpenter.sh/do-not-disrupt annotation. Unset, the controller waits
	// indefinitely for pods to drain.
	// +kubebuilder:validation:Pattern=`^([0-9]+(s|m|h))+$`
	// +kubebuilder:validation:Type="string"
	// +optional
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`
	// ExpireAfter is how long after its creation a node is terminated, for
	// eventually consistent upgrades, memory-leak protection and disruption
	// testing: a duration such as "720h" (the default) or "Never".
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:Type="string"
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:default:="720h"
	// +optional
	ExpireAfter NillableDuration `json:"expireAfter,omitzero"`
}

// NodeSelectorRequirementWithMinValues is a node selector requirement (key,
// operator, values) with an optional minimum number of distinct values.
// Keys in the kubernetes.io, k8s.io, karpenter.sh and karpenter.k8s.aws
// domains are reserved, except for the well-known labels. The key's and
// values' format and length are checked by the schema (see
// internal/apis/internal/crdpatch).
//
// +kubebuilder:validation:XValidation:message="label domain \"kubernetes.io\" is restricted",rule="self.key in ['beta.kubernetes.io/instance-type', 'failure-domain.beta.kubernetes.io/region', 'beta.kubernetes.io/os', 'beta.kubernetes.io/arch', 'failure-domain.beta.kubernetes.io/zone', 'topology.kubernetes.io/zone', 'topology.kubernetes.io/region', 'node.kubernetes.io/instance-type', 'kubernetes.io/arch', 'kubernetes.io/os', 'node.kubernetes.io/windows-build'] || self.key.find('^([^/]+)').endsWith('node.kubernetes.io') || self.key.find('^([^/]+)').endsWith('node-restriction.kubernetes.io') || !self.key.find('^([^/]+)').endsWith('kubernetes.io')"
// +kubebuilder:validation:XValidation:message="label domain \"k8s.io\" is restricted",rule="self.key.find('^([^/]+)').endsWith('kops.k8s.io') || !self.key.find('^([^/]+)').endsWith('k8s.io')"
// +kubebuilder:validation:XValidation:message="label domain \"karpenter.sh\" is restricted",rule="self.key in ['karpenter.sh/capacity-type', 'karpenter.sh/nodepool'] || !self.key.find('^([^/]+)').endsWith('karpenter.sh')"
// +kubebuilder:validation:XValidation:message="label \"kubernetes.io/hostname\" is restricted",rule="self.key != 'kubernetes.io/hostname'"
// +kubebuilder:validation:XValidation:message="label domain \"karpenter.k8s.aws\" is restricted",rule="self.key in ['karpenter.k8s.aws/instance-tenancy', 'karpenter.k8s.aws/capacity-reservation-type', 'karpenter.k8s.aws/capacity-reservation-id', 'karpenter.k8s.aws/capacity-reservation-interruptible', 'karpenter.k8s.aws/ec2nodeclass', 'karpenter.k8s.aws/instance-encryption-in-transit-supported', 'karpenter.k8s.aws/nitro-sandbox', 'karpenter.k8s.aws/instance-category', 'karpenter.k8s.aws/instance-hypervisor', 'karpenter.k8s.aws/instance-family', 'karpenter.k8s.aws/instance-generation', 'karpenter.k8s.aws/instance-local-nvme', 'karpenter.k8s.aws/instance-size', 'karpenter.k8s.aws/instance-cpu', 'karpenter.k8s.aws/instance-cpu-manufacturer', 'karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz', 'karpenter.k8s.aws/instance-memory', 'karpenter.k8s.aws/instance-ebs-bandwidth', 'karpenter.k8s.aws/instance-network-bandwidth', 'karpenter.k8s.aws/instance-gpu-name', 'karpenter.k8s.aws/instance-gpu-manufacturer', 'karpenter.k8s.aws/instance-gpu-count', 'karpenter.k8s.aws/instance-gpu-memory', 'karpenter.k8s.aws/instance-accelerator-name', 'karpenter.k8s.aws/instance-accelerator-manufacturer', 'karpenter.k8s.aws/instance-accelerator-count', 'karpenter.k8s.aws/instance-capability-flex', 'karpenter.k8s.aws/placement-group-id', 'karpenter.k8s.aws/placement-group-partition'] || !self.key.find('^([^/]+)').endsWith('karpenter.k8s.aws')"
// +kubebuilder:validation:XValidation:message="operator must be one of In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte, Lte",rule="self.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt', 'Gte', 'Lte']"
// +kubebuilder:validation:XValidation:message="requirements with operator 'In' must have a value defined",rule="self.operator == 'In' ? (has(self.values) && self.values.size() != 0) : true"
// +kubebuilder:validation:XValidation:message="requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",rule="(self.operator in ['Gt', 'Lt', 'Gte', 'Lte']) ? (has(self.values) && self.values.size() == 1 && self.values[0].matches('^[0-9]+$')) : true"
// +kubebuilder:validation:XValidation:message="requirements with 'minValues' must have at least that many values specified in the 'values' field",rule="(self.operator == 'In' && has(self.minValues)) ? self.values.size() >= self.minValues : true"
type NodeSelectorRequirementWithMinValues struct {
	// NodeSelectorRequirement is the key, operator (In, NotIn, Exists,
	// DoesNotExist, Gt, Lt, and since Karpenter v1.10 Gte and Lte) and
	// values. Gt, Lt, Gte and Lte take one non-negative integer; Gte and
	// Lte bounds are inclusive.
	corev1.NodeSelectorRequirement `json:",inline"`
	// MinValues is the minimum number of distinct values of the key that
	// the instance types of a NodeClaim must offer, 1 to 50. Alpha in
	// Karpenter.
	// +kubebuilder:validation:Minimum:=1
	// +kubebuilder:validation:Maximum:=50
	// +optional
	MinValues *int `json:"minValues,omitempty"`
}

// NodeClassReference refers to a cloud-provider NodeClass object.
type NodeClassReference struct {
	// Kind of the referent, such as EC2NodeClass.
	// +kubebuilder:validation:XValidation:message="kind may not be empty",rule="self != ''"
	// +required
	Kind string `json:"kind"`
	// Name of the referent.
	// +kubebuilder:validation:XValidation:message="name may not be empty",rule="self != ''"
	// +required
	Name string `json:"name"`
	// Group is the API group of the referent, such as karpenter.k8s.aws;
	// it contains no slash.
	// +kubebuilder:validation:XValidation:message="group may not be empty",rule="self != ''"
	// +kubebuilder:validation:Pattern=`^[^/]*$`
	// +required
	Group string `json:"group"`
}

// Disruption holds the parameters of Karpenter's disruption logic.
type Disruption struct {
	// ConsolidateAfter is how long the controller waits after a pod is
	// added to or removed from a node before it considers consolidating the
	// node: a duration such as "30s", or "Never". See ConsolidationPolicy for
	// which nodes are considered.
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:Type="string"
	// +kubebuilder:validation:Schemaless
	// +required
	ConsolidateAfter NillableDuration `json:"consolidateAfter"`
	// ConsolidationPolicy says which nodes Karpenter may disrupt through
	// consolidation: WhenEmpty, WhenEmptyOrUnderutilized (the default) or
	// Balanced.
	// +kubebuilder:default:="WhenEmptyOrUnderutilized"
	// +kubebuilder:validation:Enum:={WhenEmpty,WhenEmptyOrUnderutilized,Balanced}
	// +optional
	ConsolidationPolicy ConsolidationPolicy `json:"consolidationPolicy,omitempty"`
	// Budgets limit how many of the NodePool's nodes may be disrupted at
	// once; when several are active the most restrictive applies. Unset, a
	// single budget of nodes "10%" applies. At most 50.
	// +kubebuilder:validation:XValidation:message="'schedule' must be set with 'duration'",rule="self.all(x, has(x.schedule) == has(x.duration))"
	// +kubebuilder:default:={{nodes: "10%"}}
	// +kubebuilder:validation:MaxItems:=50
	// +optional
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
	// ConsolidationPolicyBalanced is Karpenter's policy that consolidates
	// an underutilized node only when the savings justify the disruption.
	// Flotilla does not weigh that yet and consolidates such a NodePool's
	// nodes only when they are empty (never more than the user allowed);
	// the NodePool's FieldsHonored condition says so.
	ConsolidationPolicyBalanced ConsolidationPolicy = "Balanced"
)

// ConsolidatesUnderutilized reports whether the policy lets consolidation
// replace or delete nodes that still run pods: the default
// WhenEmptyOrUnderutilized only (see ConsolidationPolicyBalanced).
func (p ConsolidationPolicy) ConsolidatesUnderutilized() bool {
	return p == "" || p == ConsolidationPolicyWhenEmptyOrUnderutilized
}

// DisruptionReason names a disruption method a budget applies to.
// +kubebuilder:validation:Enum:={Underutilized,Empty,Drifted}
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
	// +kubebuilder:validation:MaxItems:=3
	// +optional
	Reasons []DisruptionReason `json:"reasons,omitempty"`
	// Nodes is the most NodeClaims of the NodePool that may be terminating
	// at once, as a count ("5") or a percentage of the NodePool's nodes
	// ("10%", rounded up). Nodes with a deletion timestamp, or being deleted
	// by Karpenter, count. Defaults to "10%".
	// +kubebuilder:validation:Pattern:="^((100|[0-9]{1,2})%|[0-9]+)$"
	// +kubebuilder:default:="10%"
	Nodes string `json:"nodes"`
	// Schedule is when the budget becomes active, in cron syntax (UTC, no
	// time zones), or a macro such as @daily. Unset, the budget is always
	// active. Required when Duration is set.
	// +kubebuilder:validation:Pattern:=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$`
	// +optional
	Schedule *string `json:"schedule,omitempty"`
	// Duration is how long the budget stays active after each Schedule hit,
	// in hours and minutes (for example "8h" or "1h30m"). Required when
	// Schedule is set.
	// +kubebuilder:validation:Pattern=`^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$`
	// +kubebuilder:validation:Type="string"
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// NodePoolStatus is the observed state of a NodePool.
type NodePoolStatus struct {
	// Resources is the total capacity the NodePool has provisioned.
	// +optional
	Resources corev1.ResourceList `json:"resources,omitempty"`
	// Nodes is the number of nodes that belong to the NodePool (the scale
	// subresource's status replicas).
	// +optional
	Nodes *int64 `json:"nodes,omitempty"`
	// NodeClassObservedGeneration is the generation of the NodePool's
	// EC2NodeClass that the status was computed from.
	// +optional
	NodeClassObservedGeneration int64 `json:"nodeClassObservedGeneration,omitempty"`
	// Conditions signal the NodePool's health and readiness, such as
	// ValidationSucceeded, NodeClassReady and NodeRegistrationHealthy.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
