// Package v1 holds Go types for the karpenter.k8s.aws/v1 API group:
// EC2NodeClass, the AWS-specific configuration of the nodes a NodePool
// launches (subnets, security groups, AMIs, IAM role, user data, block
// devices, instance metadata options). The JSON field names are Karpenter's,
// so that EC2NodeClass manifests written for Karpenter apply unchanged.
//
// Deep-copy functions and the CustomResourceDefinition in deploy/crds are
// generated from the kubebuilder markers by `make generate`.
//
// +kubebuilder:object:generate=true
// +groupName=karpenter.k8s.aws
package v1

// Group is the API group of EC2NodeClasses.
const Group = "karpenter.k8s.aws"

// Version is the API version these types describe.
const Version = "v1"

// APIVersion is the apiVersion field value of v1 objects:
// "karpenter.k8s.aws/v1".
const APIVersion = Group + "/" + Version

// KindEC2NodeClass is the kind of EC2NodeClasses.
const KindEC2NodeClass = "EC2NodeClass"
