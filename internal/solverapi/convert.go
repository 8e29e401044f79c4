package solverapi

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/flotilla-io/flotilla/internal/solver"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// The functions below assume a validated request: a quantity that does
// not parse counts as zero rather than failing.
//
// Converting is linear in the request but not cheap (over a second for
// 200,000 pods), so the service's conversions take the call's context and
// look at it once per pod, node, NodeClaim or instance type: once it ends
// they stop, leaving their output unfinished, and return the context's
// error (conversionErr).

// SolveProblem converts a validated SolveRequest into the solver's input.
func SolveProblem(req *solverv1.SolveRequest) *solver.Problem {
	p, _ := solveProblem(context.Background(), req)
	return p
}

// solveProblem is SolveProblem that stops when ctx ends.
func solveProblem(ctx context.Context, req *solverv1.SolveRequest) (*solver.Problem, error) {
	p := clusterProblem(ctx, req.GetNodePools(), req.GetInstanceTypes(), req.GetNodes(), req.GetNodeClaims(), req.GetDaemonSets(), req.GetNamespaces(), req.GetOptions())
	if n := len(req.GetPods()); n > 0 && ctx.Err() == nil {
		p.Pods = make([]*solver.Pod, n)
		for i, pod := range req.GetPods() {
			if ctx.Err() != nil {
				break
			}
			p.Pods[i] = podFromProto(pod, "default")
		}
	}
	if err := conversionErr(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// conversionErr is the context's error, wrapped, once ctx has ended.
func conversionErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("converting: %w", err)
	}
	return nil
}

// ConsolidateProblem converts a validated ConsolidateRequest into the
// solver's input; it has no pending pods.
func ConsolidateProblem(req *solverv1.ConsolidateRequest) *solver.Problem {
	p, _ := consolidateProblem(context.Background(), req)
	return p
}

// consolidateProblem is ConsolidateProblem that stops when ctx ends.
func consolidateProblem(ctx context.Context, req *solverv1.ConsolidateRequest) (*solver.Problem, error) {
	p := clusterProblem(ctx, req.GetNodePools(), req.GetInstanceTypes(), req.GetNodes(), req.GetNodeClaims(), req.GetDaemonSets(), req.GetNamespaces(), req.GetOptions())
	if err := conversionErr(ctx); err != nil {
		return nil, err
	}
	for _, b := range req.GetPodDisruptionBudgets() {
		p.PodDisruptionBudgets = append(p.PodDisruptionBudgets, solver.PodDisruptionBudget{
			Namespace:          namespaceOr(b.GetNamespace(), "default"),
			Name:               b.GetName(),
			Selector:           labelSelectorFromProto(b.GetSelector()),
			DisruptionsAllowed: int(b.GetDisruptionsAllowed()),
		})
	}
	for _, a := range req.GetDisruptionAllowances() {
		if p.DisruptionAllowance == nil {
			p.DisruptionAllowance = map[string]int{}
		}
		p.DisruptionAllowance[a.GetNodePool()] = int(a.GetMaxNodes())
	}
	return p, nil
}

