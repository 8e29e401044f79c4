package kubeyaml

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"

	"google.golang.org/protobuf/proto"
)

// Labels the controllers put on the pods they create.
const (
	LabelPodTemplateHash       = "pod-template-hash"
	LabelControllerRevision    = "controller-revision-hash"
	LabelStatefulSetPodName    = "statefulset.kubernetes.io/pod-name"
	LabelPodIndex              = "apps.kubernetes.io/pod-index"
	LabelJobName               = "batch.kubernetes.io/job-name"
	LabelLegacyJobName         = "job-name"
	LabelJobCompletionIndex    = "batch.kubernetes.io/job-completion-index"
	AnnotationJobCompletionIdx = "batch.kubernetes.io/job-completion-index"
)

// templateHash is a short deterministic hash of a pod template, rendered
// with Kubernetes' safe alphabet as pod-template-hash values are.
func templateHash(t *corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

func replicas(r *int32, path string) (int, error) {
	if r == nil {
		return 1, nil
	}
	if *r < 0 {
		return 0, ferr(path, "must not be negative, not %d", *r)
	}
	if int(*r) > MaxPods {
		return 0, ferr(path, "%d is more than the %d pods that can be planned at once", *r, MaxPods)
	}
	return int(*r), nil
}

// checkSelector checks that a controller's selector selects its template.
func checkSelector(sel *metav1.LabelSelector, tmplLabels map[string]string) error {
	if sel == nil {
		return nil
	}
	if _, err := labelSelector(sel, "spec.selector"); err != nil {
		return err
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ferr("spec.selector", "%v", err)
	}
	if s.Empty() {
		return ferr("spec.selector", "must not be empty")
	}
	if !s.Matches(labels.Set(tmplLabels)) {
		return ferr("spec.template.metadata.labels", "selector does not match template labels")
	}
	return nil
}

// expandTemplate converts a controller's template once and stamps out n
// pods from it.
func (l *Loader) expandTemplate(src Source, ns string, t *corev1.PodTemplateSpec, n int, each func(i int, pp *pendingPod)) error {
	tmpl, err := l.podFromTemplate(src, ns, "", t.Labels, t.Annotations, &t.Spec, "spec.template.spec")
	if err != nil {
		return err
	}
	if len(l.pods)+n > MaxPods {
		return withSource(src, fmt.Errorf("too many pods: at most %d can be planned at once", MaxPods))
	}
	for i := 0; i < n; i++ {
		pp := *tmpl
		pp.pod = proto.Clone(tmpl.pod).(*typesv1.Pod)
		if pp.pod.Labels == nil {
			pp.pod.Labels = map[string]string{}
		}
		each(i, &pp)
		if err := l.addPod(&pp); err != nil {
			return err
		}
	}
	return nil
}

func (l *Loader) expandDeployment(src Source, ns string, d *appsv1.Deployment) error {
	n, err := replicas(d.Spec.Replicas, "spec.replicas")
	if err != nil {
		return withSource(src, err)
	}
	if err := checkSelector(d.Spec.Selector, d.Spec.Template.Labels); err != nil {
		return withSource(src, err)
	}
	hash := templateHash(&d.Spec.Template)
	owner := "Deployment/" + ns + "/" + d.Name
	return l.expandTemplate(src, ns, &d.Spec.Template, n, func(i int, pp *pendingPod) {
		pp.pod.Name = fmt.Sprintf("%s-%s-%d", d.Name, hash, i)
		pp.pod.Owner = owner
		pp.pod.Labels[LabelPodTemplateHash] = hash
		pp.claims = podClaims(&d.Spec.Template.Spec, pp.pod.Name, nil, "")
	})
}

func (l *Loader) expandReplicaSet(src Source, ns string, rs *appsv1.ReplicaSet) error {
	n, err := replicas(rs.Spec.Replicas, "spec.replicas")
	if err != nil {
		return withSource(src, err)
	}
	if err := checkSelector(rs.Spec.Selector, rs.Spec.Template.Labels); err != nil {
		return withSource(src, err)
	}
	owner := "ReplicaSet/" + ns + "/" + rs.Name
	return l.expandTemplate(src, ns, &rs.Spec.Template, n, func(i int, pp *pendingPod) {
		pp.pod.Name = fmt.Sprintf("%s-%d", rs.Name, i)
		pp.pod.Owner = owner
		pp.claims = podClaims(&rs.Spec.Template.Spec, pp.pod.Name, nil, "")
	})
}

func (l *Loader) expandStatefulSet(src Source, ns string, s *appsv1.StatefulSet) error {
	n, err := replicas(s.Spec.Replicas, "spec.replicas")
	if err != nil {
		return withSource(src, err)
	}
	if err := checkSelector(s.Spec.Selector, s.Spec.Template.Labels); err != nil {
		return withSource(src, err)
	}
	start := 0
	if s.Spec.Ordinals != nil {
		if s.Spec.Ordinals.Start < 0 {
			return withSource(src, ferr("spec.ordinals.start", "must not be negative"))
		}
		start = int(s.Spec.Ordinals.Start)
	}
	for i, t := range s.Spec.VolumeClaimTemplates {
		if t.Name == "" {
			return withSource(src, ferr(fmt.Sprintf("spec.volumeClaimTemplates[%d].metadata.name", i), "required"))
		}
	}
	revision := s.Name + "-" + templateHash(&s.Spec.Template)
	owner := "StatefulSet/" + ns + "/" + s.Name
	return l.expandTemplate(src, ns, &s.Spec.Template, n, func(i int, pp *pendingPod) {
		ordinal := strconv.Itoa(start + i)
		pp.pod.Name = s.Name + "-" + ordinal
		pp.pod.Owner = owner
		pp.pod.Labels[LabelControllerRevision] = revision
		pp.pod.Labels[LabelStatefulSetPodName] = pp.pod.Name
		pp.pod.Labels[LabelPodIndex] = ordinal
		pp.claims = podClaims(&s.Spec.Template.Spec, pp.pod.Name, s.Spec.VolumeClaimTemplates, "-"+s.Name+"-"+ordinal)
	})
}

func (l *Loader) expandJob(src Source, ns string, j *batchv1.Job) error {
	n, err := replicas(j.Spec.Parallelism, "spec.parallelism")
	if err != nil {
		return withSource(src, err)
	}
	if j.Spec.Completions != nil {
		c, err := replicas(j.Spec.Completions, "spec.completions")
		if err != nil {
			return withSource(src, err)
		}
		n = min(n, c)
	}
	indexed := j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion
	if indexed && j.Spec.Completions == nil {
		return withSource(src, ferr("spec.completions", "required when completionMode is Indexed"))
	}
	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		n = 0
	}
	owner := "Job/" + ns + "/" + j.Name
	return l.expandTemplate(src, ns, &j.Spec.Template, n, func(i int, pp *pendingPod) {
		idx := strconv.Itoa(i)
		pp.pod.Name = j.Name + "-" + idx
		pp.pod.Owner = owner
		pp.pod.Labels[LabelJobName] = j.Name
		pp.pod.Labels[LabelLegacyJobName] = j.Name
		if indexed {
			pp.pod.Labels[LabelJobCompletionIndex] = idx
			if pp.pod.Annotations == nil {
				pp.pod.Annotations = map[string]string{}
			}
			pp.pod.Annotations[AnnotationJobCompletionIdx] = idx
		}
		pp.claims = podClaims(&j.Spec.Template.Spec, pp.pod.Name, nil, "")
	})
}

