package audit

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// Labels and names that identify controllers and nodes.
const (
	labelAppName       = "app.kubernetes.io/name"
	labelEKSNodegroup  = "eks.amazonaws.com/nodegroup"
	labelEKSCompute    = "eks.amazonaws.com/compute-type"
	computeTypeFargate = "fargate"
	karpenterName      = "karpenter"
	nthName            = "aws-node-termination-handler"
	flotillaQueueFlag  = "interruption-queue"
	flotillaQueueEnv   = "FLOTILLA_INTERRUPTION_QUEUE"
	karpenterQueueEnv  = "INTERRUPTION_QUEUE"
	flotillaInterrupt  = "flotilla-interruption"
	flotillaWatcher    = "flotilla-watcher"
)

// flotillaComponents are the names of Flotilla's Deployments.
var flotillaComponents = []string{flotillaWatcher, "flotilla-launcher", "flotilla-solver", flotillaInterrupt}

// controller is a Deployment of Flotilla or Karpenter.
type controller struct {
	dep *appsv1.Deployment
	// name is the component: one of flotillaComponents, or "karpenter".
	name string
}

func (c controller) flotilla() bool { return c.name != karpenterName }

// appName is the app.kubernetes.io/name of a Deployment (or its pod
// template), else its name.
func appName(meta metav1.ObjectMeta, tmpl map[string]string) string {
	if v := meta.Labels[labelAppName]; v != "" {
		return v
	}
	if v := tmpl[labelAppName]; v != "" {
		return v
	}
	return meta.Name
}

