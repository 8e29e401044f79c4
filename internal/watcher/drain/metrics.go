package drain

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the drainer's collectors. A nil *Metrics records nothing.
type Metrics struct {
	// Pods counts pods handled by result: evicted, deleted, blocked, gone or
	// error.
	Pods *prometheus.CounterVec
}

// NewMetrics makes unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Pods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "drain", Name: "pods_total",
			Help: "Pods handled while draining nodes, by result: evicted, deleted, blocked, gone or error.",
		}, []string{"result"}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Pods}
}

func (m *Metrics) record(result string) {
	if m == nil {
		return
	}
	m.Pods.WithLabelValues(result).Inc()
}