// daemonSetTolerations are the tolerations the DaemonSet controller adds to
// every DaemonSet pod.
var daemonSetTolerations = []struct{ key, effect string }{
	{"node.kubernetes.io/not-ready", "NoExecute"},
	{"node.kubernetes.io/unreachable", "NoExecute"},
	{"node.kubernetes.io/disk-pressure", "NoSchedule"},
	{"node.kubernetes.io/memory-pressure", "NoSchedule"},
	{"node.kubernetes.io/pid-pressure", "NoSchedule"},
	{"node.kubernetes.io/unschedulable", "NoSchedule"},
}

func (l *Loader) addDaemonSet(src Source, ns string, d *appsv1.DaemonSet) error {
	if err := checkSelector(d.Spec.Selector, d.Spec.Template.Labels); err != nil {
		return withSource(src, err)
	}
	pp, err := l.podFromTemplate(src, ns, d.Name, d.Spec.Template.Labels, d.Spec.Template.Annotations, &d.Spec.Template.Spec, "spec.template.spec")
	if err != nil {
		return err
	}
	pp.pod.Owner = "DaemonSet/" + ns + "/" + d.Name
	pp.pod.DaemonSet = true
	extra := daemonSetTolerations
	if d.Spec.Template.Spec.HostNetwork {
		extra = append(extra[:len(extra):len(extra)], struct{ key, effect string }{"node.kubernetes.io/network-unavailable", "NoSchedule"})
	}
	for _, t := range extra {
		have := false
		for _, pt := range pp.pod.Tolerations {
			if pt.Key == t.key && pt.Effect == t.effect && pt.Operator == "Exists" {
				have = true
			}
		}
		if !have {
			pp.pod.Tolerations = append(pp.pod.Tolerations, &typesv1.Toleration{Key: t.key, Operator: "Exists", Effect: t.effect})
		}
	}
	pp.claims = podClaims(&d.Spec.Template.Spec, d.Name, nil, "")
	l.daemonSets = append(l.daemonSets, pp)
	return nil
}
