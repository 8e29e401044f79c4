package solverapi

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the solver's collectors: how good its plans are. Latency and
// errors are measured by internal/server's gRPC interceptors. A nil
// *Metrics records nothing.
type Metrics struct {
	// PlanCost is the cost per hour of the new NodeClaims of this replica's
	// last Solve.
	PlanCost prometheus.Gauge
	// LowerBound is the lower bound of that plan's cost.
	LowerBound prometheus.Gauge
	// CostToBound observes each plan's cost divided by its lower bound,
	// for the plans whose bound is above 0.
	CostToBound prometheus.Histogram
}

// NewMetrics makes unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		PlanCost: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "flotilla", Subsystem: "solver", Name: "plan_cost_per_hour_dollars",
			Help: "Cost of the new NodeClaims of the last Solve's plan, in US dollars per hour.",
		}),
		LowerBound: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "flotilla", Subsystem: "solver", Name: "plan_lower_bound_per_hour_dollars",
			Help: "Proven lower bound of the last Solve's plan cost, in US dollars per hour.",
		}),
		CostToBound: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "flotilla", Subsystem: "solver", Name: "plan_cost_to_bound_ratio",
			Help:    "Plan cost divided by its lower bound, per Solve whose bound is above 0 (1 is optimal).",
			Buckets: []float64{1, 1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2, 3, 5},
		}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.PlanCost, m.LowerBound, m.CostToBound}
}

// plan records one Solve's plan cost and lower bound.
func (m *Metrics) plan(cost, bound float64) {
	if m == nil {
		return
	}
	m.PlanCost.Set(cost)
	m.LowerBound.Set(bound)
	if bound > 0 {
		m.CostToBound.Observe(cost / bound)
	}
}
