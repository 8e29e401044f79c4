package solverapi_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	"github.com/flotilla-io/flotilla/internal/workload"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// The benchmark workloads (internal/workload) as requests, so that the
// service is tested on them. The helpers render only what those problems
// use: pods with requests, labels, owners, required pod (anti-)affinity
// and topology spread; instance types; NodePools by name; nodes with
// their pods. TestWorkloadRequestsPlanLikeTheirProblems checks them.

func quantities(r solver.Resources) map[string]string {
	out := make(map[string]string, len(r))
	for k, v := range r {
		if k == solver.ResourceCPU {
			out[k] = strconv.FormatInt(v, 10) + "m"
			continue
		}
		out[k] = strconv.FormatInt(v, 10)
	}
	return out
}

func selectorToProto(s *solver.LabelSelector) *typesv1.LabelSelector {
	if s == nil {
		return nil
	}
	return &typesv1.LabelSelector{MatchLabels: s.MatchLabels}
}

func termsToProto(ts []solver.PodAffinityTerm) *typesv1.PodAffinity {
	if len(ts) == 0 {
		return nil
	}
	out := &typesv1.PodAffinity{}
	for _, t := range ts {
		out.Required = append(out.Required, &typesv1.PodAffinityTerm{LabelSelector: selectorToProto(t.LabelSelector), TopologyKey: t.TopologyKey})
	}
	return out
}

func podToProto(p *solver.Pod) *typesv1.Pod {
	out := &typesv1.Pod{
		Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Owner: p.Owner,
		Containers:      []*typesv1.Container{{Name: "main", Requests: quantities(p.Requests)}},
		PodAffinity:     termsToProto(p.PodAffinity.Required),
		PodAntiAffinity: termsToProto(p.PodAntiAffinity.Required),
	}
	for _, c := range p.TopologySpread {
		out.TopologySpreadConstraints = append(out.TopologySpreadConstraints, &typesv1.TopologySpreadConstraint{
			MaxSkew: c.MaxSkew, TopologyKey: c.TopologyKey, WhenUnsatisfiable: string(c.WhenUnsatisfiable),
			LabelSelector: selectorToProto(c.LabelSelector),
		})
	}
	return out
}

func podsToProto(pods []*solver.Pod) []*typesv1.Pod {
	out := make([]*typesv1.Pod, len(pods))
	for i, p := range pods {
		out[i] = podToProto(p)
	}
	return out
}

func instanceTypesToProto(types []solver.InstanceType) []*typesv1.InstanceType {
	out := make([]*typesv1.InstanceType, len(types))
	for i := range types {
		it := &types[i]
		pt := &typesv1.InstanceType{Name: it.Name, Labels: it.Labels, Capacity: quantities(it.Capacity), Allocatable: quantities(it.Allocatable)}
		for _, o := range it.Offerings {
			pt.Offerings = append(pt.Offerings, &typesv1.Offering{Zone: o.Zone, CapacityType: o.CapacityType, PricePerHour: o.PricePerHour, Available: o.Available})
		}
		out[i] = pt
	}
	return out
}

func poolsToProto(pools []solver.NodePool) []*typesv1.NodePool {
	out := make([]*typesv1.NodePool, len(pools))
	for i := range pools {
		out[i] = &typesv1.NodePool{Name: pools[i].Name}
	}
	return out
}

// solveRequest renders p as a SolveRequest with improve_budget_seconds
// budget (0: the default).
func solveRequest(p *solver.Problem, budget float64) *solverv1.SolveRequest {
	return &solverv1.SolveRequest{Pods: podsToProto(p.Pods), InstanceTypes: instanceTypesToProto(p.InstanceTypes),
		NodePools: poolsToProto(p.NodePools), Options: &solverv1.SolveOptions{ImproveBudgetSeconds: budget}}
}

// consolidateRequest renders the existing cluster of p.
func consolidateRequest(p *solver.Problem) *solverv1.ConsolidateRequest {
	req := &solverv1.ConsolidateRequest{InstanceTypes: instanceTypesToProto(p.InstanceTypes), NodePools: poolsToProto(p.NodePools)}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		req.Nodes = append(req.Nodes, &typesv1.Node{Name: n.Name, NodePool: n.NodePool, Labels: n.Labels,
			Allocatable: quantities(n.Allocatable), Pods: podsToProto(n.Pods), InstanceType: n.InstanceType,
			Zone: n.Zone, CapacityType: n.CapacityType, PricePerHour: n.PricePerHour})
	}
	return req
}

// fragmentedMix is the cluster karpenter-mix-n leaves once a third of its
// pods are gone (see workload.Fragment).
func fragmentedMix(t testing.TB, n int) *solver.Problem {
	t.Helper()
	p := workload.KarpenterMix(n, 7)
	p.Options.ImproveRounds = 1
	plan, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return workload.Fragment(p, plan, 3)
}

func TestWorkloadRequestsPlanLikeTheirProblems(t *testing.T) {
	p := workload.KarpenterMix(1000, 42)
	p.Options.ImproveRounds = 1
	want, err := solver.Solve(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	req := solveRequest(p, 0)
	req.Options = &solverv1.SolveOptions{ImproveRounds: 1}
	got, err := solverapi.Solve(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.GetPlan().GetNodeClaims()); n != len(want.NodeClaims) || math.Abs(got.GetPlan().GetCostPerHour()-want.CostPerHour) > 1e-6 {
		t.Errorf("request: %d claims at $%.4f/h; problem: %d claims at $%.4f/h", n, got.GetPlan().GetCostPerHour(), len(want.NodeClaims), want.CostPerHour)
	}

	frag := fragmentedMix(t, 1000)
	wantCons, err := solver.Consolidate(t.Context(), frag)
	if err != nil {
		t.Fatal(err)
	}
	gotCons, err := solverapi.Consolidate(t.Context(), consolidateRequest(frag))
	if err != nil {
		t.Fatal(err)
	}
	if len(gotCons.GetActions()) != len(wantCons.Actions) || math.Abs(gotCons.GetSavingsPerHour()-wantCons.SavingsPerHour) > 1e-6 {
		t.Errorf("request: %d actions saving $%.4f/h; problem: %d actions saving $%.4f/h",
			len(gotCons.GetActions()), gotCons.GetSavingsPerHour(), len(wantCons.Actions), wantCons.SavingsPerHour)
	}
	if len(wantCons.Actions) == 0 {
		t.Error("the fragmented cluster has nothing to consolidate")
	}
}
