package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is karpenter.sh/v1.
	GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

	// NodePoolsResource is the resource of NodePools, for dynamic clients.
	NodePoolsResource = GroupVersion.WithResource("nodepools")
	// NodeClaimsResource is the resource of NodeClaims, for dynamic clients.
	NodeClaimsResource = GroupVersion.WithResource("nodeclaims")

	// SchemeBuilder registers the group's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds NodePool, NodeClaim and their lists to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource returns the GroupResource of a resource of the group, such as
// "nodepools".
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &NodePool{}, &NodePoolList{}, &NodeClaim{}, &NodeClaimList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
