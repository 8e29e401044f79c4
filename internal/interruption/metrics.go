package interruption

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the interruption service's Prometheus metrics.
type Metrics struct {
	// Received counts messages received, by kind (Unknown for unparsable ones).
	Received *prometheus.CounterVec
	// Actions counts what was done, by kind and action.
	Actions *prometheus.CounterVec
	// Dropped counts valid events dropped before any action, by reason
	// (the Drop constants): too old, from another account or region, or
	// without those fields.
	Dropped *prometheus.CounterVec
	// Errors counts failures, by stage: receive, parse, launcher, watcher, delete.
	Errors *prometheus.CounterVec
	// Deleted counts messages deleted from the queue.
	Deleted prometheus.Counter
	// DisruptDelay observes the time from the event to the watcher's acceptance of Disrupt (node tainted), by kind.
	DisruptDelay *prometheus.HistogramVec
	// HandleDuration observes how long handling one message took.
	HandleDuration prometheus.Histogram
}

// NewMetrics makes the metrics (unregistered; see Collectors). Every drop
// reason starts at zero, so alerts on it need no absent().
func NewMetrics() *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_interruption_messages_received_total", Help: "SQS messages received, by event kind (Unknown: could not be parsed).",
		}, []string{"kind"}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_interruption_actions_total", Help: "Actions taken on events, by kind and action (Disrupted, Observed, Ignored, Duplicate, Dropped, Malformed, Failed).",
		}, []string{"kind", "action"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_interruption_events_dropped_total",
			Help: "Events dropped without action, by reason (stale, future, other_account, other_region, missing_time, missing_account, missing_region).",
		}, []string{"reason"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_interruption_errors_total", Help: "Errors, by stage (receive, parse, launcher, watcher, delete).",
		}, []string{"stage"}),
		Deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_interruption_messages_deleted_total", Help: "SQS messages deleted after handling.",
		}),
		DisruptDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flotilla_interruption_disrupt_delay_seconds",
			Help:    "Time from the event's time to the watcher accepting the disruption (the node tainted), by kind.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"kind"}),
		HandleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_interruption_message_handling_seconds",
			Help:    "Time to handle one message, parse to action accepted.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
	}
	for _, r := range DropReasons {
		m.Dropped.WithLabelValues(r)
	}
	return m
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Received, m.Actions, m.Dropped, m.Errors, m.Deleted, m.DisruptDelay, m.HandleDuration}
}
