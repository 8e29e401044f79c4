// Package v1 holds Go types for the karpenter.sh/v1 API group: NodePool and
// NodeClaim, with the exact JSON field names Karpenter uses, so that the
// manifests users already write for Karpenter decode into them unchanged.
//
// The types are plain structs with JSON tags. They carry no defaulting or
// validation logic; a later change adds kubebuilder markers and generates
// CustomResourceDefinitions from them.
package v1

// Group is the API group of NodePools and NodeClaims.
const Group = "karpenter.sh"

// Version is the API version these types describe.
const Version = "v1"

// APIVersion is the apiVersion field value of v1 objects: "karpenter.sh/v1".
const APIVersion = Group + "/" + Version

// Kinds of the group.
const (
	KindNodePool  = "NodePool"
	KindNodeClaim = "NodeClaim"
)
