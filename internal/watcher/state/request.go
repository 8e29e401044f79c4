package state

import (
	"context"
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	"google.golang.org/protobuf/proto"
)

// InstanceTypeSource lists the instance types an EC2NodeClass can launch.
type InstanceTypeSource interface {
	InstanceTypes(ctx context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error)
}

// Skipped is an object left out of a request, with why.
type Skipped struct {
	Kind, Name, Reason string
	// Pod is the pod, for a skipped pod.
	Pod *corev1.Pod
}

// Request is a SolveRequest with what was left out of it.
type Request struct {
	Solve   *solverv1.SolveRequest
	Skipped []Skipped
	// Types indexes the instance types by name.
	Types map[string]*typesv1.InstanceType
	// PodsByKey maps "namespace/name" to each pending pod in the request.
	PodsByKey map[string]*corev1.Pod
}

// Options change what a request holds.
type Options struct {
	// ExcludeNodes are left out, with their NodeClaims (a node being replaced).
	ExcludeNodes map[string]bool
}

// Request builds the SolveRequest for pending pods: the usable NodePools
// with their instance types and usage, the nodes with their pods, the
// in-flight NodeClaims, DaemonSets and namespaces. Objects that cannot be
// converted are skipped and reported, so one bad pod or NodePool never
// blocks the rest.
func (s *Snapshot) Request(ctx context.Context, src InstanceTypeSource, pending []*corev1.Pod, opts Options) (*Request, error) {
	conv := kubeyaml.NewConverter(s.PVCs, s.PVs, s.StorageClasses)
	r := &Request{Solve: &solverv1.SolveRequest{}, Types: map[string]*typesv1.InstanceType{}, PodsByKey: map[string]*corev1.Pod{}}
	if err := s.addPools(ctx, src, r); err != nil {
		return nil, err
	}
	for _, p := range pending {
		tp, err := conv.Pod(p)
		if err != nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: "Pod", Name: Key(p), Reason: err.Error(), Pod: p})
			continue
		}
		r.Solve.Pods = append(r.Solve.Pods, tp)
		r.PodsByKey[Key(p)] = p
	}
	s.addNodes(conv, r, opts)
	s.addClaims(r, opts)
	for _, d := range s.DaemonSets {
		td, err := conv.DaemonSet(d)
		if err != nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: "DaemonSet", Name: d.Namespace + "/" + d.Name, Reason: err.Error()})
			continue
		}
		r.Solve.DaemonSets = append(r.Solve.DaemonSets, td)
	}
	for _, ns := range s.Namespaces {
		labels := map[string]string{"kubernetes.io/metadata.name": ns.Name}
		for k, v := range ns.Labels {
			labels[k] = v
		}
		r.Solve.Namespaces = append(r.Solve.Namespaces, &typesv1.Namespace{Name: ns.Name, Labels: labels})
	}
	names := make([]string, 0, len(r.Types))
	for n := range r.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.Solve.InstanceTypes = append(r.Solve.InstanceTypes, r.Types[n])
	}
	return r, nil
}

// addPools adds every usable NodePool with its usage, and the instance
// types of its EC2NodeClass. A NodePool whose class is missing, or whose
// class's instance types cannot be listed, is skipped.
func (s *Snapshot) addPools(ctx context.Context, src InstanceTypeSource, r *Request) error {
	merged := map[string]bool{}               // types r.Types owns (cloned to merge)
	zonesOf := map[*typesv1.NodePool]string{} // each pool's EC2NodeClass
	classZones := map[string][]string{}       // zones each EC2NodeClass offers
	for _, np := range s.NodePools {
		if np.DeletionTimestamp != nil {
			continue
		}
		nc := s.NodeClassOf(np)
		if nc == nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: karpv1.KindNodePool, Name: np.Name, Reason: "its EC2NodeClass does not exist"})
			continue
		}
		types, err := src.InstanceTypes(ctx, nc)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("instance types of %s: %w", nc.Name, err)
			}
			r.Skipped = append(r.Skipped, Skipped{Kind: karpv1.KindNodePool, Name: np.Name, Reason: fmt.Sprintf("instance types of EC2NodeClass %s: %v", nc.Name, err)})
			continue
		}
		tp, err := kubeyaml.NodePool(np)
		if err != nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: karpv1.KindNodePool, Name: np.Name, Reason: err.Error()})
			continue
		}
		mergeTypes(r.Types, merged, types)
		usage, err := kubeyaml.Quantities(s.PoolUsage(np.Name, r.Types))
		if err != nil {
			return err
		}
		tp.Usage = usage
		r.Solve.NodePools = append(r.Solve.NodePools, tp)
		zonesOf[tp] = nc.Name
		if _, ok := classZones[nc.Name]; !ok {
			classZones[nc.Name] = offeredZones(types)
		}
	}
	// Instance types are shared by name across EC2NodeClasses, with the
	// offerings of all of them: keep each NodePool to its own class's
	// zones (its subnets), so that no plan puts it where it has none.
	if len(classZones) > 1 {
		for tp, class := range zonesOf {
			if zones := classZones[class]; len(zones) > 0 {
				tp.Requirements = append(tp.Requirements, &typesv1.Requirement{Key: corev1.LabelTopologyZone, Operator: "In", Values: zones})
			}
		}
	}
	return nil
}

