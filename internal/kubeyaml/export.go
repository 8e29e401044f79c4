package kubeyaml

import (
	"encoding/json"
	"fmt"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Converter turns live Kubernetes objects (from an API server or an
// informer cache) into the typesv1 messages the solver reads, with the same
// checks and conversions as the file loader. It resolves pod volume
// topology from the claims, volumes and storage classes it was given.
type Converter struct {
	l *Loader
}

// NewConverter returns a Converter that resolves volumes against pvcs, pvs
// and storage classes.
func NewConverter(pvcs []*corev1.PersistentVolumeClaim, pvs []*corev1.PersistentVolume, scs []*storagev1.StorageClass) *Converter {
	l := NewLoader()
	for _, c := range pvcs {
		l.pvcs[c.Namespace+"/"+c.Name] = c
	}
	for _, v := range pvs {
		l.pvs[v.Name] = v
	}
	for _, sc := range scs {
		l.storageClasses[sc.Name] = sc
	}
	return &Converter{l: l}
}

// Pod converts a pod with its metadata, owner, priority and volume topology.
// A pod read from an API server has its priority resolved by admission.
func (c *Converter) Pod(p *corev1.Pod) (*typesv1.Pod, error) {
	src := Source{File: "apiserver", Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
	pp, err := c.l.podFromTemplate(src, p.Namespace, p.Name, p.Labels, p.Annotations, &p.Spec, "spec")
	if err != nil {
		return nil, err
	}
	pp.pod.Owner, pp.pod.DaemonSet = controllerOf(p.Namespace, p.OwnerReferences)
	pp.claims = podClaims(&p.Spec, p.Name, nil, "")
	if err := c.l.resolve(pp); err != nil {
		return nil, err
	}
	return pp.pod, nil
}

// DaemonSet converts a DaemonSet with its pod template, adding the
// tolerations the DaemonSet controller gives its pods.
func (c *Converter) DaemonSet(d *appsv1.DaemonSet) (*typesv1.DaemonSet, error) {
	src := Source{File: "apiserver", Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name}
	before := len(c.l.daemonSets)
	if err := c.l.addDaemonSet(src, d.Namespace, d); err != nil {
		return nil, err
	}
	pp := c.l.daemonSets[before]
	c.l.daemonSets = c.l.daemonSets[:before]
	if err := c.l.resolve(pp); err != nil {
		return nil, err
	}
	return &typesv1.DaemonSet{Namespace: d.Namespace, Name: d.Name, Template: pp.pod}, nil
}

// Node converts a node; its pods and price are left for the caller.
func Node(n *corev1.Node) (*typesv1.Node, error) {
	node, err := convertNode(n)
	if err != nil {
		return nil, &Error{Source: Source{File: "apiserver", Kind: "Node", Name: n.Name}, Err: err}
	}
	return node, nil
}

// Taints converts taints, rejecting ones without a key or a valid effect.
func Taints(ts []corev1.Taint) ([]*typesv1.Taint, error) {
	return convertTaints(ts, "taints")
}

// Requirements converts node selector requirements, checking operators and
// values.
func Requirements(rs []corev1.NodeSelectorRequirement) ([]*typesv1.Requirement, error) {
	out := make([]*typesv1.Requirement, 0, len(rs))
	for i, r := range rs {
		req, err := requirement(r, fmt.Sprintf("requirements[%d]", i), nodeSelectorOps)
		if err != nil {
			return nil, err
		}
		out = append(out, req)
	}
	return out, nil
}

// Quantities converts a resource list to Kubernetes quantity strings.
func Quantities(rl corev1.ResourceList) (map[string]string, error) {
	return quantities(rl, "resources")
}

// NodePool converts a karpenter.sh/v1 NodePool object with the checks
// LoadNodePools makes; usage comes from its status.resources.
func NodePool(np *karpv1.NodePool) (*typesv1.NodePool, error) {
	data, err := json.Marshal(np)
	if err != nil {
		return nil, fmt.Errorf("nodepool %s: %w", np.Name, err)
	}
	o := object{
		src:  Source{File: "apiserver", Kind: karpv1.KindNodePool, Name: np.Name},
		json: data,
	}
	o.hdr.APIVersion, o.hdr.Kind, o.hdr.Metadata.Name = karpv1.APIVersion, karpv1.KindNodePool, np.Name
	return convertNodePool(o)
}
