package solverapi

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// ValidateSolveRequest checks every field of req the solver relies on. It
// returns nil or a *ValidationError (which wraps ErrInvalidArgument).
func ValidateSolveRequest(req *solverv1.SolveRequest) error {
	return validateSolveRequest(context.Background(), req)
}

// validateSolveRequest is ValidateSolveRequest that stops when ctx ends,
// returning an error that wraps ctx.Err().
func validateSolveRequest(ctx context.Context, req *solverv1.SolveRequest) error {
	v := &validator{ctx: ctx}
	if req == nil {
		v.add("", "request is missing")
		return v.err()
	}
	seen := map[string]int{}
	for i, p := range req.GetPods() {
		if v.gone() {
			return v.err()
		}
		path := idx("pods", i)
		v.pod(path, p, true)
		if p.GetName() == "" {
			continue
		}
		key := namespaceOr(p.GetNamespace(), "default") + "/" + p.GetName()
		if first, dup := seen[key]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate pod %q (also pods[%d])", key, first))
		} else {
			seen[key] = i
		}
	}
	if len(req.GetInstanceTypes()) == 0 {
		v.add("instance_types", "must not be empty")
	}
	v.cluster(req.GetNodePools(), req.GetInstanceTypes(), req.GetNodes(), req.GetNodeClaims(), req.GetDaemonSets(), req.GetNamespaces())
	v.options("options", req.GetOptions())
	return v.err()
}

// ValidateConsolidateRequest checks req like ValidateSolveRequest. An empty
// instance type catalog is allowed: consolidation can still delete nodes.
func ValidateConsolidateRequest(req *solverv1.ConsolidateRequest) error {
	return validateConsolidateRequest(context.Background(), req)
}

// validateConsolidateRequest is ValidateConsolidateRequest that stops when
// ctx ends, returning an error that wraps ctx.Err().
func validateConsolidateRequest(ctx context.Context, req *solverv1.ConsolidateRequest) error {
	v := &validator{ctx: ctx}
	if req == nil {
		v.add("", "request is missing")
		return v.err()
	}
	v.cluster(req.GetNodePools(), req.GetInstanceTypes(), req.GetNodes(), req.GetNodeClaims(), req.GetDaemonSets(), req.GetNamespaces())
	v.options("options", req.GetOptions())
	v.disruption(req)
	return v.err()
}

// disruption checks the PodDisruptionBudgets and NodePool disruption
// allowances of a ConsolidateRequest.
func (v *validator) disruption(req *solverv1.ConsolidateRequest) {
	seen := map[string]bool{}
	for i, b := range req.GetPodDisruptionBudgets() {
		path := idx("pod_disruption_budgets", i)
		ns := namespaceOr(b.GetNamespace(), "default")
		switch {
		case b.GetName() == "":
			v.add(path+".name", "must not be empty")
		case seen[ns+"/"+b.GetName()]:
			v.add(path+".name", "duplicate PodDisruptionBudget "+ns+"/"+b.GetName())
		}
		seen[ns+"/"+b.GetName()] = true
		if b.GetDisruptionsAllowed() < 0 {
			v.add(path+".disruptions_allowed", "must not be negative")
		}
		v.labelSelector(path+".selector", b.GetSelector())
	}
	pools := map[string]bool{}
	for i, a := range req.GetDisruptionAllowances() {
		path := idx("disruption_allowances", i)
		switch {
		case a.GetNodePool() == "":
			v.add(path+".node_pool", "must not be empty")
		case pools[a.GetNodePool()]:
			v.add(path+".node_pool", "duplicate NodePool "+a.GetNodePool())
		}
		pools[a.GetNodePool()] = true
		if a.GetMaxNodes() < 0 {
			v.add(path+".max_nodes", "must not be negative")
		}
	}
}

// validator collects field errors in request order, keeping the first
// maxFieldErrors and counting the rest.
type validator struct {
	errs    []*FieldError
	omitted int
	// ctx is the call's; when it ends validation stops (see gone).
	ctx context.Context
}

