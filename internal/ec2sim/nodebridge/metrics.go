package nodebridge

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bridge's collectors. A nil *Metrics records nothing.
type Metrics struct {
	// Nodes counts Node changes by action: registered or deleted.
	Nodes *prometheus.CounterVec
	// Syncs counts sync passes by result: ok or error.
	Syncs *prometheus.CounterVec
}

// NewMetrics makes unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Nodes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "ec2sim_nodebridge", Name: "nodes_total",
			Help: "Nodes the EC2 simulator's node bridge changed, by action: registered or deleted.",
		}, []string{"action"}),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "ec2sim_nodebridge", Name: "syncs_total",
			Help: "Sync passes of the EC2 simulator's node bridge, by result: ok or error.",
		}, []string{"result"}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Nodes, m.Syncs}
}

func (m *Metrics) countRegistered() {
	if m != nil {
		m.Nodes.WithLabelValues("registered").Inc()
	}
}

func (m *Metrics) countDeleted() {
	if m != nil {
		m.Nodes.WithLabelValues("deleted").Inc()
	}
}

func (m *Metrics) observeSync(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.Syncs.WithLabelValues(result).Inc()
}
