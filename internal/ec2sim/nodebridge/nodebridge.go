// Package nodebridge stands in for the kubelets of simulated instances: it
// polls an EC2 endpoint (ec2sim, through the real aws-sdk-go-v2 client) and
// registers a Node for every running instance the way a kubelet would, then
// deletes the Node once its instance is shutting down, terminated or gone, as
// a cloud controller manager would. The Nodes carry the annotation
// kwok.x-k8s.io/node=fake so that kwok makes them Ready and runs their pods.
//
// It is a TEST AND DEMO TOOL used by `flotilla ec2sim --kubeconfig`, not part
// of a production deployment.
package nodebridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
)

// Well-known names the bridge writes.
const (
	// KwokAnnotationKey and KwokAnnotationValue hand a Node to kwok.
	KwokAnnotationKey   = "kwok.x-k8s.io/node"
	KwokAnnotationValue = "fake"
	// BridgedAnnotationKey marks the Nodes this bridge registered; it only
	// ever deletes those.
	BridgedAnnotationKey = "ec2sim.flotilla.io/bridged"
	// UnregisteredTaintKey is Karpenter's taint on a Node that its NodeClaim
	// has not yet adopted.
	UnregisteredTaintKey = "karpenter.sh/unregistered"

	LabelHostname     = "kubernetes.io/hostname"
	LabelZone         = "topology.kubernetes.io/zone"
	LabelRegion       = "topology.kubernetes.io/region"
	LabelZoneID       = "topology.k8s.aws/zone-id"
	LabelNodePool     = "karpenter.sh/nodepool"
	LabelNodeClass    = "karpenter.k8s.aws/ec2nodeclass"
	LabelCapacityType = instancetype.LabelCapacityType

	tagNodePool  = "karpenter.sh/nodepool"
	tagNodeClass = "karpenter.k8s.aws/ec2nodeclass"
)

// DefaultInterval is how often the bridge polls EC2 when Options.Interval is 0.
const DefaultInterval = 300 * time.Millisecond

// EC2API is the part of the EC2 client the bridge uses.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
}

// Options configure a Bridge.
type Options struct {
	// Kube receives the Nodes.
	Kube kubernetes.Interface
	// EC2 lists the instances and describes their types.
	EC2 EC2API
	// ClusterName, when set, limits the bridge to instances tagged
	// kubernetes.io/cluster/<ClusterName>.
	ClusterName string
	// Region is the region label's value; empty derives it from the zone.
	Region string
	// Interval is the polling period (default DefaultInterval).
	Interval time.Duration
	// Log receives what the bridge does (default slog.Default()).
	Log *slog.Logger
	// Metrics counts what the bridge does; nil counts nothing.
	Metrics *Metrics
}

// Bridge registers and deletes Nodes for simulated instances. Create it with
// New; Run polls until its context ends, Sync makes one pass.
type Bridge struct {
	opts Options

	mu sync.Mutex
	// registered holds the instances whose Node was created (or found)
	// once. Like a kubelet, the bridge registers an instance only once: a
	// Node deleted by someone else while its instance runs stays deleted.
	registered map[string]bool
	types      map[string]*nodeShape
}

// nodeShape is what a Node of one instance type carries.
type nodeShape struct {
	labels      map[string]string
	capacity    corev1.ResourceList
	allocatable corev1.ResourceList
	arch        string
}

// New checks opts and returns a Bridge.
func New(opts Options) (*Bridge, error) {
	if opts.Kube == nil || opts.EC2 == nil {
		return nil, errors.New("nodebridge: a Kubernetes client and an EC2 client are required")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("nodebridge: interval %s is negative", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Bridge{opts: opts, registered: map[string]bool{}, types: map[string]*nodeShape{}}, nil
}

// Run syncs every Interval until ctx ends. Failed passes are logged,
// counted and retried on the next tick; Run returns nil when ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	t := time.NewTicker(b.opts.Interval)
	defer t.Stop()
	for {
		if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
			b.opts.Log.Warn("nodebridge: sync failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync makes one pass: registers Nodes for running instances seen for the
// first time and deletes bridged Nodes whose instance is going or gone.
func (b *Bridge) Sync(ctx context.Context) (err error) {
	defer func() { b.opts.Metrics.observeSync(err) }()
	instances, err := b.listInstances(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if err := b.registerNew(ctx, instances); err != nil {
		errs = append(errs, err)
	}
	if err := b.deleteGone(ctx, instances); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Bridge) listInstances(ctx context.Context) (map[string]ec2types.Instance, error) {
	in := &ec2.DescribeInstancesInput{}
	if b.opts.ClusterName != "" {
		in.Filters = []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"kubernetes.io/cluster/" + b.opts.ClusterName}}}
	}
	out := map[string]ec2types.Instance{}
	p := ec2.NewDescribeInstancesPaginator(b.opts.EC2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if id := aws.ToString(i.InstanceId); id != "" {
					out[id] = i
				}
			}
		}
	}
	return out, nil
}