// gone reports whether the call has ended. The validator looks once per
// pod, node, NodeClaim, instance type or DaemonSet, so that an abandoned
// request of 200,000 pods stops being validated at once (validating it
// whole takes about a second); err then returns the context's error.
func (v *validator) gone() bool { return v.ctx.Err() != nil }

func (v *validator) add(field, reason string) {
	if len(v.errs) >= maxFieldErrors {
		v.omitted++
		return
	}
	v.errs = append(v.errs, &FieldError{Field: field, Reason: reason})
}

func (v *validator) err() error {
	if v.gone() {
		return fmt.Errorf("validating the request: %w", v.ctx.Err())
	}
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs, Omitted: v.omitted}
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func key(path, k string) string { return path + "[" + strconv.Quote(k) + "]" }

func namespaceOr(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// instanceTypes checks the request's instance types and their offerings.
func (v *validator) instanceTypes(types []*typesv1.InstanceType) {
	typeNames := map[string]int{}
	for i, it := range types {
		if v.gone() {
			return
		}
		path := idx("instance_types", i)
		if it.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else if first, dup := typeNames[it.GetName()]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate instance type %q (also instance_types[%d])", it.GetName(), first))
		} else {
			typeNames[it.GetName()] = i
		}
		v.resources(path+".capacity", it.GetCapacity())
		v.resources(path+".allocatable", it.GetAllocatable())
		for j, o := range it.GetOfferings() {
			opath := idx(path+".offerings", j)
			if o.GetZone() == "" {
				v.add(opath+".zone", "must not be empty")
			}
			if o.GetCapacityType() == "" {
				v.add(opath+".capacity_type", "must not be empty")
			}
			v.price(opath+".price_per_hour", o.GetPricePerHour())
		}
	}
}

// nodePools checks the request's NodePools.
func (v *validator) nodePools(pools []*typesv1.NodePool) {
	poolNames := map[string]int{}
	for i, np := range pools {
		path := idx("node_pools", i)
		if np.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else if first, dup := poolNames[np.GetName()]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate NodePool %q (also node_pools[%d])", np.GetName(), first))
		} else {
			poolNames[np.GetName()] = i
		}
		if w := np.GetWeight(); w < 0 || w > 100 {
			v.add(path+".weight", fmt.Sprintf("%d is outside 0..100", w))
		}
		v.taints(path+".taints", np.GetTaints())
		v.taints(path+".startup_taints", np.GetStartupTaints())
		v.requirements(path+".requirements", np.GetRequirements(), true)
		v.resources(path+".limits", np.GetLimits())
		v.resources(path+".usage", np.GetUsage())
	}
}

