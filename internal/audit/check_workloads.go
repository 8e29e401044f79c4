package audit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// workload is a Deployment, StatefulSet, DaemonSet or standalone Pod with
// the pod spec it runs.
type workload struct {
	obj      Object
	replicas int32
	labels   map[string]string
	spec     *corev1.PodSpec
}

// workloads lists the Deployments and StatefulSets, then (when asked) the
// DaemonSets, then the pods no Deployment, StatefulSet or DaemonSet in the
// inputs accounts for.
func workloads(in *Inputs, daemonSets bool) []workload {
	var out []workload
	for i := range in.Deployments {
		d := &in.Deployments[i]
		out = append(out, workload{obj: Object{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}, replicas: replicas(d.Spec.Replicas), labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec})
	}
	for i := range in.StatefulSets {
		s := &in.StatefulSets[i]
		out = append(out, workload{obj: Object{Kind: "StatefulSet", Namespace: s.Namespace, Name: s.Name}, replicas: replicas(s.Spec.Replicas), labels: s.Spec.Template.Labels, spec: &s.Spec.Template.Spec})
	}
	if daemonSets {
		for i := range in.DaemonSets {
			d := &in.DaemonSets[i]
			out = append(out, workload{obj: Object{Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name}, replicas: 1, labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec})
		}
	}
	for i := range in.Pods {
		p := &in.Pods[i]
		if templated(p) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, workload{obj: Object{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}, replicas: 1, labels: p.Labels, spec: &p.Spec})
	}
	return out
}

