// Package state reads the cluster from the controller's cache into one
// consistent Snapshot (pods, nodes, NodeClaims, NodePools, EC2NodeClasses,
// DaemonSets, volumes) and turns it into the solver's SolveRequest.
package state

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// Snapshot is the cluster as the cache saw it at one moment.
type Snapshot struct {
	Pods           []*corev1.Pod
	Nodes          []*corev1.Node
	NodeClaims     []*karpv1.NodeClaim
	NodePools      []*karpv1.NodePool
	NodeClasses    map[string]*awsv1.EC2NodeClass
	DaemonSets     []*appsv1.DaemonSet
	Namespaces     []*corev1.Namespace
	PVCs           []*corev1.PersistentVolumeClaim
	PVs            []*corev1.PersistentVolume
	StorageClasses []*storagev1.StorageClass
	PDBs           []*policyv1.PodDisruptionBudget

	podsByNode   map[string][]*corev1.Pod
	nodeByID     map[string]*corev1.Node
	claimByID    map[string]*karpv1.NodeClaim
	claimByNode  map[string]*karpv1.NodeClaim
	poolByName   map[string]*karpv1.NodePool
	nodeByName   map[string]*corev1.Node
	claimsByPool map[string][]*karpv1.NodeClaim
}

// Load lists everything the watcher plans with from c (normally the
// manager's cache).
func Load(ctx context.Context, c client.Reader) (*Snapshot, error) {
	var (
		pods    corev1.PodList
		nodes   corev1.NodeList
		claims  karpv1.NodeClaimList
		pools   karpv1.NodePoolList
		classes awsv1.EC2NodeClassList
		dss     appsv1.DaemonSetList
		nss     corev1.NamespaceList
		pvcs    corev1.PersistentVolumeClaimList
		pvs     corev1.PersistentVolumeList
		scs     storagev1.StorageClassList
		pdbs    policyv1.PodDisruptionBudgetList
	)
	for _, l := range []client.ObjectList{&pods, &nodes, &claims, &pools, &classes, &dss, &nss, &pvcs, &pvs, &scs, &pdbs} {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	s := &Snapshot{NodeClasses: map[string]*awsv1.EC2NodeClass{}}
	for i := range pods.Items {
		s.Pods = append(s.Pods, &pods.Items[i])
	}
	for i := range nodes.Items {
		s.Nodes = append(s.Nodes, &nodes.Items[i])
	}
	for i := range claims.Items {
		s.NodeClaims = append(s.NodeClaims, &claims.Items[i])
	}
	for i := range pools.Items {
		s.NodePools = append(s.NodePools, &pools.Items[i])
	}
	for i := range classes.Items {
		s.NodeClasses[classes.Items[i].Name] = &classes.Items[i]
	}
	for i := range dss.Items {
		s.DaemonSets = append(s.DaemonSets, &dss.Items[i])
	}
	for i := range nss.Items {
		s.Namespaces = append(s.Namespaces, &nss.Items[i])
	}
	for i := range pvcs.Items {
		s.PVCs = append(s.PVCs, &pvcs.Items[i])
	}
	for i := range pvs.Items {
		s.PVs = append(s.PVs, &pvs.Items[i])
	}
	for i := range scs.Items {
		s.StorageClasses = append(s.StorageClasses, &scs.Items[i])
	}
	for i := range pdbs.Items {
		s.PDBs = append(s.PDBs, &pdbs.Items[i])
	}
	s.index()
	return s, nil
}

// New builds a snapshot from objects already at hand (tests, and callers
// that listed them themselves).
func New(pods []*corev1.Pod, nodes []*corev1.Node, claims []*karpv1.NodeClaim, pools []*karpv1.NodePool, classes []*awsv1.EC2NodeClass) *Snapshot {
	s := &Snapshot{Pods: pods, Nodes: nodes, NodeClaims: claims, NodePools: pools, NodeClasses: map[string]*awsv1.EC2NodeClass{}}
	for _, c := range classes {
		s.NodeClasses[c.Name] = c
	}
	s.index()
	return s
}

func (s *Snapshot) index() {
	s.podsByNode = map[string][]*corev1.Pod{}
	s.nodeByID = map[string]*corev1.Node{}
	s.nodeByName = map[string]*corev1.Node{}
	s.claimByID = map[string]*karpv1.NodeClaim{}
	s.claimByNode = map[string]*karpv1.NodeClaim{}
	s.poolByName = map[string]*karpv1.NodePool{}
	s.claimsByPool = map[string][]*karpv1.NodeClaim{}
	for _, p := range s.Pods {
		if p.Spec.NodeName != "" && !Terminal(p) {
			s.podsByNode[p.Spec.NodeName] = append(s.podsByNode[p.Spec.NodeName], p)
		}
	}
	for _, n := range s.Nodes {
		s.nodeByName[n.Name] = n
		if n.Spec.ProviderID != "" {
			s.nodeByID[n.Spec.ProviderID] = n
		}
	}
	for _, c := range s.NodeClaims {
		if c.Status.ProviderID != "" {
			s.claimByID[c.Status.ProviderID] = c
			if n := s.nodeByID[c.Status.ProviderID]; n != nil {
				s.claimByNode[n.Name] = c
			}
		}
		pool := c.Labels[karpv1.NodePoolLabelKey]
		s.claimsByPool[pool] = append(s.claimsByPool[pool], c)
	}
	for _, np := range s.NodePools {
		s.poolByName[np.Name] = np
	}
}

// PodsOn returns the non-terminal pods bound to node.
func (s *Snapshot) PodsOn(node string) []*corev1.Pod { return s.podsByNode[node] }

// Node returns the node by name, or nil.
func (s *Snapshot) Node(name string) *corev1.Node { return s.nodeByName[name] }

// NodeFor returns the node a NodeClaim registered as (matched by provider
// id), or nil.
func (s *Snapshot) NodeFor(c *karpv1.NodeClaim) *corev1.Node {
	if c.Status.ProviderID == "" {
		return nil
	}
	return s.nodeByID[c.Status.ProviderID]
}

// ClaimFor returns the NodeClaim of a node (matched by provider id), or nil.
func (s *Snapshot) ClaimFor(node *corev1.Node) *karpv1.NodeClaim {
	return s.claimByNode[node.Name]
}

// NodePool returns the NodePool by name, or nil.
func (s *Snapshot) NodePool(name string) *karpv1.NodePool { return s.poolByName[name] }

// ClaimsOf returns the NodeClaims of a NodePool.
func (s *Snapshot) ClaimsOf(pool string) []*karpv1.NodeClaim { return s.claimsByPool[pool] }

// NodeClassOf returns the EC2NodeClass a NodePool refers to, or nil.
func (s *Snapshot) NodeClassOf(np *karpv1.NodePool) *awsv1.EC2NodeClass {
	ref := np.Spec.Template.Spec.NodeClassRef
	if ref == nil {
		return nil
	}
	return s.NodeClasses[ref.Name]
}

// Pending returns the provisionable pods, oldest first.
func (s *Snapshot) Pending() []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range s.Pods {
		if Provisionable(p) {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp)
	})
	return out
}

// Provisionable says whether a pod waits for capacity: unbound, not
// terminating or finished, not a DaemonSet's (those come with every node),
// and marked PodScheduled=False with reason Unschedulable by kube-scheduler.
func Provisionable(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || Terminal(p) || IsDaemonSetPod(p) {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// Terminal says whether a pod has finished.
func Terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// IsDaemonSetPod says whether a DaemonSet controls the pod.
func IsDaemonSetPod(p *corev1.Pod) bool {
	for _, r := range p.OwnerReferences {
		if r.Controller != nil && *r.Controller && r.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// Key is a pod's "namespace/name".
func Key(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// InstanceID extracts the EC2 instance id from a provider id of the form
// aws:///zone/i-0123; it returns "" for anything else.
func InstanceID(providerID string) string {
	if !strings.HasPrefix(providerID, "aws://") {
		return ""
	}
	id := providerID[strings.LastIndex(providerID, "/")+1:]
	if !strings.HasPrefix(id, "i-") {
		return ""
	}
	return id
}