// controllers finds the Flotilla and Karpenter Deployments, sorted by
// namespace and name.
func controllers(in *Inputs) []controller {
	var out []controller
	for i := range in.Deployments {
		d := &in.Deployments[i]
		name := appName(d.ObjectMeta, d.Spec.Template.Labels)
		switch {
		case name == karpenterName || d.Name == karpenterName:
			out = append(out, controller{dep: d, name: karpenterName})
		case contains(flotillaComponents, name):
			out = append(out, controller{dep: d, name: name})
		case contains(flotillaComponents, d.Name):
			out = append(out, controller{dep: d, name: d.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].dep.Namespace != out[j].dep.Namespace {
			return out[i].dep.Namespace < out[j].dep.Namespace
		}
		return out[i].dep.Name < out[j].dep.Name
	})
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

const (
	placementWhy = "A controller on a node it manages can consolidate, expire or lose that node to a Spot interruption, and then nothing is left running to launch the replacement capacity for itself or anything else."
	placementFix = "Run the controller on capacity it does not manage: a small managed node group, with required node affinity karpenter.sh/nodepool DoesNotExist (or a nodeSelector on eks.amazonaws.com/nodegroup), or an EKS Fargate profile for its namespace."
)

// checkControllerPlacement flags controller Deployments whose pods may
// land on nodes a NodePool launched, and (live) controller pods that run
// on such a node.
func checkControllerPlacement(in *Inputs, r *Report) {
	ctrls := controllers(in)
	if len(ctrls) == 0 {
		r.skip(CheckControllerPlacement, "no Flotilla or Karpenter controller Deployment in the inputs")
		return
	}
	nodes := map[string]*corev1.Node{}
	for i := range in.Nodes {
		nodes[in.Nodes[i].Name] = &in.Nodes[i]
	}
	for _, c := range ctrls {
		pods := podsOf(in, c.dep.Namespace, c.dep.Spec.Selector)
		onFargate := len(pods) > 0
		for _, p := range pods {
			n := nodes[p.Spec.NodeName]
			if n == nil || n.Labels[labelEKSCompute] != computeTypeFargate {
				onFargate = false
			}
			if n != nil && n.Labels[karpv1.NodePoolLabelKey] != "" {
				r.add(Finding{
					Check: CheckControllerPlacement, Severity: SeverityRequired,
					Object:  Object{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
					Message: fmt.Sprintf("%s pod runs on node %s, launched by NodePool %s", c.name, n.Name, n.Labels[karpv1.NodePoolLabelKey]),
					Why:     placementWhy, Fix: placementFix,
				})
			}
		}
		if onFargate || avoidsManagedNodes(&c.dep.Spec.Template.Spec) {
			continue
		}
		r.add(Finding{
			Check: CheckControllerPlacement, Severity: SeverityRequired,
			Object:  Object{Kind: "Deployment", Namespace: c.dep.Namespace, Name: c.dep.Name},
			Message: fmt.Sprintf("%s pods may be scheduled on nodes a NodePool manages: no required node affinity karpenter.sh/nodepool DoesNotExist", c.name),
			Why:     placementWhy, Fix: placementFix,
		})
	}
}

// podsOf lists the pods of namespace ns that sel selects.
func podsOf(in *Inputs, ns string, sel *metav1.LabelSelector) []*corev1.Pod {
	if sel == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return nil
	}
	var out []*corev1.Pod
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Namespace == ns && s.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// avoidsManagedNodes reports whether a pod spec keeps off nodes launched by
// a NodePool: its nodeSelector pins a managed node group or Fargate, or
// every required node affinity term does (or requires karpenter.sh/nodepool
// DoesNotExist).
func avoidsManagedNodes(spec *corev1.PodSpec) bool {
	if _, ok := spec.NodeSelector[karpv1.NodePoolLabelKey]; ok {
		return false
	}
	if spec.NodeSelector[labelEKSNodegroup] != "" || spec.NodeSelector[labelEKSCompute] == computeTypeFargate {
		return true
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return false
	}
	for _, t := range terms {
		if !termAvoidsManagedNodes(t) {
			return false
		}
	}
	return true
}

func termAvoidsManagedNodes(t corev1.NodeSelectorTerm) bool {
	for _, e := range t.MatchExpressions {
		switch {
		case e.Key == karpv1.NodePoolLabelKey && e.Operator == corev1.NodeSelectorOpDoesNotExist:
			return true
		case e.Key == labelEKSNodegroup && (e.Operator == corev1.NodeSelectorOpIn || e.Operator == corev1.NodeSelectorOpExists):
			return true
		case e.Key == labelEKSCompute && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 && e.Values[0] == computeTypeFargate:
			return true
		}
	}
	return false
}

const (
	interruptionWhy = "Spot instances get a two-minute warning before EC2 reclaims them. Without the interruption queue nobody acts on it: pods are killed with the node instead of being drained, and no replacement is launched ahead of time."
	interruptionFix = "Create the SQS queue and EventBridge rules (deploy/interruption/interruption-queue.yaml) and pass the queue to the interruption service (--interruption-queue, or FLOTILLA_INTERRUPTION_QUEUE); for Karpenter, set settings.interruptionQueue (INTERRUPTION_QUEUE)."
	nthWhy          = "aws-node-termination-handler and the controller's own interruption handling act on the same EC2 events: both cordon and drain the node, racing each other and the controller's replacement launches."
	nthFix          = "Remove aws-node-termination-handler and rely on the controller's interruption queue for Spot interruptions, rebalance recommendations and scheduled events."
)

// checkInterruption flags Spot NodePools with no interruption queue
// configured in the controller, and aws-node-termination-handler running
// beside a controller that handles interruptions itself.
func checkInterruption(in *Inputs, r *Report) {
	var spot []string
	for _, np := range sortedPools(in.NodePools) {
		if allowsSpot(np) {
			spot = append(spot, np.Name)
		}
	}
	ctrls := controllers(in)
	queued := false
	for _, c := range ctrls {
		if c.name == flotillaInterrupt || c.name == karpenterName {
			queued = queued || queueConfigured(&c.dep.Spec.Template.Spec)
		}
	}
	if len(spot) > 0 {
		checkQueues(ctrls, spot, r)
	} else {
		r.skip(CheckInterruption, "no NodePool allows Spot capacity")
	}
	if len(in.NodePools) == 0 && len(ctrls) == 0 {
		return
	}
	for _, o := range terminationHandlers(in) {
		sev := SeverityHigh
		if queued {
			sev = SeverityRequired
		}
		r.add(Finding{
			Check: CheckInterruption, Severity: sev, Object: o,
			Message: "aws-node-termination-handler runs beside the node autoscaler's own interruption handling",
			Why:     nthWhy, Fix: nthFix,
		})
	}
}

// checkQueues reports controllers that leave the Spot NodePools without an
// interruption queue.
func checkQueues(ctrls []controller, spot []string, r *Report) {
	if len(ctrls) == 0 {
		r.skip(CheckInterruption, "NodePools allow Spot, but no Flotilla or Karpenter controller Deployment is in the inputs to show the interruption queue")
		return
	}
	pools := "NodePool " + spot[0] + " allows"
	if len(spot) > 1 {
		pools = "NodePools " + strings.Join(spot, ", ") + " allow"
	}
	var firstFlotilla *appsv1.Deployment
	hasInterruption := false
	for _, c := range ctrls {
		if c.flotilla() && firstFlotilla == nil {
			firstFlotilla = c.dep
		}
		if c.name != flotillaInterrupt && c.name != karpenterName {
			continue
		}
		hasInterruption = hasInterruption || c.flotilla()
		if !queueConfigured(&c.dep.Spec.Template.Spec) {
			r.add(Finding{
				Check: CheckInterruption, Severity: SeverityRequired,
				Object:  Object{Kind: "Deployment", Namespace: c.dep.Namespace, Name: c.dep.Name},
				Message: fmt.Sprintf("no interruption queue configured while %s Spot", pools),
				Why:     interruptionWhy, Fix: interruptionFix,
			})
		}
	}
	if firstFlotilla != nil && !hasInterruption {
		r.add(Finding{
			Check: CheckInterruption, Severity: SeverityRequired,
			Object:  Object{Kind: "Deployment", Namespace: firstFlotilla.Namespace, Name: firstFlotilla.Name},
			Message: fmt.Sprintf("Flotilla runs without its interruption service (Deployment flotilla-interruption) while %s Spot", pools),
			Why:     interruptionWhy, Fix: interruptionFix,
		})
	}
}

// queueConfigured reports whether a container of the pod spec names an
// interruption queue: the --interruption-queue flag, or the
// FLOTILLA_INTERRUPTION_QUEUE or INTERRUPTION_QUEUE environment variable.
func queueConfigured(spec *corev1.PodSpec) bool {
	for _, c := range spec.Containers {
		if flagValue(append(append([]string{}, c.Command...), c.Args...), flotillaQueueFlag) != "" {
			return true
		}
		for _, e := range c.Env {
			if (e.Name == flotillaQueueEnv || e.Name == karpenterQueueEnv) && (strings.TrimSpace(e.Value) != "" || e.ValueFrom != nil) {
				return true
			}
		}
	}
	return false
}

// flagValue returns the value of --name (or -name) in args, as name=value
// or as the next argument.
func flagValue(args []string, name string) string {
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if len(trimmed) == len(a) || len(a)-len(trimmed) > 2 {
			continue
		}
		if v, ok := strings.CutPrefix(trimmed, name+"="); ok {
			return strings.TrimSpace(v)
		}
		if trimmed == name && i+1 < len(args) {
			return strings.TrimSpace(args[i+1])
		}
	}
	return ""
}

// terminationHandlers lists the DaemonSets and Deployments of
// aws-node-termination-handler.
func terminationHandlers(in *Inputs) []Object {
	var out []Object
	for _, d := range in.DaemonSets {
		if appName(d.ObjectMeta, d.Spec.Template.Labels) == nthName || strings.Contains(d.Name, nthName) {
			out = append(out, Object{Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name})
		}
	}
	for _, d := range in.Deployments {
		if appName(d.ObjectMeta, d.Spec.Template.Labels) == nthName || strings.Contains(d.Name, nthName) {
			out = append(out, Object{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name})
		}
	}
	return out
}