// cluster checks the parts SolveRequest and ConsolidateRequest share.
func (v *validator) cluster(pools []*typesv1.NodePool, types []*typesv1.InstanceType, nodes []*typesv1.Node, claims []*typesv1.NodeClaim, daemonSets []*typesv1.DaemonSet, namespaces []*typesv1.Namespace) {
	v.instanceTypes(types)
	if v.gone() {
		return
	}
	v.nodePools(pools)

	// Nodes and NodeClaims share one name space: a plan binds pods to
	// either by name.
	nodeNames := map[string]string{}
	for i, n := range nodes {
		if v.gone() {
			return
		}
		path := idx("nodes", i)
		if n.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else if first, dup := nodeNames[n.GetName()]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate node %q (also %s)", n.GetName(), first))
		} else {
			nodeNames[n.GetName()] = path
		}
		v.taints(path+".taints", n.GetTaints())
		v.resources(path+".allocatable", n.GetAllocatable())
		v.price(path+".price_per_hour", n.GetPricePerHour())
		for j, p := range n.GetPods() {
			if v.gone() {
				return
			}
			v.pod(idx(path+".pods", j), p, true)
		}
	}
	for i, c := range claims {
		if v.gone() {
			return
		}
		path := idx("node_claims", i)
		if c.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else if first, dup := nodeNames[c.GetName()]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate node or NodeClaim %q (also %s)", c.GetName(), first))
		} else {
			nodeNames[c.GetName()] = path
		}
		v.taints(path+".taints", c.GetTaints())
		v.resources(path+".allocatable", c.GetAllocatable())
		v.price(path+".price_per_hour", c.GetPricePerHour())
		for j, p := range c.GetPods() {
			if v.gone() {
				return
			}
			v.pod(idx(path+".pods", j), p, true)
		}
	}

	dsNames := map[string]int{}
	for i, ds := range daemonSets {
		if v.gone() {
			return
		}
		path := idx("daemon_sets", i)
		if ds.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else {
			k := namespaceOr(ds.GetNamespace(), "default") + "/" + ds.GetName()
			if first, dup := dsNames[k]; dup {
				v.add(path+".name", fmt.Sprintf("duplicate DaemonSet %q (also daemon_sets[%d])", k, first))
			} else {
				dsNames[k] = i
			}
		}
		if ds.GetTemplate() == nil {
			v.add(path+".template", "must be set")
			continue
		}
		v.pod(path+".template", ds.GetTemplate(), false)
	}

	nsNames := map[string]int{}
	for i, ns := range namespaces {
		path := idx("namespaces", i)
		if ns.GetName() == "" {
			v.add(path+".name", "must not be empty")
		} else if first, dup := nsNames[ns.GetName()]; dup {
			v.add(path+".name", fmt.Sprintf("duplicate namespace %q (also namespaces[%d])", ns.GetName(), first))
		} else {
			nsNames[ns.GetName()] = i
		}
	}
}

func (v *validator) options(path string, o *solverv1.SolveOptions) {
	if n := o.GetMaxInstanceTypeOptions(); n < 0 {
		v.add(path+".max_instance_type_options", fmt.Sprintf("%d is negative", n))
	}
	if b := o.GetImproveBudgetSeconds(); math.IsNaN(b) || math.IsInf(b, 0) || b > 600 {
		v.add(path+".improve_budget_seconds", fmt.Sprintf("%v is not a finite number of seconds up to 600", b))
	}
	if n := o.GetImproveRounds(); n < 0 {
		v.add(path+".improve_rounds", fmt.Sprintf("%d is negative", n))
	}
}

func (v *validator) price(path string, p float64) {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		v.add(path, fmt.Sprintf("%v is not a finite number", p))
	} else if p < 0 {
		v.add(path, fmt.Sprintf("%v is negative", p))
	}
}

// resources checks a quantity map, keys in sorted order.
func (v *validator) resources(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if k == "" {
			v.add(key(path, k), "resource name must not be empty")
			continue
		}
		if _, err := parseAmount(k, m[k]); err != nil {
			v.add(key(path, k), err.Error())
		}
	}
}

// pod checks a pod; requireName is false for DaemonSet templates.
func (v *validator) pod(path string, p *typesv1.Pod, requireName bool) {
	if p == nil {
		v.add(path, "must be set")
		return
	}
	if requireName && p.GetName() == "" {
		v.add(path+".name", "must not be empty")
	}
	for i, c := range p.GetContainers() {
		v.resources(idx(path+".containers", i)+".requests", c.GetRequests())
	}
	for i, c := range p.GetInitContainers() {
		v.resources(idx(path+".init_containers", i)+".requests", c.GetRequests())
	}
	v.resources(path+".overhead", p.GetOverhead())
	v.terms(path+".required_node_affinity", p.GetRequiredNodeAffinity())
	for i, t := range p.GetPreferredNodeAffinity() {
		tpath := idx(path+".preferred_node_affinity", i)
		v.weight(tpath+".weight", t.GetWeight())
		v.requirements(tpath+".preference.match_expressions", t.GetPreference().GetMatchExpressions(), false)
	}
	for i, t := range p.GetTolerations() {
		v.toleration(idx(path+".tolerations", i), t)
	}
	v.podAffinity(path+".pod_affinity", p.GetPodAffinity())
	v.podAffinity(path+".pod_anti_affinity", p.GetPodAntiAffinity())
	for i, c := range p.GetTopologySpreadConstraints() {
		v.spread(idx(path+".topology_spread_constraints", i), c)
	}
	for i, hp := range p.GetHostPorts() {
		hpath := idx(path+".host_ports", i)
		if port := hp.GetPort(); port < 1 || port > 65535 {
			v.add(hpath+".port", fmt.Sprintf("%d is outside 1..65535", port))
		}
		switch hp.GetProtocol() {
		case "", "TCP", "UDP", "SCTP":
		default:
			v.add(hpath+".protocol", fmt.Sprintf("unknown protocol %q (want TCP, UDP or SCTP)", hp.GetProtocol()))
		}
	}
	for i, vol := range p.GetVolumes() {
		v.terms(idx(path+".volumes", i)+".terms", vol.GetTerms())
	}
}

