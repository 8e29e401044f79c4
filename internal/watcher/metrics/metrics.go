// Package metrics holds the watcher's Prometheus collectors: pending pods,
// provisioning batches and solves, NodeClaims created, terminated and
// disrupted, and NodePool usage, limits and cost. A nil *Metrics records
// nothing, so tests may leave it out.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the watcher's collectors.
type Metrics struct {
	// PendingPods is the number of provisionable pods seen by the last batch.
	PendingPods prometheus.Gauge
	// BatchSize observes the pods of each provisioning batch.
	BatchSize prometheus.Histogram
	// SolveDuration times solver calls by method (Solve, Consolidate) and result.
	SolveDuration *prometheus.HistogramVec
	// NodeClaimsCreated counts NodeClaims created by NodePool and reason (provisioning, replacement).
	NodeClaimsCreated *prometheus.CounterVec
	// NodeClaimsTerminated counts NodeClaims whose termination finished, by NodePool.
	NodeClaimsTerminated *prometheus.CounterVec
	// NodeClaimsDisrupted counts NodeClaims the watcher chose to disrupt, by reason.
	NodeClaimsDisrupted *prometheus.CounterVec
	// NodePoolUsage is each NodePool's provisioned capacity by resource.
	NodePoolUsage *prometheus.GaugeVec
	// NodePoolLimit is each NodePool's limit by resource.
	NodePoolLimit *prometheus.GaugeVec
	// CostPerHour is the price of each NodePool's NodeClaims in US dollars per hour.
	CostPerHour *prometheus.GaugeVec
	// Launches counts launcher Launch calls by result (launched, insufficient_capacity, error).
	Launches *prometheus.CounterVec
}

// New makes unregistered collectors.
func New() *Metrics {
	const ns, sub = "flotilla", "watcher"
	return &Metrics{
		PendingPods: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pending_pods",
			Help: "Provisionable pods (PodScheduled=False, reason Unschedulable) seen by the last provisioning batch."}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_size_pods",
			Help: "Pending pods per provisioning batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		SolveDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "solve_duration_seconds",
			Help: "Solver call latency by method and result.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"method", "result"}),
		NodeClaimsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "nodeclaims_created_total",
			Help: "NodeClaims created by NodePool and reason."}, []string{"nodepool", "reason"}),
		NodeClaimsTerminated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "nodeclaims_terminated_total",
			Help: "NodeClaims whose termination finished, by NodePool."}, []string{"nodepool"}),
		NodeClaimsDisrupted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "nodeclaims_disrupted_total",
			Help: "NodeClaims disrupted by reason (Empty, Underutilized, Drifted, Expired, Interrupted, LaunchTimeout, RegistrationTimeout, ...)."}, []string{"reason"}),
		NodePoolUsage: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "nodepool_usage",
			Help: "Capacity provisioned by each NodePool, by resource (cpu in cores, memory in bytes)."}, []string{"nodepool", "resource"}),
		NodePoolLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "nodepool_limit",
			Help: "Limit of each NodePool, by resource (cpu in cores, memory in bytes)."}, []string{"nodepool", "resource"}),
		CostPerHour: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "nodepool_cost_per_hour_dollars",
			Help: "Price of each NodePool's NodeClaims in US dollars per hour."}, []string{"nodepool"}),
		Launches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "launches_total",
			Help: "Launch calls to the launcher by result."}, []string{"result"}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.PendingPods, m.BatchSize, m.SolveDuration, m.NodeClaimsCreated, m.NodeClaimsTerminated,
		m.NodeClaimsDisrupted, m.NodePoolUsage, m.NodePoolLimit, m.CostPerHour, m.Launches}
}

// Batch records one provisioning batch of pending pods.
func (m *Metrics) Batch(pending int) {
	if m == nil {
		return
	}
	m.PendingPods.Set(float64(pending))
	m.BatchSize.Observe(float64(pending))
}

// Solve records one solver call.
func (m *Metrics) Solve(method string, err error, seconds float64) {
	if m == nil {
		return
	}
	m.SolveDuration.WithLabelValues(method, result(err)).Observe(seconds)
}

// Created records a NodeClaim created.
func (m *Metrics) Created(nodePool, reason string) {
	if m == nil {
		return
	}
	m.NodeClaimsCreated.WithLabelValues(nodePool, reason).Inc()
}

// Terminated records a NodeClaim whose termination finished.
func (m *Metrics) Terminated(nodePool string) {
	if m == nil {
		return
	}
	m.NodeClaimsTerminated.WithLabelValues(nodePool).Inc()
}

// Disrupted records a NodeClaim disrupted for reason.
func (m *Metrics) Disrupted(reason string) {
	if m == nil {
		return
	}
	m.NodeClaimsDisrupted.WithLabelValues(reason).Inc()
}

// Launch records one Launch call by result.
func (m *Metrics) Launch(res string) {
	if m == nil {
		return
	}
	m.Launches.WithLabelValues(res).Inc()
}

// NodePool records a NodePool's usage, limits (both as floats per resource)
// and cost per hour.
func (m *Metrics) NodePool(name string, usage, limits map[string]float64, costPerHour float64) {
	if m == nil {
		return
	}
	m.NodePoolUsage.DeletePartialMatch(prometheus.Labels{"nodepool": name})
	m.NodePoolLimit.DeletePartialMatch(prometheus.Labels{"nodepool": name})
	for r, v := range usage {
		m.NodePoolUsage.WithLabelValues(name, r).Set(v)
	}
	for r, v := range limits {
		m.NodePoolLimit.WithLabelValues(name, r).Set(v)
	}
	m.CostPerHour.WithLabelValues(name).Set(costPerHour)
}

// ForgetNodePool drops the series of a deleted NodePool.
func (m *Metrics) ForgetNodePool(name string) {
	if m == nil {
		return
	}
	m.NodePoolUsage.DeletePartialMatch(prometheus.Labels{"nodepool": name})
	m.NodePoolLimit.DeletePartialMatch(prometheus.Labels{"nodepool": name})
	m.CostPerHour.DeleteLabelValues(name)
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