func clusterProblem(ctx context.Context, pools []*typesv1.NodePool, types []*typesv1.InstanceType, nodes []*typesv1.Node, claims []*typesv1.NodeClaim, daemonSets []*typesv1.DaemonSet, namespaces []*typesv1.Namespace, opts *solverv1.SolveOptions) *solver.Problem {
	p := &solver.Problem{
		Options: solver.Options{
			IgnorePreferences:      opts.GetIgnorePreferences(),
			MaxInstanceTypeOptions: int(opts.GetMaxInstanceTypeOptions()),
			ImproveBudget:          time.Duration(opts.GetImproveBudgetSeconds() * float64(time.Second)),
			ImproveRounds:          int(opts.GetImproveRounds()),
			MinSpotInstanceTypes:   int(opts.GetMinSpotInstanceTypes()),
		},
	}
	for _, np := range pools {
		p.NodePools = append(p.NodePools, solver.NodePool{
			Name:          np.GetName(),
			Weight:        np.GetWeight(),
			Labels:        copyMap(np.GetLabels()),
			Annotations:   copyMap(np.GetAnnotations()),
			Taints:        taintsFromProto(np.GetTaints()),
			StartupTaints: taintsFromProto(np.GetStartupTaints()),
			Requirements:  requirementsFromProto(np.GetRequirements()),
			Limits:        resourcesFromProto(np.GetLimits()),
			Usage:         resourcesFromProto(np.GetUsage()),
		})
	}
	for _, it := range types {
		if ctx.Err() != nil {
			return p
		}
		t := solver.InstanceType{
			Name:        it.GetName(),
			Capacity:    resourcesFromProto(it.GetCapacity()),
			Allocatable: resourcesFromProto(it.GetAllocatable()),
			Labels:      copyMap(it.GetLabels()),
		}
		for _, o := range it.GetOfferings() {
			t.Offerings = append(t.Offerings, solver.Offering{
				Zone:         o.GetZone(),
				CapacityType: o.GetCapacityType(),
				PricePerHour: o.GetPricePerHour(),
				Available:    o.GetAvailable(),
			})
		}
		p.InstanceTypes = append(p.InstanceTypes, t)
	}
	for _, n := range nodes {
		if ctx.Err() != nil {
			return p
		}
		p.Nodes = append(p.Nodes, solver.Node{
			Name:          n.GetName(),
			NodePool:      n.GetNodePool(),
			Labels:        copyMap(n.GetLabels()),
			Annotations:   copyMap(n.GetAnnotations()),
			Taints:        taintsFromProto(n.GetTaints()),
			Allocatable:   resourcesFromProto(n.GetAllocatable()),
			Pods:          podsFromProto(ctx, n.GetPods()),
			Unschedulable: n.GetUnschedulable(),
			InstanceType:  n.GetInstanceType(),
			Zone:          n.GetZone(),
			CapacityType:  n.GetCapacityType(),
			PricePerHour:  n.GetPricePerHour(),
		})
	}
	for _, c := range claims {
		if ctx.Err() != nil {
			return p
		}
		p.NodeClaims = append(p.NodeClaims, solver.NodeClaim{
			Name:         c.GetName(),
			NodePool:     c.GetNodePool(),
			InstanceType: c.GetInstanceType(),
			Zone:         c.GetZone(),
			CapacityType: c.GetCapacityType(),
			PricePerHour: c.GetPricePerHour(),
			Labels:       copyMap(c.GetLabels()),
			Taints:       taintsFromProto(c.GetTaints()),
			Allocatable:  resourcesFromProto(c.GetAllocatable()),
			Pods:         podsFromProto(ctx, c.GetPods()),
		})
	}
	for _, ds := range daemonSets {
		ns := namespaceOr(ds.GetNamespace(), "default")
		tmpl := podFromProto(ds.GetTemplate(), ns)
		tmpl.DaemonSet = true
		if tmpl.Name == "" {
			tmpl.Name = ds.GetName()
		}
		p.DaemonSets = append(p.DaemonSets, solver.DaemonSet{
			Namespace: ns,
			Name:      ds.GetName(),
			Template:  *tmpl,
		})
	}
	if len(namespaces) > 0 {
		p.Namespaces = make(map[string]map[string]string, len(namespaces))
		for _, ns := range namespaces {
			p.Namespaces[ns.GetName()] = copyMap(ns.GetLabels())
		}
	}
	return p
}

// podsFromProto converts the pods of a node or NodeClaim; it stops early
// when ctx ends.
func podsFromProto(ctx context.Context, pods []*typesv1.Pod) []*solver.Pod {
	if len(pods) == 0 {
		return nil
	}
	out := make([]*solver.Pod, len(pods))
	for i, p := range pods {
		if ctx.Err() != nil {
			break
		}
		out[i] = podFromProto(p, "default")
	}
	return out
}

