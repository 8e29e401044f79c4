// Package v1 holds Go types for the karpenter.sh/v1 API group: NodePool and
// NodeClaim, with the exact JSON field names Karpenter uses, so that the
// manifests users already write for Karpenter decode into them unchanged.
//
// The types carry kubebuilder markers: controller-gen derives their deep-copy
// functions (zz_generated.deepcopy.go) and the CustomResourceDefinitions in
// deploy/crds from them, including Karpenter v1's defaults and CEL
// validation rules. Run `make generate` after changing them.
//
// +kubebuilder:object:generate=true
// +groupName=karpenter.sh
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