func (v *validator) weight(path string, w int32) {
	if w < 1 || w > 100 {
		v.add(path, fmt.Sprintf("%d is outside 1..100", w))
	}
}

func (v *validator) terms(path string, terms []*typesv1.NodeSelectorTerm) {
	for i, t := range terms {
		v.requirements(idx(path, i)+".match_expressions", t.GetMatchExpressions(), false)
	}
}

// requirements checks node selector requirements; minValues is allowed
// only for NodePools, and so are Karpenter's Gte and Lte (Kubernetes node
// selectors lack them).
func (v *validator) requirements(path string, reqs []*typesv1.Requirement, nodePool bool) {
	for i, r := range reqs {
		rpath := idx(path, i)
		if r.GetKey() == "" {
			v.add(rpath+".key", "must not be empty")
		}
		n := len(r.GetValues())
		switch op := r.GetOperator(); op {
		case "In", "NotIn":
			if n == 0 {
				v.add(rpath+".values", fmt.Sprintf("operator %s needs at least one value", op))
			}
		case "Exists", "DoesNotExist":
			if n != 0 {
				v.add(rpath+".values", fmt.Sprintf("operator %s takes no values", op))
			}
		case "Gt", "Lt", "Gte", "Lte":
			if !nodePool && (op == "Gte" || op == "Lte") {
				v.add(rpath+".operator", fmt.Sprintf("operator %s is only allowed in NodePool requirements (want In, NotIn, Exists, DoesNotExist, Gt or Lt)", op))
			} else if n != 1 {
				v.add(rpath+".values", fmt.Sprintf("operator %s needs exactly one value", op))
			} else if _, err := strconv.ParseInt(r.GetValues()[0], 10, 64); err != nil {
				v.add(rpath+".values[0]", fmt.Sprintf("operator %s needs an integer, not %q", op, r.GetValues()[0]))
			}
		default:
			want := "In, NotIn, Exists, DoesNotExist, Gt or Lt"
			if nodePool {
				want = "In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte or Lte"
			}
			v.add(rpath+".operator", fmt.Sprintf("unknown operator %q (want %s)", op, want))
		}
		switch mv := r.GetMinValues(); {
		case mv < 0:
			v.add(rpath+".min_values", fmt.Sprintf("%d is negative", mv))
		case mv > 0 && !nodePool:
			v.add(rpath+".min_values", "is only allowed in NodePool requirements")
		case mv > 0 && r.GetOperator() == "In" && int(mv) > n:
			v.add(rpath+".min_values", fmt.Sprintf("%d is more than the %d values listed", mv, n))
		}
	}
}

func (v *validator) taints(path string, taints []*typesv1.Taint) {
	for i, t := range taints {
		tpath := idx(path, i)
		if t.GetKey() == "" {
			v.add(tpath+".key", "must not be empty")
		}
		switch t.GetEffect() {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			v.add(tpath+".effect", fmt.Sprintf("unknown effect %q (want NoSchedule, PreferNoSchedule or NoExecute)", t.GetEffect()))
		}
	}
}