func (b *Bridge) registerNew(ctx context.Context, instances map[string]ec2types.Instance) error {
	var pending []ec2types.Instance
	b.mu.Lock()
	for id, i := range instances {
		if !b.registered[id] && stateOf(i) == ec2types.InstanceStateNameRunning && aws.ToString(i.PrivateDnsName) != "" {
			pending = append(pending, i)
		}
	}
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := b.loadShapes(ctx, pending); err != nil {
		return err
	}
	var errs []error
	for _, i := range pending {
		if err := b.register(ctx, i); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Bridge) register(ctx context.Context, i ec2types.Instance) error {
	id := aws.ToString(i.InstanceId)
	node, err := b.node(i)
	if err != nil {
		return err
	}
	_, err = b.opts.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		b.opts.Log.Info("nodebridge: node already registered", "node", node.Name, "instance", id)
	case err != nil:
		return fmt.Errorf("register node %s for %s: %w", node.Name, id, err)
	default:
		b.opts.Log.Info("nodebridge: registered node", "node", node.Name, "instance", id,
			"instanceType", i.InstanceType, "zone", node.Labels[LabelZone])
		b.opts.Metrics.countRegistered()
	}
	b.mu.Lock()
	b.registered[id] = true
	b.mu.Unlock()
	return nil
}