// podFromProto converts a pod; an empty namespace becomes defaultNS.
func podFromProto(p *typesv1.Pod, defaultNS string) *solver.Pod {
	return &solver.Pod{
		Namespace:             namespaceOr(p.GetNamespace(), defaultNS),
		Name:                  p.GetName(),
		Labels:                copyMap(p.GetLabels()),
		Annotations:           copyMap(p.GetAnnotations()),
		Owner:                 p.GetOwner(),
		DaemonSet:             p.GetDaemonSet(),
		Requests:              solver.EffectiveRequests(containersFromProto(p.GetContainers()), containersFromProto(p.GetInitContainers()), resourcesFromProto(p.GetOverhead())),
		NodeSelector:          copyMap(p.GetNodeSelector()),
		RequiredNodeAffinity:  termsFromProto(p.GetRequiredNodeAffinity()),
		PreferredNodeAffinity: preferredTermsFromProto(p.GetPreferredNodeAffinity()),
		Tolerations:           tolerationsFromProto(p.GetTolerations()),
		PodAffinity:           podAffinityFromProto(p.GetPodAffinity()),
		PodAntiAffinity:       podAffinityFromProto(p.GetPodAntiAffinity()),
		TopologySpread:        spreadsFromProto(p.GetTopologySpreadConstraints()),
		HostPorts:             hostPortsFromProto(p.GetHostPorts()),
		Volumes:               volumesFromProto(p.GetVolumes()),
		Priority:              p.GetPriority(),
	}
}

func containersFromProto(cs []*typesv1.Container) []solver.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]solver.Container, len(cs))
	for i, c := range cs {
		out[i] = solver.Container{
			Requests:            resourcesFromProto(c.GetRequests()),
			RestartPolicyAlways: c.GetRestartPolicyAlways(),
		}
	}
	return out
}

// resourcesFromProto converts a quantity map; nil for an empty map (which
// for NodePool limits means "no limits").
func resourcesFromProto(m map[string]string) solver.Resources {
	if len(m) == 0 {
		return nil
	}
	out := make(solver.Resources, len(m))
	for k, s := range m {
		v, _ := parseAmount(k, s)
		out[k] = v
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func requirementsFromProto(rs []*typesv1.Requirement) []solver.Requirement {
	if len(rs) == 0 {
		return nil
	}
	out := make([]solver.Requirement, len(rs))
	for i, r := range rs {
		out[i] = solver.Requirement{
			Key:       r.GetKey(),
			Operator:  solver.Operator(r.GetOperator()),
			Values:    copyStrings(r.GetValues()),
			MinValues: int(r.GetMinValues()),
		}
	}
	return out
}

func requirementsToProto(rs []solver.Requirement) []*typesv1.Requirement {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*typesv1.Requirement, len(rs))
	for i, r := range rs {
		out[i] = &typesv1.Requirement{
			Key:       r.Key,
			Operator:  string(r.Operator),
			Values:    copyStrings(r.Values),
			MinValues: int32(r.MinValues),
		}
	}
	return out
}

func termsFromProto(ts []*typesv1.NodeSelectorTerm) []solver.NodeSelectorTerm {
	if len(ts) == 0 {
		return nil
	}
	out := make([]solver.NodeSelectorTerm, len(ts))
	for i, t := range ts {
		out[i] = solver.NodeSelectorTerm{Requirements: requirementsFromProto(t.GetMatchExpressions())}
	}
	return out
}

func preferredTermsFromProto(ts []*typesv1.PreferredSchedulingTerm) []solver.PreferredSchedulingTerm {
	if len(ts) == 0 {
		return nil
	}
	out := make([]solver.PreferredSchedulingTerm, len(ts))
	for i, t := range ts {
		out[i] = solver.PreferredSchedulingTerm{
			Weight: t.GetWeight(),
			Term:   solver.NodeSelectorTerm{Requirements: requirementsFromProto(t.GetPreference().GetMatchExpressions())},
		}
	}
	return out
}

func taintsFromProto(ts []*typesv1.Taint) []solver.Taint {
	if len(ts) == 0 {
		return nil
	}
	out := make([]solver.Taint, len(ts))
	for i, t := range ts {
		out[i] = solver.Taint{Key: t.GetKey(), Value: t.GetValue(), Effect: solver.TaintEffect(t.GetEffect())}
	}
	return out
}

func taintsToProto(ts []solver.Taint) []*typesv1.Taint {
	if len(ts) == 0 {
		return nil
	}
	out := make([]*typesv1.Taint, len(ts))
	for i, t := range ts {
		out[i] = &typesv1.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)}
	}
	return out
}

func tolerationsFromProto(ts []*typesv1.Toleration) []solver.Toleration {
	if len(ts) == 0 {
		return nil
	}
	out := make([]solver.Toleration, len(ts))
	for i, t := range ts {
		out[i] = solver.Toleration{
			Key:      t.GetKey(),
			Operator: t.GetOperator(),
			Value:    t.GetValue(),
			Effect:   solver.TaintEffect(t.GetEffect()),
		}
	}
	return out
}

