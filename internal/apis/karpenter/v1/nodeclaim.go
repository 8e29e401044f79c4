package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeClaim is a request for one node: Karpenter launches a cloud instance
// for it and binds it to the node the instance registers as. NodeClaims are
// cluster-scoped and their spec is immutable.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=nodeclaims,scope=Cluster,categories=karpenter,shortName={nc,ncs}
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Type",type="string",JSONPath=".metadata.labels.node\\.kubernetes\\.io/instance-type",description="Instance type"
// +kubebuilder:printcolumn:name="Capacity",type="string",JSONPath=".metadata.labels.karpenter\\.sh/capacity-type",description="Capacity type: spot, on-demand or reserved"
// +kubebuilder:printcolumn:name="Zone",type="string",JSONPath=".metadata.labels.topology\\.kubernetes\\.io/zone",description="Availability zone"
// +kubebuilder:printcolumn:name="Node",type="string",JSONPath=".status.nodeName",description="Node the NodeClaim registered as"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description="Readiness of the NodeClaim"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="ImageID",type="string",JSONPath=".status.imageID",priority=1,description="Image the node runs"
// +kubebuilder:printcolumn:name="ID",type="string",JSONPath=".status.providerID",priority=1,description="Provider ID of the instance"
// +kubebuilder:printcolumn:name="NodePool",type="string",JSONPath=".metadata.labels.karpenter\\.sh/nodepool",priority=1,description="NodePool of the NodeClaim"
// +kubebuilder:printcolumn:name="NodeClass",type="string",JSONPath=".spec.nodeClassRef.name",priority=1,description="NodeClass of the NodeClaim"
type NodeClaim struct {
	metav1.TypeMeta `json:",inline"`
	// ObjectMeta is the standard object metadata; its labels include
	// karpenter.sh/nodepool, node.kubernetes.io/instance-type,
	// topology.kubernetes.io/zone and karpenter.sh/capacity-type once
	// launched.
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state of the NodeClaim; it is immutable.
	// +kubebuilder:validation:XValidation:message="spec is immutable",rule="self == oldSelf"
	// +required
	Spec NodeClaimSpec `json:"spec"`
	// Status is the observed state of the NodeClaim.
	// +optional
	Status NodeClaimStatus `json:"status,omitempty"`
}

// NodeClaimList is a list of NodeClaims.
//
// +kubebuilder:object:root=true
type NodeClaimList struct {
	metav1.TypeMeta `json:",inline"`
	// ListMeta is the standard list metadata.
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the NodeClaims.
	Items []NodeClaim `json:"items"`
}

// NodeClaimSpec is the desired state of a NodeClaim.
type NodeClaimSpec struct {
	// Taints are applied to the NodeClaim's node.
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`
	// StartupTaints are applied to the node at startup and are expected to
	// be removed automatically within a short time, typically by a
	// DaemonSet that tolerates them. Pods need not tolerate them for
	// Karpenter to provision nodes for them.
	// +optional
	StartupTaints []corev1.Taint `json:"startupTaints,omitempty"`
	// Requirements are layered with the labels and applied to the node. At
	// most 100.
	// +kubebuilder:validation:MaxItems:=100
	// +required
	Requirements []NodeSelectorRequirementWithMinValues `json:"requirements"`
	// Resources are the resources the NodeClaim must offer to launch.
	// +optional
	Resources ResourceRequirements `json:"resources,omitempty"`
	// NodeClassRef refers to the object holding the cloud-provider specific
	// configuration, such as an EC2NodeClass.
	// +required
	NodeClassRef *NodeClassReference `json:"nodeClassRef"`
	// TerminationGracePeriod is the longest the controller waits before
	// forcefully deleting the pods on the node, measured from when the
	// node's deletion begins. Unset, it waits indefinitely for pods to
	// drain.
	// +kubebuilder:validation:Pattern=`^([0-9]+(s|m|h))+$`
	// +kubebuilder:validation:Type="string"
	// +optional
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`
	// ExpireAfter is how long after its creation the node is terminated: a
	// duration such as "720h" (the default) or "Never".
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:Type="string"
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:default:="720h"
	// +optional
	ExpireAfter NillableDuration `json:"expireAfter,omitzero"`
}

// ResourceRequirements are the resources a NodeClaim needs to launch.
type ResourceRequirements struct {
	// Requests are the minimum resources the NodeClaim's node must have.
	// +optional
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// NodeClaimStatus is the observed state of a NodeClaim.
type NodeClaimStatus struct {
	// NodeName is the name of the node the NodeClaim registered as.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// ProviderID is the cloud provider's ID of the instance, as on the node.
	// +optional
	ProviderID string `json:"providerID,omitempty"`
	// ImageID identifies the image the node runs.
	// +optional
	ImageID string `json:"imageID,omitempty"`
	// Capacity is the node's estimated full capacity.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`
	// Allocatable is the node's estimated allocatable capacity.
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`
	// Conditions signal the NodeClaim's health and readiness, such as
	// Launched, Registered, Initialized, Drifted and Consolidatable.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastPodEventTime is the last time a pod was scheduled onto or removed
	// from the node; a pod going terminal or terminating counts as removed.
	// +optional
	LastPodEventTime metav1.Time `json:"lastPodEventTime,omitzero"`
}
