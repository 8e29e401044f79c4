package solverapi_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-io/flotilla/internal/solverapi"
)

// TestMetricsRecordPlan checks that a Solve sets the plan gauges to the
// response's cost and lower bound.
func TestMetricsRecordPlan(t *testing.T) {
	m := solverapi.NewMetrics()
	svc := solverapi.NewService()
	svc.Metrics = m
	client := startSolver(t, 0, svc)
	resp, err := client.Solve(callCtx(t), smallRequest())
	if err != nil {
		t.Fatal(err)
	}
	cost, bound := resp.GetPlan().GetCostPerHour(), resp.GetLowerBoundPerHour()
	if cost <= 0 || bound <= 0 {
		t.Fatalf("plan cost %v, bound %v: want both above 0 for this request", cost, bound)
	}
	if got := testutil.ToFloat64(m.PlanCost); got != cost {
		t.Errorf("plan cost gauge %v, response %v", got, cost)
	}
	if got := testutil.ToFloat64(m.LowerBound); got != bound {
		t.Errorf("lower bound gauge %v, response %v", got, bound)
	}
	var nilMetrics *solverapi.Metrics
	svc.Metrics = nilMetrics // a nil *Metrics records nothing and does not panic
	if _, err := client.Solve(callCtx(t), smallRequest()); err != nil {
		t.Fatal(err)
	}
}