func (v *validator) toleration(path string, t *typesv1.Toleration) {
	switch t.GetOperator() {
	case "", "Equal":
		if t.GetKey() == "" {
			v.add(path+".key", "must not be empty unless operator is Exists")
		}
	case "Exists":
		if t.GetValue() != "" {
			v.add(path+".value", "must be empty when operator is Exists")
		}
	default:
		v.add(path+".operator", fmt.Sprintf("unknown operator %q (want Equal or Exists)", t.GetOperator()))
	}
	switch t.GetEffect() {
	case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		v.add(path+".effect", fmt.Sprintf("unknown effect %q (want NoSchedule, PreferNoSchedule, NoExecute or empty)", t.GetEffect()))
	}
}

func (v *validator) labelSelector(path string, s *typesv1.LabelSelector) {
	for i, r := range s.GetMatchExpressions() {
		rpath := idx(path+".match_expressions", i)
		if r.GetKey() == "" {
			v.add(rpath+".key", "must not be empty")
		}
		n := len(r.GetValues())
		switch op := r.GetOperator(); op {
		case "In", "NotIn":
			if n == 0 {
				v.add(rpath+".values", fmt.Sprintf("operator %s needs at least one value", op))
			}
		case "Exists", "DoesNotExist":
			if n != 0 {
				v.add(rpath+".values", fmt.Sprintf("operator %s takes no values", op))
			}
		default:
			v.add(rpath+".operator", fmt.Sprintf("unknown operator %q (want In, NotIn, Exists or DoesNotExist)", op))
		}
	}
}

func (v *validator) podAffinityTerm(path string, t *typesv1.PodAffinityTerm) {
	if t == nil {
		v.add(path, "must be set")
		return
	}
	if t.GetTopologyKey() == "" {
		v.add(path+".topology_key", "must not be empty")
	}
	v.labelSelector(path+".label_selector", t.GetLabelSelector())
	v.labelSelector(path+".namespace_selector", t.GetNamespaceSelector())
}

func (v *validator) podAffinity(path string, a *typesv1.PodAffinity) {
	for i, t := range a.GetRequired() {
		v.podAffinityTerm(idx(path+".required", i), t)
	}
	for i, w := range a.GetPreferred() {
		wpath := idx(path+".preferred", i)
		v.weight(wpath+".weight", w.GetWeight())
		v.podAffinityTerm(wpath+".pod_affinity_term", w.GetPodAffinityTerm())
	}
}

func (v *validator) spread(path string, c *typesv1.TopologySpreadConstraint) {
	if c.GetMaxSkew() < 1 {
		v.add(path+".max_skew", fmt.Sprintf("%d is less than 1", c.GetMaxSkew()))
	}
	if c.GetTopologyKey() == "" {
		v.add(path+".topology_key", "must not be empty")
	}
	switch c.GetWhenUnsatisfiable() {
	case "DoNotSchedule", "ScheduleAnyway":
	default:
		v.add(path+".when_unsatisfiable", fmt.Sprintf("unknown action %q (want DoNotSchedule or ScheduleAnyway)", c.GetWhenUnsatisfiable()))
	}
	switch md := c.GetMinDomains(); {
	case md < 0:
		v.add(path+".min_domains", fmt.Sprintf("%d is negative", md))
	case md > 0 && c.GetWhenUnsatisfiable() != "DoNotSchedule":
		v.add(path+".min_domains", "is only allowed with when_unsatisfiable DoNotSchedule")
	}
	for _, p := range []struct{ field, value string }{
		{"node_affinity_policy", c.GetNodeAffinityPolicy()},
		{"node_taints_policy", c.GetNodeTaintsPolicy()},
	} {
		switch p.value {
		case "", "Honor", "Ignore":
		default:
			v.add(path+"."+p.field, fmt.Sprintf("unknown policy %q (want Honor or Ignore)", p.value))
		}
	}
	v.labelSelector(path+".label_selector", c.GetLabelSelector())
}