// templated reports whether a pod comes from a controller whose template
// the checks already see (ReplicaSets stand for their Deployments).
func templated(p *corev1.Pod) bool {
	if ref := metav1.GetControllerOf(p); ref != nil {
		switch ref.Kind {
		case "ReplicaSet", "StatefulSet", "DaemonSet":
			return true
		}
	}
	return false
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

const (
	pdbWhy = "Consolidation, drift, expiry and Spot interruptions drain nodes. Without a PodDisruptionBudget or a topology spread, all replicas can sit on one node and be evicted together, taking the service down."
	pdbFix = "Add a PodDisruptionBudget selecting the pods (minAvailable or maxUnavailable), and spread the replicas with topologySpreadConstraints across zones and nodes."
)

// checkDisruptionBudgets flags Deployments and StatefulSets of more than
// one replica with neither a PodDisruptionBudget selecting their pods nor a
// topology spread constraint.
func checkDisruptionBudgets(in *Inputs, r *Report) {
	for _, w := range workloads(in, false) {
		if w.obj.Kind == "Pod" || w.replicas < 2 || len(w.spec.TopologySpreadConstraints) > 0 || hasPDB(in, w.obj.Namespace, w.labels) {
			continue
		}
		r.add(Finding{
			Check: CheckDisruptionBudget, Severity: SeverityHigh, Object: w.obj,
			Message: fmt.Sprintf("%d replicas without a PodDisruptionBudget or topologySpreadConstraints", w.replicas),
			Why:     pdbWhy, Fix: pdbFix,
		})
	}
}

// hasPDB reports whether a PodDisruptionBudget of namespace ns selects pods
// with these labels (an empty selector selects every pod).
func hasPDB(in *Inputs, ns string, podLabels map[string]string) bool {
	for _, p := range in.PDBs {
		if p.Namespace != ns || p.Spec.Selector == nil {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && s.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

const (
	requestsWhy = "The node autoscaler sizes and packs nodes by resource requests. A container without them counts as free: nodes are launched too small, consolidation packs pods onto nodes they then starve, and evictions follow."
	requestsFix = "Set resources.requests.cpu and resources.requests.memory on every container, from observed usage (a VPA recommendation helps); or give the namespace a LimitRange with default requests."
)

// checkResourceRequests flags pod templates and standalone pods with a
// container that requests neither cpu nor memory, or only one of them. A
// limit counts as a request, as the API server defaults one to the other.
func checkResourceRequests(in *Inputs, r *Report) {
	for _, w := range workloads(in, true) {
		var missing []string
		for _, c := range w.spec.Containers {
			var lacks []string
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := request(c, res); !ok {
					lacks = append(lacks, string(res))
				}
			}
			if len(lacks) > 0 {
				missing = append(missing, fmt.Sprintf("container %s requests no %s", c.Name, strings.Join(lacks, " or ")))
			}
		}
		if len(missing) > 0 {
			r.add(Finding{Check: CheckResourceRequests, Severity: SeverityHigh, Object: w.obj, Message: strings.Join(missing, "; "), Why: requestsWhy, Fix: requestsFix})
		}
	}
}

// request returns a container's request of res (its limit when it has no
// request), and whether it has either.
func request(c corev1.Container, res corev1.ResourceName) (string, bool) {
	if q, ok := c.Resources.Requests[res]; ok {
		return q.String(), true
	}
	if q, ok := c.Resources.Limits[res]; ok {
		return q.String(), true
	}
	return "", false
}

const (
	memoryWhy = "Consolidation packs pods by their requests. A pod that uses more memory than it requests is safe on a roomy node but gets OOM-killed, or evicted under memory pressure, once consolidation moves it to a tightly packed one."
	memoryFix = "Set resources.limits.memory equal to resources.requests.memory on every container, sized to the peak the container really uses."
)

// checkMemoryLimits flags Deployments, StatefulSets and standalone pods
// that can run on a NodePool consolidating underutilized nodes
// (WhenEmptyOrUnderutilized, the default) and have a container whose memory
// limit differs from its memory request (or is missing).
func checkMemoryLimits(in *Inputs, r *Report) {
	var pools []*karpv1.NodePool
	for _, np := range sortedPools(in.NodePools) {
		if np.Spec.Disruption.ConsolidationPolicy.ConsolidatesUnderutilized() {
			pools = append(pools, np)
		}
	}
	if len(pools) == 0 {
		r.skip(CheckMemoryLimits, "no NodePool consolidates underutilized nodes")
		return
	}
	for _, w := range workloads(in, false) {
		pool := firstPoolFor(w.spec, pools)
		if pool == "" {
			continue
		}
		var bad []string
		for _, c := range w.spec.Containers {
			if msg := memoryMismatch(c); msg != "" {
				bad = append(bad, msg)
			}
		}
		if len(bad) > 0 {
			r.add(Finding{
				Check: CheckMemoryLimits, Severity: SeverityRecommended, Object: w.obj,
				Message: fmt.Sprintf("can run on NodePool %s (WhenEmptyOrUnderutilized): %s", pool, strings.Join(bad, "; ")),
				Why:     memoryWhy, Fix: memoryFix,
			})
		}
	}
}

func memoryMismatch(c corev1.Container) string {
	lim, hasLim := c.Resources.Limits[corev1.ResourceMemory]
	req, hasReq := c.Resources.Requests[corev1.ResourceMemory]
	switch {
	case !hasLim:
		return fmt.Sprintf("container %s has no memory limit", c.Name)
	case hasReq && req.Cmp(lim) != 0:
		return fmt.Sprintf("container %s requests %s of memory but is limited to %s", c.Name, req.String(), lim.String())
	}
	return ""
}

// firstPoolFor returns the first of pools a pod spec could be scheduled
// to, or "".
func firstPoolFor(spec *corev1.PodSpec, pools []*karpv1.NodePool) string {
	for _, np := range pools {
		if canRunOn(spec, np) {
			return np.Name
		}
	}
	return ""
}

// wellKnownPrefixes are label prefixes every node launched by a NodePool
// carries a value for, whether the NodePool constrains them or not.
var wellKnownPrefixes = []string{"kubernetes.io/", "node.kubernetes.io/", "topology.kubernetes.io/", "karpenter.sh/", "karpenter.k8s.aws/", "topology.k8s.aws/"}

// canRunOn reports whether a pod with this spec could run on a node of the
// NodePool: it tolerates the NodePool's taints, and its nodeSelector and
// one of its required node affinity terms (if any) agree with the
// NodePool's requirements and labels.
func canRunOn(spec *corev1.PodSpec, np *karpv1.NodePool) bool {
	if !toleratesAll(spec.Tolerations, np.Spec.Template.Spec.Taints) {
		return false
	}
	pool := poolRequirements(np)
	pool[karpv1.NodePoolLabelKey] = &valueSet{exists: true, in: map[string]bool{np.Name: true}}
	var terms []corev1.NodeSelectorTerm
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms = a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	}
	if len(terms) == 0 {
		terms = []corev1.NodeSelectorTerm{{}}
	}
	for _, t := range terms {
		pod := requirementSet{}
		for k, v := range spec.NodeSelector {
			pod.get(k).add(corev1.NodeSelectorOpIn, []string{v})
		}
		for _, e := range t.MatchExpressions {
			pod.get(e.Key).add(e.Operator, e.Values)
		}
		if podFits(pod, pool) {
			return true
		}
	}
	return false
}

func (rs requirementSet) get(k string) *valueSet {
	if rs[k] == nil {
		rs[k] = &valueSet{}
	}
	return rs[k]
}

// podFits reports whether a pod's node requirements agree with a NodePool:
// keys the NodePool constrains must intersect; well-known labels it does not
// constrain can take any value; other labels are absent from its nodes.
func podFits(pod, pool requirementSet) bool {
	for k, want := range pod {
		if have, ok := pool[k]; ok {
			if want.intersect(have).empty() {
				return false
			}
			continue
		}
		if !wellKnown(k) && want.exists {
			return false
		}
	}
	return true
}

func wellKnown(k string) bool {
	for _, p := range wellKnownPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// toleratesAll reports whether tolerations tolerate every NoSchedule and
// NoExecute taint.
func toleratesAll(tols []corev1.Toleration, taints []corev1.Taint) bool {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		ok := false
		for j := range tols {
			if tolerates(&tols[j], t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// tolerates reports whether a toleration tolerates a taint, as the
// scheduler matches them.
func tolerates(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key == "" {
		return tol.Operator == corev1.TolerationOpExists
	}
	if tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return tol.Value == t.Value
	}
	return false
}

// systemNamespaces are skipped by the LimitRange check.
var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

const (
	limitRangeWhy = "A LimitRange gives containers that set no requests or limits sane defaults, so a forgotten resources block does not become a pod the autoscaler cannot size or consolidation cannot place safely."
	limitRangeFix = "Add a LimitRange to the namespace with default and defaultRequest for cpu and memory (type: Container)."
)

// checkLimitRanges flags namespaces (other than kube-system, kube-public and
// kube-node-lease) without a LimitRange.
func checkLimitRanges(in *Inputs, r *Report) {
	if len(in.Namespaces) == 0 {
		r.skip(CheckLimitRange, "no Namespace objects in the inputs")
		return
	}
	has := map[string]bool{}
	for _, lr := range in.LimitRanges {
		has[lr.Namespace] = true
	}
	names := make([]string, 0, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		names = append(names, ns.Name)
	}
	sort.Strings(names)
	for _, ns := range names {
		if systemNamespaces[ns] || has[ns] {
			continue
		}
		r.add(Finding{Check: CheckLimitRange, Severity: SeverityRecommended, Object: Object{Kind: "Namespace", Name: ns}, Message: "no LimitRange", Why: limitRangeWhy, Fix: limitRangeFix})
	}
}

const (
	coreDNSNamespace = "kube-system"
	coreDNSName      = "coredns"
	coreDNSWhy       = "Consolidation and Spot interruptions move CoreDNS pods often. Without lameduck a terminating CoreDNS pod stops answering while clients still send to it, and without a readiness probe a new pod gets queries before it can answer: DNS lookups fail during every move."
	coreDNSFix       = "In the Corefile (ConfigMap kube-system/coredns) configure the health plugin with a lameduck period (health { lameduck 5s }), and give the coredns container a readinessProbe on the ready plugin (HTTP GET :8181/ready)."
)

// lameduckRE matches a lameduck setting with its duration.
var lameduckRE = regexp.MustCompile(`(?m)^[^#\n]*\blameduck\s+\S+`)

// checkCoreDNS flags a CoreDNS Deployment (kube-system/coredns) without a
// readiness probe, and its Corefile without a lameduck period.
func checkCoreDNS(in *Inputs, r *Report) {
	found := false
	for i := range in.Deployments {
		d := &in.Deployments[i]
		if d.Namespace != coreDNSNamespace || d.Name != coreDNSName {
			continue
		}
		found = true
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.ReadinessProbe == nil {
				r.add(Finding{Check: CheckCoreDNS, Severity: SeverityRecommended, Object: Object{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}, Message: fmt.Sprintf("container %s has no readinessProbe", c.Name), Why: coreDNSWhy, Fix: coreDNSFix})
			}
		}
	}
	if !found {
		r.skip(CheckCoreDNS, "no CoreDNS Deployment kube-system/coredns in the inputs")
		return
	}
	cmObj := Object{Kind: "ConfigMap", Namespace: coreDNSNamespace, Name: coreDNSName}
	for _, cm := range in.ConfigMaps {
		if cm.Namespace != coreDNSNamespace || cm.Name != coreDNSName {
			continue
		}
		if !lameduckRE.MatchString(cm.Data["Corefile"]) {
			r.add(Finding{Check: CheckCoreDNS, Severity: SeverityRecommended, Object: cmObj, Message: "the Corefile sets no lameduck period", Why: coreDNSWhy, Fix: coreDNSFix})
		}
		return
	}
	if in.FromLiveCluster {
		r.add(Finding{Check: CheckCoreDNS, Severity: SeverityRecommended, Object: cmObj, Message: "ConfigMap not found, so no Corefile sets a lameduck period", Why: coreDNSWhy, Fix: coreDNSFix})
		return
	}
	r.skip(CheckCoreDNS, "no ConfigMap kube-system/coredns in the inputs to show the Corefile")
}