// labelSelectorFromProto keeps the distinction the solver draws: nil
// selects nothing, non-nil empty selects everything.
func labelSelectorFromProto(s *typesv1.LabelSelector) *solver.LabelSelector {
	if s == nil {
		return nil
	}
	out := &solver.LabelSelector{MatchLabels: copyMap(s.GetMatchLabels())}
	for _, r := range s.GetMatchExpressions() {
		out.MatchExpressions = append(out.MatchExpressions, solver.LabelSelectorRequirement{
			Key:      r.GetKey(),
			Operator: solver.Operator(r.GetOperator()),
			Values:   copyStrings(r.GetValues()),
		})
	}
	return out
}

func podAffinityTermFromProto(t *typesv1.PodAffinityTerm) solver.PodAffinityTerm {
	return solver.PodAffinityTerm{
		LabelSelector:     labelSelectorFromProto(t.GetLabelSelector()),
		Namespaces:        copyStrings(t.GetNamespaces()),
		NamespaceSelector: labelSelectorFromProto(t.GetNamespaceSelector()),
		TopologyKey:       t.GetTopologyKey(),
		MatchLabelKeys:    copyStrings(t.GetMatchLabelKeys()),
		MismatchLabelKeys: copyStrings(t.GetMismatchLabelKeys()),
	}
}

func podAffinityFromProto(a *typesv1.PodAffinity) solver.PodAffinity {
	var out solver.PodAffinity
	for _, t := range a.GetRequired() {
		out.Required = append(out.Required, podAffinityTermFromProto(t))
	}
	for _, w := range a.GetPreferred() {
		out.Preferred = append(out.Preferred, solver.WeightedPodAffinityTerm{
			Weight: w.GetWeight(),
			Term:   podAffinityTermFromProto(w.GetPodAffinityTerm()),
		})
	}
	return out
}

func spreadsFromProto(cs []*typesv1.TopologySpreadConstraint) []solver.TopologySpreadConstraint {
	if len(cs) == 0 {
		return nil
	}
	out := make([]solver.TopologySpreadConstraint, len(cs))
	for i, c := range cs {
		out[i] = solver.TopologySpreadConstraint{
			MaxSkew:            c.GetMaxSkew(),
			TopologyKey:        c.GetTopologyKey(),
			WhenUnsatisfiable:  solver.UnsatisfiableAction(c.GetWhenUnsatisfiable()),
			LabelSelector:      labelSelectorFromProto(c.GetLabelSelector()),
			MinDomains:         c.GetMinDomains(),
			NodeAffinityPolicy: solver.InclusionPolicy(c.GetNodeAffinityPolicy()),
			NodeTaintsPolicy:   solver.InclusionPolicy(c.GetNodeTaintsPolicy()),
			MatchLabelKeys:     copyStrings(c.GetMatchLabelKeys()),
		}
	}
	return out
}

func hostPortsFromProto(hs []*typesv1.HostPort) []solver.HostPort {
	if len(hs) == 0 {
		return nil
	}
	out := make([]solver.HostPort, len(hs))
	for i, h := range hs {
		proto := h.GetProtocol()
		if proto == "" {
			proto = "TCP"
		}
		out[i] = solver.HostPort{Port: h.GetPort(), Protocol: proto, HostIP: h.GetHostIp()}
	}
	return out
}

func volumesFromProto(vs []*typesv1.VolumeTopology) []solver.VolumeTopology {
	if len(vs) == 0 {
		return nil
	}
	out := make([]solver.VolumeTopology, len(vs))
	for i, v := range vs {
		out[i] = solver.VolumeTopology{Name: v.GetName(), Terms: termsFromProto(v.GetTerms())}
	}
	return out
}

// PlanToProto converts a plan. Node claims and unschedulable pods keep the
// solver's (deterministic) order; the pods bound to each existing node
// are sorted by name.
func PlanToProto(p *solver.Plan) *typesv1.Plan {
	out, _ := planToProto(context.Background(), p)
	return out
}

