// Package metrics holds the launcher's Prometheus collectors: AWS API calls
// (every attempt, retries included) and launches. The service registers them
// on the gRPC server's registry.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the launcher's collectors. A nil *Metrics records nothing.
type Metrics struct {
	// APICalls counts AWS API attempts by service, operation and error code
	// ("" for success).
	APICalls *prometheus.CounterVec
	// APIDuration times AWS API attempts by service and operation.
	APIDuration *prometheus.HistogramVec
	// Launches counts Launch calls by result: launched, existing,
	// insufficient_capacity or error.
	Launches *prometheus.CounterVec
	// LaunchDuration times Launch calls by result.
	LaunchDuration *prometheus.HistogramVec
	// FleetBatchSize observes the NodeClaims each CreateFleet serves.
	FleetBatchSize prometheus.Histogram
	// LaunchTemplatesDeleted counts unused launch templates deleted.
	LaunchTemplatesDeleted prometheus.Counter
	// TerminationsRefused counts Terminate calls refused because the
	// instance was not the NodeClaim's in this cluster.
	TerminationsRefused prometheus.Counter
}

// New makes unregistered collectors.
func New() *Metrics {
	return &Metrics{
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "aws_api_calls_total",
			Help: "AWS API attempts by service, operation and error code (empty on success).",
		}, []string{"service", "operation", "code"}),
		APIDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "aws_api_call_duration_seconds",
			Help:    "AWS API attempt latency by service and operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "operation"}),
		Launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "launches_total",
			Help: "Launch calls by result: launched, existing, insufficient_capacity or error.",
		}, []string{"result"}),
		LaunchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "launch_duration_seconds",
			Help:    "Launch call latency by result.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		FleetBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "fleet_batch_size",
			Help:    "NodeClaims served by one CreateFleet.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100},
		}),
		LaunchTemplatesDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "launch_templates_deleted_total",
			Help: "Launch templates the launcher created and deleted after they went unused.",
		}),
		TerminationsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "terminations_refused_total",
			Help: "Terminate calls refused: the instance lacked this cluster's tag, a NodePool tag or the NodeClaim tag asked for.",
		}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.APICalls, m.APIDuration, m.Launches, m.LaunchDuration, m.FleetBatchSize, m.LaunchTemplatesDeleted, m.TerminationsRefused}
}

// Launch records one Launch call.
func (m *Metrics) Launch(result string, seconds float64) {
	if m == nil {
		return
	}
	m.Launches.WithLabelValues(result).Inc()
	m.LaunchDuration.WithLabelValues(result).Observe(seconds)
}

// APICall records one AWS API attempt.
func (m *Metrics) APICall(service, operation, code string, seconds float64) {
	if m == nil {
		return
	}
	m.APICalls.WithLabelValues(service, operation, code).Inc()
	m.APIDuration.WithLabelValues(service, operation).Observe(seconds)
}

// FleetBatch records the size of one CreateFleet.
func (m *Metrics) FleetBatch(n int) {
	if m == nil {
		return
	}
	m.FleetBatchSize.Observe(float64(n))
}

// TemplateDeleted records one deleted launch template.
func (m *Metrics) TemplateDeleted() {
	if m == nil {
		return
	}
	m.LaunchTemplatesDeleted.Inc()
}

// TerminateRefused records one refused Terminate.
func (m *Metrics) TerminateRefused() {
	if m == nil {
		return
	}
	m.TerminationsRefused.Inc()
}
