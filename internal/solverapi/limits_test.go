package solverapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

func wantCode(t *testing.T, err error, code codes.Code, substrs ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("error %v: want %s", err, code)
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message(), s) {
			t.Errorf("message %q lacks %q", st.Message(), s)
		}
	}
}

func TestLimitsRefuseOversizedRequests(t *testing.T) {
	client := startSolver(t, 0, &solverapi.Service{Limits: solverapi.Limits{MaxPods: 4, MaxInstanceTypes: 1}})
	_, err := client.Solve(callCtx(t), smallRequest())
	wantCode(t, err, codes.ResourceExhausted, "instance_types", "2 instance types", "limit of 1", "--max-instance-types")

	client = startSolver(t, 0, &solverapi.Service{Limits: solverapi.Limits{MaxPods: 4}})
	if _, err := client.Solve(callCtx(t), smallRequest()); err != nil {
		t.Fatalf("3 pods under a limit of 4: %v", err)
	}
	// Pods bound to nodes count too.
	req := smallRequest()
	req.Nodes = []*typesv1.Node{{Name: "n1", Pods: req.GetPods()[:2]}}
	_, err = client.Solve(callCtx(t), req)
	wantCode(t, err, codes.ResourceExhausted, "pods", "5 pods", "limit of 4", "--max-pods")
	_, err = client.Consolidate(callCtx(t), &solverv1.ConsolidateRequest{Nodes: []*typesv1.Node{{Name: "n1", Pods: append(req.GetPods(), req.GetPods()...)}}})
	wantCode(t, err, codes.ResourceExhausted, "6 pods")
}

// A million pods is refused at once with the default limits, before any
// validation or conversion.
func TestDefaultLimitsRefuseAMillionPods(t *testing.T) {
	req := smallRequest()
	pods := make([]*typesv1.Pod, 1_000_000)
	for i := range pods {
		pods[i] = req.GetPods()[0]
	}
	req.Pods = pods
	_, err := solverapi.NewService().Solve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "limit of 200000") || !strings.Contains(err.Error(), "1000000 pods") {
		t.Fatalf("a million pods: %v", err)
	}
}