// node builds the Node a kubelet on instance i would register.
func (b *Bridge) node(i ec2types.Instance) (*corev1.Node, error) {
	id := aws.ToString(i.InstanceId)
	b.mu.Lock()
	shape := b.types[string(i.InstanceType)]
	b.mu.Unlock()
	if shape == nil {
		return nil, fmt.Errorf("instance %s: unknown instance type %q", id, i.InstanceType)
	}
	var zone, zoneID string
	if i.Placement != nil {
		zone, zoneID = aws.ToString(i.Placement.AvailabilityZone), aws.ToString(i.Placement.AvailabilityZoneId)
	}
	if zone == "" {
		return nil, fmt.Errorf("instance %s: no availability zone", id)
	}
	name := aws.ToString(i.PrivateDnsName)
	labels := maps.Clone(shape.labels)
	labels[LabelHostname] = name
	labels[LabelZone] = zone
	labels[LabelRegion] = b.region(zone)
	if zoneID != "" {
		labels[LabelZoneID] = zoneID
	}
	labels[LabelCapacityType] = instancetype.CapacityTypeOnDemand
	if i.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
		labels[LabelCapacityType] = instancetype.CapacityTypeSpot
	}
	tags := tagMap(i.Tags)
	if v := tags[tagNodePool]; v != "" {
		labels[LabelNodePool] = v
	}
	if v := tags[tagNodeClass]; v != "" {
		labels[LabelNodeClass] = v
	}
	addresses := []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalDNS, Address: name}}
	if ip := aws.ToString(i.PrivateIpAddress); ip != "" {
		addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}, addresses...)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{KwokAnnotationKey: KwokAnnotationValue, BridgedAnnotationKey: "true"},
		},
		Spec: corev1.NodeSpec{
			ProviderID: ProviderID(zone, id),
			Taints:     []corev1.Taint{{Key: UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.NodeStatus{
			Capacity:    shape.capacity.DeepCopy(),
			Allocatable: shape.allocatable.DeepCopy(),
			Addresses:   addresses,
			NodeInfo:    corev1.NodeSystemInfo{Architecture: shape.arch, OperatingSystem: "linux"},
		},
	}, nil
}

func (b *Bridge) region(zone string) string {
	if b.opts.Region != "" {
		return b.opts.Region
	}
	return strings.TrimRight(zone, "abcdefghijklmnopqrstuvwxyz")
}

// ProviderID is the spec.providerID of an instance's Node.
func ProviderID(zone, instanceID string) string { return "aws:///" + zone + "/" + instanceID }

// InstanceID returns the instance ID in an aws:/// provider ID, or "".
func InstanceID(providerID string) string {
	rest, ok := strings.CutPrefix(providerID, "aws:///")
	if !ok {
		return ""
	}
	_, id, _ := strings.Cut(rest, "/")
	if !strings.HasPrefix(id, "i-") || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// deleteGone deletes the bridged Nodes whose instance is shutting down,
// stopped, terminated or no longer listed.
func (b *Bridge) deleteGone(ctx context.Context, instances map[string]ec2types.Instance) error {
	nodes, err := b.opts.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var errs []error
	for idx := range nodes.Items {
		n := &nodes.Items[idx]
		id := InstanceID(n.Spec.ProviderID)
		if n.Annotations[BridgedAnnotationKey] != "true" || id == "" || n.DeletionTimestamp != nil {
			continue
		}
		i, listed := instances[id]
		if listed && !gone(stateOf(i)) {
			continue
		}
		err := b.opts.Kube.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete node %s of %s: %w", n.Name, id, err))
			continue
		}
		state := "gone"
		if listed {
			state = string(stateOf(i))
		}
		b.opts.Log.Info("nodebridge: deleted node", "node", n.Name, "instance", id, "state", state)
		b.opts.Metrics.countDeleted()
	}
	return errors.Join(errs...)
}

func gone(s ec2types.InstanceStateName) bool {
	switch s {
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated,
		ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
		return true
	}
	return false
}

func stateOf(i ec2types.Instance) ec2types.InstanceStateName {
	if i.State == nil {
		return ""
	}
	return i.State.Name
}

func tagMap(tags []ec2types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// loadShapes describes the instance types of instances not yet known.
func (b *Bridge) loadShapes(ctx context.Context, instances []ec2types.Instance) error {
	want := map[ec2types.InstanceType]bool{}
	b.mu.Lock()
	for _, i := range instances {
		if b.types[string(i.InstanceType)] == nil {
			want[i.InstanceType] = true
		}
	}
	b.mu.Unlock()
	if len(want) == 0 {
		return nil
	}
	names := make([]ec2types.InstanceType, 0, len(want))
	for t := range want {
		names = append(names, t)
	}
	out, err := b.opts.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: names})
	if err != nil {
		return fmt.Errorf("describe instance types %v: %w", names, err)
	}
	for _, t := range out.InstanceTypes {
		shape, err := shapeOf(t)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.types[string(t.InstanceType)] = shape
		b.mu.Unlock()
	}
	return nil
}

// shapeOf derives labels, capacity and allocatable from a
// DescribeInstanceTypes entry with the launcher's own formulas, so the Node
// matches what the solver planned for the type.
func shapeOf(t ec2types.InstanceTypeInfo) (*nodeShape, error) {
	info, err := infoOf(t)
	if err != nil {
		return nil, err
	}
	// The default root volume: the bridge shapes Nodes per instance type,
	// not per launch template.
	it, err := instancetype.Convert(info, nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("instance type %s: %w", info.Name, err)
	}
	capacity, err := resourceList(it.GetCapacity())
	if err != nil {
		return nil, fmt.Errorf("instance type %s capacity: %w", info.Name, err)
	}
	alloc, err := resourceList(it.GetAllocatable())
	if err != nil {
		return nil, fmt.Errorf("instance type %s allocatable: %w", info.Name, err)
	}
	return &nodeShape{labels: it.GetLabels(), capacity: capacity, allocatable: alloc, arch: info.Arch}, nil
}

func infoOf(t ec2types.InstanceTypeInfo) (instancetype.Info, error) {
	info, ok := instancetype.InfoFromEC2(t)
	if !ok {
		return info, fmt.Errorf("instance type %s: description lacks vCPU, memory, processor or network info, or an amd64 or arm64 architecture", t.InstanceType)
	}
	return info, nil
}

func resourceList(m map[string]string) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for k, v := range m {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", k, v, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}
