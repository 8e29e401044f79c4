// Package kubeyaml reads Kubernetes and Karpenter YAML manifests, as users
// write them or as kubectl prints them, into Flotilla's protobuf types.
//
// Workload files may hold Pods, Deployments, ReplicaSets, StatefulSets, Jobs
// and DaemonSets, Nodes, Namespaces, PriorityClasses, and the
// PersistentVolumeClaims, PersistentVolumes and StorageClasses that give
// pods' volumes their topology, in any number of documents and files, also
// wrapped in `kind: List`. Controllers are expanded into the pods they would
// create. NodePool files hold karpenter.sh/v1 NodePools.
//
// Every error is one line naming the file, the 1-based document index, the
// object's kind and name, the field and the problem.
package kubeyaml

import (
	"fmt"
	"io"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxPods bounds how many pods one Loader may produce, controllers'
// replicas included.
const MaxPods = 100000

// Documents is everything a set of workload files describes.
type Documents struct {
	// Pods are the pending pods: Pod documents without spec.nodeName, and
	// the pods controllers would create.
	Pods []*typesv1.Pod
	// PodSources says where each of Pods came from: PodSources[i] is the
	// document of Pods[i].
	PodSources []Source
	// DaemonSets are the DaemonSets, each with its pod template.
	DaemonSets []*typesv1.DaemonSet
	// DaemonSetSources says where each of DaemonSets came from.
	DaemonSetSources []Source
	// Nodes are the existing nodes, each with the pods bound to it.
	Nodes []*typesv1.Node
	// NodeSources says where each of Nodes came from.
	NodeSources []Source
	// Namespaces are every namespace named by a Namespace document or used
	// by a pod, with its labels (kubernetes.io/metadata.name included).
	Namespaces []*typesv1.Namespace
}

// Loader reads workload files one after the other and resolves references
// between them (pods to nodes, volumes to claims, volumes and storage
// classes, priority class names) when Documents is called.
type Loader struct {
	pods        []*pendingPod
	daemonSets  []*pendingPod
	nodes       []*typesv1.Node
	nodeSources map[string]Source
	namespaces  map[string]map[string]string
	nsSources   map[string]Source

	pvcs           map[string]*corev1.PersistentVolumeClaim // namespace/name
	pvs            map[string]*corev1.PersistentVolume
	storageClasses map[string]*storagev1.StorageClass
	priorities     map[string]int32
	defaultPrio    *int32
	seen           map[string]Source // kind/namespace/name of every object
}

// pendingPod is a converted pod whose references are not resolved yet.
type pendingPod struct {
	pod               *typesv1.Pod
	src               Source
	specPath          string
	claims            []claimRef
	nodeName          string
	priorityClassName string
	hasPriority       bool
}

// claimRef is a pod volume backed by a PersistentVolumeClaim: one named in
// the pod, or one a StatefulSet or ephemeral volume template creates.
type claimRef struct {
	volume    string
	claimName string
	template  *corev1.PersistentVolumeClaimSpec // when the claim is created from a template
}

// NewLoader returns an empty Loader.
func NewLoader() *Loader {
	return &Loader{
		nodeSources:    map[string]Source{},
		namespaces:     map[string]map[string]string{},
		nsSources:      map[string]Source{},
		pvcs:           map[string]*corev1.PersistentVolumeClaim{},
		pvs:            map[string]*corev1.PersistentVolume{},
		storageClasses: map[string]*storagev1.StorageClass{},
		priorities:     map[string]int32{},
		seen:           map[string]Source{},
	}
}

// Load reads one workload file and resolves it on its own.
func Load(name string, r io.Reader) (*Documents, error) {
	l := NewLoader()
	if err := l.Add(name, r); err != nil {
		return nil, err
	}
	return l.Documents()
}

// LoadPods reads one workload file and returns its pending pods.
func LoadPods(name string, r io.Reader) ([]*typesv1.Pod, error) {
	d, err := Load(name, r)
	if err != nil {
		return nil, err
	}
	return d.Pods, nil
}

// Add reads every document of one file.
func (l *Loader) Add(name string, r io.Reader) error {
	docs, err := readDocuments(name, r)
	if err != nil {
		return err
	}
	for _, d := range docs {
		objs, err := objects(name, d)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := l.addObject(o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Loader) addObject(o object) (err error) {
	defer func() {
		// The decoders and converters never panic on valid Go values, but a
		// bad document must never take the program down.
		if r := recover(); r != nil {
			err = withSource(o.src, fmt.Errorf("internal error reading the document: %v", r))
		}
	}()
	ns, err := l.register(&o)
	if err != nil {
		return err
	}
	switch o.hdr.Kind {
	case "Pod", "Deployment", "ReplicaSet", "StatefulSet", "Job", "DaemonSet":
		return l.addWorkload(o, ns)
	default:
		return l.addClusterState(o, ns)
	}
}

// register checks an object's kind and name, sets o.src.Namespace and
// records the object, refusing a second one of the same kind and name. It
// returns the object's namespace: "" for cluster-scoped kinds, and
// "default" when a namespaced object names none.
func (l *Loader) register(o *object) (string, error) {
	kind := o.hdr.Kind
	switch kind {
	case "Pod", "Deployment", "ReplicaSet", "StatefulSet", "Job", "DaemonSet", "Node", "Namespace",
		"PersistentVolumeClaim", "PersistentVolume", "StorageClass", "PriorityClass":
	default:
		return "", withSource(o.src, fmt.Errorf("unsupported kind %q (apiVersion %q): workload files hold Pod, Deployment, ReplicaSet, StatefulSet, Job, DaemonSet, Node, Namespace, PersistentVolumeClaim, PersistentVolume, StorageClass and PriorityClass documents", kind, o.hdr.APIVersion))
	}
	if o.hdr.Metadata.Name == "" {
		return "", withSource(o.src, ferr("metadata.name", "required"))
	}
	clusterScoped := kind == "Node" || kind == "Namespace" || kind == "PersistentVolume" || kind == "StorageClass" || kind == "PriorityClass"
	ns := o.hdr.Metadata.Namespace
	if clusterScoped {
		ns = ""
	} else if ns == "" {
		ns = "default"
	}
	o.src.Namespace = ns
	key := kind + "/" + ns + "/" + o.hdr.Metadata.Name
	if prev, ok := l.seen[key]; ok {
		return "", withSource(o.src, fmt.Errorf("duplicate %s %s: already defined at %s", kind, qualified(ns, o.hdr.Metadata.Name), prev))
	}
	l.seen[key] = o.src
	if ns != "" {
		l.useNamespace(ns)
	}
	return ns, nil
}

// addWorkload adds a Pod, or the pods a controller would create, or a
// DaemonSet.
func (l *Loader) addWorkload(o object, ns string) error {
	switch o.hdr.Kind {
	case "Pod":
		var p corev1.Pod
		if err := decodeStrict(o, &p); err != nil {
			return err
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return nil // terminal pods hold no resources
		}
		pp, err := l.podFromTemplate(o.src, ns, p.Name, p.Labels, p.Annotations, &p.Spec, "spec")
		if err != nil {
			return err
		}
		pp.pod.Owner, pp.pod.DaemonSet = controllerOf(ns, p.OwnerReferences)
		pp.claims = podClaims(&p.Spec, p.Name, nil, "")
		pp.nodeName = p.Spec.NodeName
		return l.addPod(pp)
	case "Deployment":
		var d appsv1.Deployment
		if err := decodeStrict(o, &d); err != nil {
			return err
		}
		return l.expandDeployment(o.src, ns, &d)
	case "ReplicaSet":
		var rs appsv1.ReplicaSet
		if err := decodeStrict(o, &rs); err != nil {
			return err
		}
		return l.expandReplicaSet(o.src, ns, &rs)
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := decodeStrict(o, &s); err != nil {
			return err
		}
		return l.expandStatefulSet(o.src, ns, &s)
	case "Job":
		var j batchv1.Job
		if err := decodeStrict(o, &j); err != nil {
			return err
		}
		return l.expandJob(o.src, ns, &j)
	case "DaemonSet":
		var d appsv1.DaemonSet
		if err := decodeStrict(o, &d); err != nil {
			return err
		}
		return l.addDaemonSet(o.src, ns, &d)
	}
	return nil
}

// addClusterState records a Node, Namespace, PersistentVolumeClaim,
// PersistentVolume, StorageClass or PriorityClass for Documents to resolve
// references against.
func (l *Loader) addClusterState(o object, ns string) error {
	switch o.hdr.Kind {
	case "Node":
		var n corev1.Node
		if err := decodeStrict(o, &n); err != nil {
			return err
		}
		node, err := convertNode(&n)
		if err != nil {
			return withSource(o.src, err)
		}
		l.nodes = append(l.nodes, node)
		l.nodeSources[node.Name] = o.src
	case "Namespace":
		var n corev1.Namespace
		if err := decodeStrict(o, &n); err != nil {
			return err
		}
		l.useNamespace(n.Name)
		for k, v := range n.Labels {
			l.namespaces[n.Name][k] = v
		}
		l.nsSources[n.Name] = o.src
	case "PersistentVolumeClaim":
		var c corev1.PersistentVolumeClaim
		if err := decodeStrict(o, &c); err != nil {
			return err
		}
		l.pvcs[ns+"/"+c.Name] = &c
	case "PersistentVolume":
		var v corev1.PersistentVolume
		if err := decodeStrict(o, &v); err != nil {
			return err
		}
		if v.Spec.NodeAffinity != nil && v.Spec.NodeAffinity.Required != nil {
			if _, err := nodeSelectorTerms(v.Spec.NodeAffinity.Required.NodeSelectorTerms, "spec.nodeAffinity.required.nodeSelectorTerms"); err != nil {
				return withSource(o.src, err)
			}
		}
		l.pvs[v.Name] = &v
	case "StorageClass":
		var sc storagev1.StorageClass
		if err := decodeStrict(o, &sc); err != nil {
			return err
		}
		if _, err := allowedTopologies(&sc); err != nil {
			return withSource(o.src, err)
		}
		l.storageClasses[sc.Name] = &sc
	case "PriorityClass":
		var pc schedulingv1.PriorityClass
		if err := decodeStrict(o, &pc); err != nil {
			return err
		}
		l.priorities[pc.Name] = pc.Value
		if pc.GlobalDefault {
			v := pc.Value
			l.defaultPrio = &v
		}
	}
	return nil
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func (l *Loader) useNamespace(ns string) {
	if _, ok := l.namespaces[ns]; !ok {
		l.namespaces[ns] = map[string]string{"kubernetes.io/metadata.name": ns}
	}
}

// podFromTemplate converts a pod spec with its metadata.
func (l *Loader) podFromTemplate(src Source, ns, name string, labels, annotations map[string]string, spec *corev1.PodSpec, path string) (*pendingPod, error) {
	p, err := convertPodSpec(spec, path)
	if err != nil {
		return nil, withSource(src, err)
	}
	p.Namespace = ns
	p.Name = name
	p.Labels = copyMap(labels)
	p.Annotations = copyMap(annotations)
	return &pendingPod{
		pod:               p,
		src:               src,
		specPath:          path,
		priorityClassName: spec.PriorityClassName,
		hasPriority:       spec.Priority != nil,
	}, nil
}

func (l *Loader) addPod(pp *pendingPod) error {
	if len(l.pods) >= MaxPods {
		return withSource(pp.src, fmt.Errorf("too many pods: at most %d can be planned at once", MaxPods))
	}
	key := "Pod/" + pp.pod.Namespace + "/" + pp.pod.Name
	if prev, ok := l.seen[key]; ok && prev != pp.src {
		return withSource(pp.src, fmt.Errorf("duplicate pod %s/%s: already defined at %s", pp.pod.Namespace, pp.pod.Name, prev))
	}
	l.seen[key] = pp.src
	l.pods = append(l.pods, pp)
	return nil
}

// controllerOf returns the owner string of a pod's controller and whether
// it is a DaemonSet.
func controllerOf(ns string, refs []metav1.OwnerReference) (string, bool) {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r.Kind + "/" + ns + "/" + r.Name, r.Kind == "DaemonSet"
		}
	}
	return "", false
}

// Documents resolves references between everything added and returns the
// result. It may be called once.
func (l *Loader) Documents() (*Documents, error) {
	d := &Documents{}
	nodeByName := make(map[string]*typesv1.Node, len(l.nodes))
	for _, n := range l.nodes {
		nodeByName[n.Name] = n
	}
	for _, pp := range l.pods {
		if err := l.resolve(pp); err != nil {
			return nil, err
		}
		if pp.nodeName != "" {
			n, ok := nodeByName[pp.nodeName]
			if !ok {
				return nil, withSource(pp.src, ferr(pp.specPath+".nodeName", "the pod is bound to node %q, which no Node document defines: pass the nodes too (or drop spec.nodeName to plan the pod as pending)", pp.nodeName))
			}
			n.Pods = append(n.Pods, pp.pod)
			continue
		}
		d.Pods = append(d.Pods, pp.pod)
		d.PodSources = append(d.PodSources, pp.src)
	}
	for _, pp := range l.daemonSets {
		if err := l.resolve(pp); err != nil {
			return nil, err
		}
		d.DaemonSets = append(d.DaemonSets, &typesv1.DaemonSet{Namespace: pp.pod.Namespace, Name: pp.src.Name, Template: pp.pod})
		d.DaemonSetSources = append(d.DaemonSetSources, pp.src)
	}
	d.Nodes = l.nodes
	for _, n := range l.nodes {
		d.NodeSources = append(d.NodeSources, l.nodeSources[n.Name])
	}
	for _, name := range sortedKeys(l.namespaces) {
		d.Namespaces = append(d.Namespaces, &typesv1.Namespace{Name: name, Labels: l.namespaces[name]})
	}
	return d, nil
}

// resolve fills in a pod's priority and volume topology.
func (l *Loader) resolve(pp *pendingPod) error {
	if !pp.hasPriority {
		if pp.priorityClassName != "" {
			v, ok := l.priorities[pp.priorityClassName]
			switch {
			case ok:
				pp.pod.Priority = v
			case pp.priorityClassName == "system-node-critical":
				pp.pod.Priority = 2000001000
			case pp.priorityClassName == "system-cluster-critical":
				pp.pod.Priority = 2000000000
			}
			// An unknown class is left at 0: the cluster defines it.
		} else if l.defaultPrio != nil {
			pp.pod.Priority = *l.defaultPrio
		}
	}
	for _, c := range pp.claims {
		vt, err := l.volumeTopology(pp.pod.Namespace, c)
		if err != nil {
			return withSource(pp.src, err)
		}
		if vt != nil {
			pp.pod.Volumes = append(pp.pod.Volumes, vt)
		}
	}
	return nil
}
