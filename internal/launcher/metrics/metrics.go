// Package metrics holds the launcher's Prometheus collectors: AWS API calls
// (every attempt, retries included) and launches. The service registers them
// on the gRPC server's registry.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

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
	// Instances and InstancesCost are the cluster's live instances at the
	// last ListInstances (the watcher's garbage collection lists them every
	// minute): their number and their price per hour, by offering.
	Instances     *prometheus.GaugeVec
	InstancesCost *prometheus.GaugeVec
	// instancesMu makes each listing replace the gauges whole, when two
	// listings end at once.
	instancesMu sync.Mutex
}

// offeringLabels label the instance gauges.
var offeringLabels = []string{"nodepool", "instance_type", "zone", "capacity_type"}

// Offering is what the instance gauges are counted by.
type Offering struct {
	NodePool, InstanceType, Zone, CapacityType string
}

// InstanceGroup is the live instances of one Offering.
type InstanceGroup struct {
	Count        int
	PricePerHour float64
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
		Instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "instances",
			Help: "The cluster's live instances at the last ListInstances, by NodePool, instance type, zone and capacity type.",
		}, offeringLabels),
		InstancesCost: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "flotilla", Subsystem: "launcher", Name: "instances_cost_per_hour_dollars",
			Help: "Price of the cluster's live instances at the last ListInstances in US dollars per hour, by NodePool, instance type, zone and capacity type.",
		}, offeringLabels),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.APICalls, m.APIDuration, m.Launches, m.LaunchDuration, m.FleetBatchSize, m.LaunchTemplatesDeleted, m.TerminationsRefused,
		m.Instances, m.InstancesCost}
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

// ListedInstances replaces the instance gauges with one listing of the
// cluster's live instances.
func (m *Metrics) ListedInstances(groups map[Offering]InstanceGroup) {
	if m == nil {
		return
	}
	m.instancesMu.Lock()
	defer m.instancesMu.Unlock()
	m.Instances.Reset()
	m.InstancesCost.Reset()
	for o, g := range groups {
		labels := []string{o.NodePool, o.InstanceType, o.Zone, o.CapacityType}
		m.Instances.WithLabelValues(labels...).Set(float64(g.Count))
		m.InstancesCost.WithLabelValues(labels...).Set(g.PricePerHour)
	}
}