// offeredZones are the zones of the types' offerings, sorted.
func offeredZones(types []*typesv1.InstanceType) []string {
	set := map[string]bool{}
	for _, t := range types {
		for _, o := range t.GetOfferings() {
			set[o.GetZone()] = true
		}
	}
	zones := make([]string, 0, len(set))
	for z := range set {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	return zones
}

// mergeTypes adds types to index. A type already there from another
// EC2NodeClass is replaced by a copy (owned, so that the source's cached
// objects are never changed) that gains the offerings it lacked and keeps,
// per resource, the smaller capacity and allocatable of the two: kubelet
// settings and root volumes differ by class, and a plan must hold on
// whichever class launches the node.
func mergeTypes(index map[string]*typesv1.InstanceType, owned map[string]bool, types []*typesv1.InstanceType) {
	for _, t := range types {
		have, ok := index[t.Name]
		if !ok {
			index[t.Name] = t
			continue
		}
		if !owned[t.Name] {
			have = proto.Clone(have).(*typesv1.InstanceType)
			index[t.Name], owned[t.Name] = have, true
		}
		seen := map[string]bool{}
		for _, o := range have.Offerings {
			seen[o.Zone+"/"+o.CapacityType] = true
		}
		for _, o := range t.Offerings {
			if !seen[o.Zone+"/"+o.CapacityType] {
				have.Offerings = append(have.Offerings, o)
			}
		}
		minQuantities(have.Capacity, t.Capacity)
		minQuantities(have.Allocatable, t.Allocatable)
	}
}

// minQuantities lowers each quantity of dst that other has smaller;
// unparsable values are left as they are (the solver reports them).
func minQuantities(dst, other map[string]string) {
	for k, v := range other {
		cur, ok := dst[k]
		if !ok {
			continue
		}
		a, errA := resource.ParseQuantity(cur)
		b, errB := resource.ParseQuantity(v)
		if errA == nil && errB == nil && b.Cmp(a) < 0 {
			dst[k] = v
		}
	}
}

// PoolUsage is the capacity a NodePool's live NodeClaims have (or, not yet
// launched, will have at the least: their cheapest instance type option),
// and under "nodes" how many there are: Karpenter counts limits.nodes as a
// resource limit.
func (s *Snapshot) PoolUsage(pool string, types map[string]*typesv1.InstanceType) corev1.ResourceList {
	total := corev1.ResourceList{}
	var nodes int64
	for _, c := range s.claimsByPool[pool] {
		if c.DeletionTimestamp != nil {
			continue
		}
		nodes++
		for name, q := range ClaimCapacity(c, types) {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	total[resourceNodes] = *resource.NewQuantity(nodes, resource.DecimalSI)
	return total
}

// resourceNodes is the count of nodes in NodePool limits and usage.
const resourceNodes corev1.ResourceName = "nodes"

// ClaimCapacity is a NodeClaim's capacity: its status once launched, else
// the capacity of its first instance type option.
func ClaimCapacity(c *karpv1.NodeClaim, types map[string]*typesv1.InstanceType) corev1.ResourceList {
	if len(c.Status.Capacity) > 0 {
		return c.Status.Capacity
	}
	t := types[firstOption(c)]
	if t == nil {
		return nil
	}
	return parseList(t.Capacity)
}

// firstOption is the first value of a NodeClaim's instance type
// requirement (the cheapest option, as the provisioner writes them).
func firstOption(c *karpv1.NodeClaim) string {
	if t := c.Labels[corev1.LabelInstanceTypeStable]; t != "" {
		return t
	}
	for _, r := range c.Spec.Requirements {
		if r.Key == corev1.LabelInstanceTypeStable && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) > 0 {
			return r.Values[0]
		}
	}
	return ""
}

func parseList(m map[string]string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range m {
		if q, err := resource.ParseQuantity(v); err == nil {
			out[corev1.ResourceName(k)] = q
		}
	}
	return out
}

// addNodes adds every node with its pods and price; nodes whose NodeClaim
// is being deleted are cordoned in the request, so nothing is planned onto
// them.
func (s *Snapshot) addNodes(conv *kubeyaml.Converter, r *Request, opts Options) {
	for _, n := range s.Nodes {
		if opts.ExcludeNodes[n.Name] || n.DeletionTimestamp != nil {
			continue
		}
		c := s.ClaimFor(n)
		planned := n
		if c != nil {
			planned = asPlanned(n, c)
		}
		tn, err := kubeyaml.Node(planned)
		if err != nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: "Node", Name: n.Name, Reason: err.Error()})
			continue
		}
		if c != nil && c.DeletionTimestamp != nil {
			tn.Unschedulable = true
		}
		if c != nil && !meta.IsStatusConditionTrue(c.Status.Conditions, karpv1.ConditionInitialized) {
			tn.Taints = withoutEphemeralTaints(tn.Taints, c.Spec.StartupTaints)
		}
		tn.PricePerHour = Price(r.Types, tn.InstanceType, tn.Zone, tn.CapacityType)
		for _, p := range s.PodsOn(n.Name) {
			tp, err := conv.Pod(p)
			if err != nil {
				r.Skipped = append(r.Skipped, Skipped{Kind: "Pod", Name: Key(p), Reason: err.Error(), Pod: p})
				continue
			}
			tn.Pods = append(tn.Pods, tp)
		}
		r.Solve.Nodes = append(r.Solve.Nodes, tn)
	}
}

