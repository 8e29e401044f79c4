package solverapi_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// startService serves the solver on loopback through the shared server
// bootstrap, as services/solver does.
func startService(t *testing.T, maxBytes int) solverv1.SolverServiceClient {
	t.Helper()
	return startSolver(t, maxBytes, solverapi.NewService())
}

// startSolver serves svc on loopback.
func startSolver(t *testing.T, maxBytes int, svc solverv1.SolverServiceServer) solverv1.SolverServiceClient {
	t.Helper()
	srv, err := server.New(server.Config{
		Name:            "solver",
		GRPCAddr:        "127.0.0.1:0",
		MaxMessageBytes: maxBytes,
		Insecure:        true,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, func(s *grpc.Server) {
		solverv1.RegisterSolverServiceServer(s, svc)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return solverv1.NewSolverServiceClient(conn)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func smallRequest() *solverv1.SolveRequest {
	offerings := func(price float64) []*typesv1.Offering {
		return []*typesv1.Offering{
			{Zone: "zone-a", CapacityType: "on-demand", PricePerHour: price, Available: true},
			{Zone: "zone-b", CapacityType: "on-demand", PricePerHour: price * 1.1, Available: true},
		}
	}
	pod := func(name string) *typesv1.Pod {
		return &typesv1.Pod{
			Namespace: "app", Name: name, Labels: map[string]string{"app": "api"}, Owner: "ReplicaSet/app/api-1",
			Containers: []*typesv1.Container{{Name: "api", Requests: map[string]string{"cpu": "1", "memory": "2Gi"}}},
		}
	}
	return &solverv1.SolveRequest{
		InstanceTypes: []*typesv1.InstanceType{
			{
				Name: "small", Labels: map[string]string{"node.kubernetes.io/instance-type": "small", "kubernetes.io/arch": "amd64"},
				Capacity:    map[string]string{"cpu": "2", "memory": "8Gi", "pods": "20"},
				Allocatable: map[string]string{"cpu": "1900m", "memory": "7Gi", "pods": "20"},
				Offerings:   offerings(0.10),
			},
			{
				Name: "large", Labels: map[string]string{"node.kubernetes.io/instance-type": "large", "kubernetes.io/arch": "amd64"},
				Capacity:    map[string]string{"cpu": "8", "memory": "32Gi", "pods": "50"},
				Allocatable: map[string]string{"cpu": "7800m", "memory": "30Gi", "pods": "50"},
				Offerings:   offerings(0.40),
			},
		},
		NodePools: []*typesv1.NodePool{{
			Name:         "default",
			Requirements: []*typesv1.Requirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}},
		}},
		Pods: []*typesv1.Pod{pod("api-1"), pod("api-2"), pod("api-3")},
	}
}

func TestServiceSolve(t *testing.T) {
	client := startService(t, 0)
	req := smallRequest()
	resp, err := client.Solve(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	plan := resp.GetPlan()
	if len(plan.GetUnschedulable()) != 0 {
		t.Fatalf("unschedulable: %v", plan.GetUnschedulable())
	}
	placed := map[string]bool{}
	var cost float64
	for _, c := range plan.GetNodeClaims() {
		if c.GetNodePool() != "default" {
			t.Errorf("claim from NodePool %q", c.GetNodePool())
		}
		if it := c.GetInstanceType(); it != "small" && it != "large" {
			t.Errorf("claim of instance type %q", it)
		}
		if len(c.GetInstanceTypeOptions()) == 0 || c.GetRequests()["cpu"] == "" {
			t.Errorf("claim lacks options or requests: %v", c)
		}
		for _, p := range c.GetPods() {
			placed[p] = true
		}
		cost += c.GetPricePerHour()
	}
	for _, p := range req.GetPods() {
		if !placed["app/"+p.GetName()] {
			t.Errorf("pod app/%s not placed; plan %v", p.GetName(), plan)
		}
	}
	if d := plan.GetCostPerHour() - cost; d > 1e-9 || d < -1e-9 {
		t.Errorf("cost per hour %v, claims add up to %v", plan.GetCostPerHour(), cost)
	}
	if resp.GetSolveSeconds() < 0 {
		t.Errorf("solve seconds %v", resp.GetSolveSeconds())
	}
}

func TestServiceSolveBadQuantity(t *testing.T) {
	client := startService(t, 0)
	req := smallRequest()
	req.Pods[1].Containers[0].Requests["cpu"] = "12x"
	_, err := client.Solve(callCtx(t), req)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	want := `pods[1].containers[0].requests["cpu"]: invalid quantity "12x"`
	if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
}

func TestServiceMessageTooLarge(t *testing.T) {
	client := startService(t, 4096)
	req := smallRequest()
	req.Pods[0].Annotations = map[string]string{"big": strings.Repeat("x", 8192)}
	_, err := client.Solve(callCtx(t), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("got %v, want ResourceExhausted", err)
	}
}

func TestServiceConsolidate(t *testing.T) {
	client := startService(t, 0)
	req := smallRequest()
	resp, err := client.Consolidate(callCtx(t), &solverv1.ConsolidateRequest{
		NodePools:     req.GetNodePools(),
		InstanceTypes: req.GetInstanceTypes(),
		Nodes: []*typesv1.Node{{
			Name: "node-1", NodePool: "default", InstanceType: "large", Zone: "zone-a", CapacityType: "on-demand", PricePerHour: 0.4,
			Labels:      map[string]string{"node.kubernetes.io/instance-type": "large", "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-a", "karpenter.sh/capacity-type": "on-demand", "karpenter.sh/nodepool": "default", "kubernetes.io/hostname": "node-1"},
			Allocatable: map[string]string{"cpu": "7800m", "memory": "30Gi", "pods": "50"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSolveSeconds() < 0 {
		t.Errorf("solve seconds %v", resp.GetSolveSeconds())
	}
	_, err = client.Consolidate(callCtx(t), &solverv1.ConsolidateRequest{Nodes: []*typesv1.Node{{Name: ""}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "nodes[0].name") {
		t.Errorf("bad consolidate request: %v", err)
	}
}

func TestServiceConsolidateDisruptionLimits(t *testing.T) {
	client := startService(t, 0)
	base := smallRequest()
	request := func() *solverv1.ConsolidateRequest {
		return &solverv1.ConsolidateRequest{
			NodePools:     base.GetNodePools(),
			InstanceTypes: base.GetInstanceTypes(),
			Nodes: []*typesv1.Node{{
				Name: "node-1", NodePool: "default", InstanceType: "large", Zone: "zone-a", CapacityType: "on-demand", PricePerHour: 0.4,
				Labels:      map[string]string{"node.kubernetes.io/instance-type": "large", "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-a", "karpenter.sh/capacity-type": "on-demand", "karpenter.sh/nodepool": "default", "kubernetes.io/hostname": "node-1"},
				Allocatable: map[string]string{"cpu": "7800m", "memory": "30Gi", "pods": "50"},
				Pods:        []*typesv1.Pod{{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}, Containers: []*typesv1.Container{{Name: "c", Requests: map[string]string{"cpu": "500m"}}}}},
			}},
		}
	}
	tests := []struct {
		name     string
		mutate   func(*solverv1.ConsolidateRequest)
		wantKind string
	}{
		{"unlimited", func(*solverv1.ConsolidateRequest) {}, ""},
		{"PDB allows no eviction", func(r *solverv1.ConsolidateRequest) {
			r.PodDisruptionBudgets = []*typesv1.PodDisruptionBudget{{Namespace: "shop", Name: "web",
				Selector: &typesv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}, "PDB"},
		{"budget allows no node", func(r *solverv1.ConsolidateRequest) {
			r.DisruptionAllowances = []*solverv1.NodePoolDisruptionAllowance{{NodePool: "default", MaxNodes: 0}}
		}, "Budget"},
		{"do-not-disrupt", func(r *solverv1.ConsolidateRequest) {
			r.Nodes[0].Annotations = map[string]string{"karpenter.sh/do-not-disrupt": "true"}
		}, "DoNotDisrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request()
			tc.mutate(req)
			resp, err := client.Consolidate(callCtx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKind == "" {
				if len(resp.GetActions()) != 1 || len(resp.GetBlocked()) != 0 {
					t.Fatalf("want one action: %v", resp)
				}
				return
			}
			if len(resp.GetActions()) != 0 || len(resp.GetBlocked()) != 1 || resp.GetBlocked()[0].GetKind() != tc.wantKind {
				t.Fatalf("want node-1 blocked (%s): %v", tc.wantKind, resp)
			}
		})
	}
	bad := request()
	bad.PodDisruptionBudgets = []*typesv1.PodDisruptionBudget{{Name: "x", DisruptionsAllowed: -1}}
	bad.DisruptionAllowances = []*solverv1.NodePoolDisruptionAllowance{{NodePool: "default", MaxNodes: -2}}
	_, err := client.Consolidate(callCtx(t), bad)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "pod_disruption_budgets[0].disruptions_allowed") ||
		!strings.Contains(err.Error(), "disruption_allowances[0].max_nodes") {
		t.Errorf("bad limits: %v", err)
	}
}