// planToProto is PlanToProto that stops when ctx ends.
func planToProto(ctx context.Context, p *solver.Plan) (*typesv1.Plan, error) {
	if p == nil {
		return &typesv1.Plan{}, nil
	}
	out := &typesv1.Plan{CostPerHour: p.CostPerHour}
	for i := range p.NodeClaims {
		if ctx.Err() != nil {
			return nil, conversionErr(ctx)
		}
		out.NodeClaims = append(out.NodeClaims, plannedClaimToProto(&p.NodeClaims[i]))
	}
	if len(p.ExistingBindings) > 0 {
		out.ExistingNodeBindings = make(map[string]*typesv1.PodNames, len(p.ExistingBindings))
		for node, refs := range p.ExistingBindings {
			if ctx.Err() != nil {
				return nil, conversionErr(ctx)
			}
			names := refNames(refs)
			sort.Strings(names)
			out.ExistingNodeBindings[node] = &typesv1.PodNames{Pods: names}
		}
	}
	for _, u := range p.Unschedulable {
		if ctx.Err() != nil {
			return nil, conversionErr(ctx)
		}
		out.Unschedulable = append(out.Unschedulable, &typesv1.UnschedulablePod{Pod: u.Pod.String(), Reason: u.Reason})
	}
	return out, nil
}

func refNames(refs []solver.PodRef) []string {
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

func plannedClaimToProto(c *solver.PlannedNodeClaim) *typesv1.PlannedNodeClaim {
	if c == nil {
		return nil
	}
	return &typesv1.PlannedNodeClaim{
		NodePool:            c.NodePool,
		Requirements:        requirementsToProto(c.Requirements),
		Labels:              copyMap(c.Labels),
		Taints:              taintsToProto(c.Taints),
		StartupTaints:       taintsToProto(c.StartupTaints),
		InstanceTypeOptions: copyStrings(c.InstanceTypeOptions),
		InstanceType:        c.InstanceType,
		Zone:                c.Zone,
		CapacityType:        c.CapacityType,
		PricePerHour:        c.PricePerHour,
		Pods:                refNames(c.Pods),
		Requests:            resourcesToProto(c.Requests),
	}
}

// ConsolidationToProto converts a consolidation plan. Actions and blocked
// candidates keep the solver's order; bindings are sorted by pod.
func ConsolidationToProto(p *solver.ConsolidationPlan) *solverv1.ConsolidateResponse {
	out := &solverv1.ConsolidateResponse{}
	if p == nil {
		return out
	}
	for i := range p.Actions {
		a := &p.Actions[i]
		pa := &solverv1.ConsolidationAction{
			Kind:           a.Kind,
			Nodes:          copyStrings(a.Nodes),
			Replacement:    plannedClaimToProto(a.Replacement),
			SavingsPerHour: a.SavingsPerHour,
			Reason:         a.Reason,
		}
		refs := make([]solver.PodRef, 0, len(a.Bindings))
		for r := range a.Bindings {
			refs = append(refs, r)
		}
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].Namespace != refs[j].Namespace {
				return refs[i].Namespace < refs[j].Namespace
			}
			return refs[i].Name < refs[j].Name
		})
		for _, r := range refs {
			pa.Bindings = append(pa.Bindings, &solverv1.PodBinding{Pod: r.String(), Node: a.Bindings[r]})
		}
		out.Actions = append(out.Actions, pa)
	}
	for _, b := range p.Blocked {
		out.Blocked = append(out.Blocked, &solverv1.BlockedCandidate{Node: b.Node, Reason: b.Reason, Kind: b.Kind})
	}
	out.CurrentCostPerHour = p.CurrentCostPerHour
	out.NewCostPerHour = p.NewCostPerHour
	out.SavingsPerHour = p.SavingsPerHour
	return out
}

// ExplanationsToProto converts the per-NodePool explanations of a plan's
// unschedulable pods, in the plan's order.
func ExplanationsToProto(p *solver.Plan) []*solverv1.UnschedulableExplanation {
	var out []*solverv1.UnschedulableExplanation
	for _, u := range p.Unschedulable {
		e := &solverv1.UnschedulableExplanation{Pod: u.Pod.String()}
		for _, r := range u.NodePools {
			e.NodePools = append(e.NodePools, &solverv1.NodePoolReason{NodePool: r.NodePool, Reason: r.Reason})
		}
		out = append(out, e)
	}
	return out
}
