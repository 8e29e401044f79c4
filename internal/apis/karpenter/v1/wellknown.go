package v1

import corev1 "k8s.io/api/core/v1"

// Labels Karpenter puts on NodeClaims and nodes.
const (
	// NodePoolLabelKey names the NodePool a NodeClaim or node belongs to.
	NodePoolLabelKey = Group + "/nodepool"
	// CapacityTypeLabelKey is the capacity type of a node: spot, on-demand
	// or reserved.
	CapacityTypeLabelKey = Group + "/capacity-type"
	// NodeRegisteredLabelKey is "true" on a node once its NodeClaim
	// registered it.
	NodeRegisteredLabelKey = Group + "/registered"
	// NodeInitializedLabelKey is "true" on a node once it is initialized:
	// ready, startup taints gone, extended resources registered.
	NodeInitializedLabelKey = Group + "/initialized"
	// NodeDoNotSyncTaintsLabelKey on a node stops Karpenter from syncing
	// taints from its NodeClaim.
	NodeDoNotSyncTaintsLabelKey = Group + "/do-not-sync-taints"
)

// Capacity types, the values of CapacityTypeLabelKey.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
	CapacityTypeReserved = "reserved"
)

// Annotations.
const (
	// DoNotDisruptAnnotationKey, set to "true" on a pod or node, blocks
	// voluntary disruption of the node.
	DoNotDisruptAnnotationKey = Group + "/do-not-disrupt"
	// NodePoolHashAnnotationKey holds the hash of the NodePool's template a
	// NodeClaim was launched from; a mismatch means the NodeClaim drifted.
	NodePoolHashAnnotationKey = Group + "/nodepool-hash"
	// NodePoolHashVersionAnnotationKey is the version of the hashing scheme
	// of NodePoolHashAnnotationKey.
	NodePoolHashVersionAnnotationKey = Group + "/nodepool-hash-version"
	// NodeClassHashAnnotationKey holds the hash of the EC2NodeClass a
	// NodeClaim was launched from.
	NodeClassHashAnnotationKey = "karpenter.k8s.aws/ec2nodeclass-hash"
	// NodeClassHashVersionAnnotationKey is the version of the hashing scheme
	// of NodeClassHashAnnotationKey.
	NodeClassHashVersionAnnotationKey = "karpenter.k8s.aws/ec2nodeclass-hash-version"
	// NodeClaimTerminationTimestampAnnotationKey is when the NodeClaim's
	// pods are forcibly deleted (deletion start plus its
	// terminationGracePeriod), RFC 3339.
	NodeClaimTerminationTimestampAnnotationKey = Group + "/nodeclaim-termination-timestamp"
)

// Requirement operators Karpenter (v1.10+) adds to Kubernetes' node
// selector operators, allowed in NodePool and NodeClaim requirements: Gte n
// holds for an integer label value >= n, Lte n for one <= n.
const (
	NodeSelectorOpGte = "Gte"
	NodeSelectorOpLte = "Lte"
)

// Taints.
const (
	// UnregisteredTaintKey is on every node until its NodeClaim registers
	// it (effect NoExecute).
	UnregisteredTaintKey = Group + "/unregistered"
	// DisruptedTaintKey is put on a node being disrupted so that no new
	// pods schedule to it (effect NoSchedule).
	DisruptedTaintKey = Group + "/disrupted"
)

// UnregisteredNoExecuteTaint returns the taint nodes carry until registered.
func UnregisteredNoExecuteTaint() corev1.Taint {
	return corev1.Taint{Key: UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute}
}

// DisruptedNoScheduleTaint returns the taint of nodes being disrupted.
func DisruptedNoScheduleTaint() corev1.Taint {
	return corev1.Taint{Key: DisruptedTaintKey, Effect: corev1.TaintEffectNoSchedule}
}

// TerminationFinalizer holds NodeClaims and nodes until their instance is
// terminated and their pods drained.
const TerminationFinalizer = Group + "/termination"

// NodeClaim condition types.
const (
	// ConditionLaunched is True once the cloud instance exists.
	ConditionLaunched = "Launched"
	// ConditionRegistered is True once the instance's node joined.
	ConditionRegistered = "Registered"
	// ConditionInitialized is True once the node is ready for pods.
	ConditionInitialized = "Initialized"
	// ConditionDrifted is True when the NodeClaim no longer matches its
	// NodePool or NodeClass.
	ConditionDrifted = "Drifted"
	// ConditionConsolidatable is True when consolidateAfter elapsed since
	// the last pod event on the node.
	ConditionConsolidatable = "Consolidatable"
	// ConditionDrained is True once the node's pods are drained.
	ConditionDrained = "Drained"
	// ConditionInstanceTerminating is True once instance termination began.
	ConditionInstanceTerminating = "InstanceTerminating"
	// ConditionReady is the root condition of NodeClaims, NodePools and
	// NodeClasses.
	ConditionReady = "Ready"
)

// NodePool condition types.
const (
	// ConditionValidationSucceeded is True when the NodePool passed the
	// controller's runtime validation.
	ConditionValidationSucceeded = "ValidationSucceeded"
	// ConditionNodeClassReady is True when the NodePool's NodeClass exists
	// and is Ready.
	ConditionNodeClassReady = "NodeClassReady"
	// ConditionNodeRegistrationHealthy is False when recent NodeClaims of
	// the NodePool failed to register.
	ConditionNodeRegistrationHealthy = "NodeRegistrationHealthy"
	// ConditionFieldsHonored is Flotilla's own NodePool and EC2NodeClass
	// condition: False, naming the fields, when the object sets a field
	// Flotilla accepts (Karpenter has it) but does not act on as Karpenter
	// would. It does not change Ready.
	ConditionFieldsHonored = "FieldsHonored"
)

// NodeClaim condition types, by the names of earlier releases.
const (
	ConditionTypeLaunched       = ConditionLaunched
	ConditionTypeRegistered     = ConditionRegistered
	ConditionTypeInitialized    = ConditionInitialized
	ConditionTypeConsolidatable = ConditionConsolidatable
	ConditionTypeDrifted        = ConditionDrifted
)

// KarpenterAWSKeys are the karpenter.k8s.aws keys (without the domain) that
// the NodePool and NodeClaim CRDs of Karpenter's AWS provider allow as
// requirement keys and template labels (its
// pkg/apis/crds/karpenter.sh_nodepools.yaml, 29 keys). The CEL rules in
// nodepool.go must list exactly these; the CRD tests hold them to it.
var KarpenterAWSKeys = []string{
	"instance-tenancy", "capacity-reservation-type", "capacity-reservation-id", "capacity-reservation-interruptible",
	"ec2nodeclass", "instance-encryption-in-transit-supported", "nitro-sandbox", "instance-category",
	"instance-hypervisor", "instance-family", "instance-generation", "instance-local-nvme", "instance-size",
	"instance-cpu", "instance-cpu-manufacturer", "instance-cpu-sustained-clock-speed-mhz", "instance-memory",
	"instance-ebs-bandwidth", "instance-network-bandwidth", "instance-gpu-name", "instance-gpu-manufacturer",
	"instance-gpu-count", "instance-gpu-memory", "instance-accelerator-name", "instance-accelerator-manufacturer",
	"instance-accelerator-count", "instance-capability-flex", "placement-group-id", "placement-group-partition",
}