// Ten thousand instance types are within the default limits and answered.
func TestTenThousandInstanceTypesAreAnswered(t *testing.T) {
	client := startService(t, 0)
	req := smallRequest()
	for i := range 10_000 - len(req.GetInstanceTypes()) {
		name := fmt.Sprintf("t%05d", i)
		req.InstanceTypes = append(req.InstanceTypes, &typesv1.InstanceType{
			Name:        name,
			Labels:      map[string]string{"node.kubernetes.io/instance-type": name, "kubernetes.io/arch": "amd64"},
			Capacity:    map[string]string{"cpu": fmt.Sprint(2 + i%64), "memory": fmt.Sprintf("%dGi", 8+i%256), "pods": "110"},
			Allocatable: map[string]string{"cpu": fmt.Sprintf("%dm", 1900+1000*(i%64)), "memory": fmt.Sprintf("%dGi", 7+i%256), "pods": "110"},
			Offerings:   []*typesv1.Offering{{Zone: "zone-a", CapacityType: "on-demand", PricePerHour: 0.2 + float64(i%97)/10, Available: true}},
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.Solve(ctx, req)
	if err != nil {
		t.Fatalf("10,000 instance types: %v", err)
	}
	if len(resp.GetPlan().GetUnschedulable()) != 0 || len(resp.GetPlan().GetNodeClaims()) == 0 {
		t.Errorf("plan: %d claims, unschedulable %v", len(resp.GetPlan().GetNodeClaims()), resp.GetPlan().GetUnschedulable())
	}
}

// bigRequest takes the solver longer than a few milliseconds.
func bigRequest(n int) *solverv1.SolveRequest {
	req := smallRequest()
	req.Pods = nil
	for i := range n {
		req.Pods = append(req.Pods, &typesv1.Pod{
			Namespace: "app", Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"app": fmt.Sprint(i % 50)}, Owner: fmt.Sprintf("ReplicaSet/app/r%d", i%50),
			Containers: []*typesv1.Container{{Name: "c", Requests: map[string]string{"cpu": fmt.Sprintf("%dm", 100+(i%50)*20), "memory": fmt.Sprintf("%dMi", 128+(i%37)*64)}}},
		})
	}
	return req
}

func TestDeadlineExceededWithoutPartialAnswers(t *testing.T) {
	client := startService(t, 0)
	req := bigRequest(20000)
	for _, partial := range []bool{false, true} {
		req.Options = &solverv1.SolveOptions{AllowPartial: partial}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := client.Solve(ctx, req)
		cancel()
		// Too short for even the first strategy: no plan exists to return.
		wantCode(t, err, codes.DeadlineExceeded)
	}
}

func TestAllowPartialShortensTheImprovementToTheDeadline(t *testing.T) {
	client := startService(t, 0)
	for _, tc := range []struct {
		allow, want bool
		opts        *solverv1.SolveOptions
	}{
		{allow: false, want: false},
		{allow: true, want: true},
		{allow: true, want: false, opts: &solverv1.SolveOptions{ImproveBudgetSeconds: -1}},
		{allow: true, want: false, opts: &solverv1.SolveOptions{ImproveRounds: 2}},
	} {
		req := smallRequest()
		req.Options = tc.opts
		if req.Options == nil {
			req.Options = &solverv1.SolveOptions{}
		}
		req.Options.AllowPartial = tc.allow
		// 5 s × 0.8 is more than the default 200 ms budget; 150 ms is not.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.Solve(ctx, req)
		cancel()
		if err != nil || resp.GetPartial() {
			t.Fatalf("%+v with 5s: partial=%v err=%v, want a whole answer", tc, resp.GetPartial(), err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
		resp, err = client.Solve(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%+v with 150ms: %v", tc, err)
		}
		if resp.GetPartial() != tc.want || len(resp.GetPlan().GetNodeClaims()) == 0 {
			t.Errorf("%+v with 150ms: partial=%v (want %v), %d claims", tc, resp.GetPartial(), tc.want, len(resp.GetPlan().GetNodeClaims()))
		}
	}
}

// A request over the limits is refused before any other work: even when
// every pod in it is invalid it is refused for its size (validation has
// not run), and refusing it allocates a few objects whatever its size
// (nothing was converted).
func TestLimitsRefuseBeforeValidationOrConversion(t *testing.T) {
	svc := &solverapi.Service{Limits: solverapi.Limits{MaxPods: 1000, MaxInstanceTypes: 100}}
	invalid := &typesv1.Pod{Containers: []*typesv1.Container{{Requests: map[string]string{"cpu": "lots"}}}} // no name, bad quantity
	pods := func(n int) []*typesv1.Pod {
		out := make([]*typesv1.Pod, n)
		for i := range out {
			out[i] = invalid
		}
		return out
	}
	types := make([]*typesv1.InstanceType, 101)
	for i := range types {
		types[i] = &typesv1.InstanceType{Capacity: map[string]string{"cpu": "lots"}}
	}
	solve := func(req *solverv1.SolveRequest) func() error {
		return func() error { _, err := svc.Solve(context.Background(), req); return err }
	}
	consolidate := func(req *solverv1.ConsolidateRequest) func() error {
		return func() error { _, err := svc.Consolidate(context.Background(), req); return err }
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"1,001 pending pods", solve(&solverv1.SolveRequest{Pods: pods(1001)})},
		{"200,000 pending pods", solve(&solverv1.SolveRequest{Pods: pods(200_000)})},
		{"101 instance types", solve(&solverv1.SolveRequest{Pods: pods(1), InstanceTypes: types})},
		{"200,000 pods on a node to consolidate", consolidate(&solverv1.ConsolidateRequest{Nodes: []*typesv1.Node{{Pods: pods(200_000)}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, apierr.ErrResourceExhausted) || errors.Is(err, solverapi.ErrInvalidArgument) {
				t.Fatalf("err %v, want only ResourceExhausted", err)
			}
			if allocs := testing.AllocsPerRun(5, func() { _ = tc.call() }); allocs > 10 {
				t.Errorf("refusing allocated %.0f objects: it did more than compare the request's size with the limits", allocs)
			}
		})
	}
}