// EphemeralTaintKeys are the taints a node carries only while it starts:
// until its NodeClaim is Initialized they say nothing about where pods may
// go (the node lifecycle controller lifts not-ready within seconds, the
// watcher lifts unregistered), so planning must not count them, or every
// node that registered but is not yet Ready looks full and is provisioned
// again.
var EphemeralTaintKeys = []string{
	karpv1.UnregisteredTaintKey,
	corev1.TaintNodeNotReady,
	corev1.TaintNodeUnreachable,
	"node.cloudprovider.kubernetes.io/uninitialized",
}

// withoutEphemeralTaints drops the ephemeral taints and the NodeClaim's
// startup taints.
func withoutEphemeralTaints(taints []*typesv1.Taint, startup []corev1.Taint) []*typesv1.Taint {
	out := taints[:0:0]
	for _, t := range taints {
		drop := slices.Contains(EphemeralTaintKeys, t.GetKey())
		for _, st := range startup {
			drop = drop || (st.Key == t.GetKey() && string(st.Effect) == t.GetEffect())
		}
		if !drop {
			out = append(out, t)
		}
	}
	return out
}

// addClaims adds the NodeClaims whose node has not registered yet.
func (s *Snapshot) addClaims(r *Request, opts Options) {
	for _, c := range s.NodeClaims {
		if c.DeletionTimestamp != nil || s.NodeFor(c) != nil || opts.ExcludeNodes[c.Status.NodeName] {
			continue
		}
		tc, err := s.claim(c, r.Types)
		if err != nil {
			r.Skipped = append(r.Skipped, Skipped{Kind: karpv1.KindNodeClaim, Name: c.Name, Reason: err.Error()})
			continue
		}
		r.Solve.NodeClaims = append(r.Solve.NodeClaims, tc)
	}
}

func (s *Snapshot) claim(c *karpv1.NodeClaim, types map[string]*typesv1.InstanceType) (*typesv1.NodeClaim, error) {
	taints, err := kubeyaml.Taints(c.Spec.Taints)
	if err != nil {
		return nil, err
	}
	labels := ClaimLabels(c)
	it := firstOption(c)
	tc := &typesv1.NodeClaim{
		Name:         c.Name,
		NodePool:     c.Labels[karpv1.NodePoolLabelKey],
		InstanceType: it,
		Zone:         labels[corev1.LabelTopologyZone],
		CapacityType: labels[karpv1.CapacityTypeLabelKey],
		Labels:       labels,
		Taints:       taints,
	}
	if len(c.Status.Allocatable) > 0 {
		if tc.Allocatable, err = kubeyaml.Quantities(c.Status.Allocatable); err != nil {
			return nil, err
		}
	} else if t := types[it]; t != nil {
		tc.Allocatable = t.Allocatable
		for k, v := range t.Labels {
			if _, ok := tc.Labels[k]; !ok {
				tc.Labels[k] = v
			}
		}
	} else {
		return nil, fmt.Errorf("instance type %q of the NodeClaim is unknown", it)
	}
	tc.PricePerHour = Price(types, it, tc.Zone, tc.CapacityType)
	return tc, nil
}

// ClaimLabels are a NodeClaim's labels plus the labels its single-valued
// In requirements imply.
func ClaimLabels(c *karpv1.NodeClaim) map[string]string {
	out := map[string]string{}
	for _, r := range c.Spec.Requirements {
		if r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
			out[r.Key] = r.Values[0]
		}
	}
	for k, v := range c.Labels {
		out[k] = v
	}
	return out
}

// Price is the price of an offering; with zone or capacity type unknown, the
// cheapest matching offering's; 0 when the type is unknown.
func Price(types map[string]*typesv1.InstanceType, name, zone, capacityType string) float64 {
	t := types[name]
	if t == nil {
		return 0
	}
	best := 0.0
	for _, o := range t.Offerings {
		if (zone != "" && o.Zone != zone) || (capacityType != "" && o.CapacityType != capacityType) {
			continue
		}
		if best == 0 || o.PricePerHour < best {
			best = o.PricePerHour
		}
	}
	return best
}
