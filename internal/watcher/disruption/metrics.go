package disruption

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the disruption controller's collectors. A nil *Metrics
// records nothing.
type Metrics struct {
	// Decisions counts disrupted nodes by reason and action.
	Decisions *prometheus.CounterVec
	// Blocked counts candidates left alone by reason, per pass.
	Blocked *prometheus.CounterVec
	// BlockedNow gauges the candidates the last pass left alone, by
	// reason.
	BlockedNow *prometheus.GaugeVec
	// PassDuration times Run.
	PassDuration prometheus.Histogram
}

// NewMetrics makes unregistered collectors.
func NewMetrics() *Metrics {
	m := newMetrics()
	// Every reason and action is exposed from the start, at 0, so a
	// dashboard shows 0 rather than no data after a restart.
	for _, reason := range []string{ReasonExpired, ReasonDrifted, ReasonEmpty, ReasonUnderutilized} {
		for _, action := range []string{ActionDelete, ActionReplace} {
			m.Decisions.WithLabelValues(reason, action)
		}
	}
	return m
}

func newMetrics() *Metrics {
	return &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "disruption", Name: "decisions_total",
			Help: "Nodes disrupted, by reason (Expired, Drifted, Empty, Underutilized) and action (Delete, Replace).",
		}, []string{"reason", "action"}),
		Blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flotilla", Subsystem: "disruption", Name: "blocked_total",
			Help: "Candidates left alone in a disruption pass, by reason.",
		}, []string{"reason"}),
		BlockedNow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "flotilla", Subsystem: "disruption", Name: "blocked_candidates",
			Help: "Candidates the last disruption pass left alone, by reason (e.g. Unpriced, InstanceTypesUnlisted, DaemonSetUnconverted).",
		}, []string{"reason"}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "flotilla", Subsystem: "disruption", Name: "pass_duration_seconds",
			Help:    "Duration of disruption passes, replacements included.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		}),
	}
}

// Collectors lists the collectors, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Decisions, m.Blocked, m.BlockedNow, m.PassDuration}
}

func (m *Metrics) decision(reason, action string) {
	if m != nil {
		m.Decisions.WithLabelValues(reason, action).Inc()
	}
}

func (m *Metrics) blocked(reason string) {
	if m != nil {
		m.Blocked.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) pass(seconds float64) {
	if m != nil {
		m.PassDuration.Observe(seconds)
	}
}

// blockedNow sets BlockedNow to the pass's blocked candidates.
func (m *Metrics) blockedNow(blocked []Blocked) {
	if m == nil {
		return
	}
	counts := map[string]int{}
	for _, b := range blocked {
		counts[b.Reason]++
	}
	m.BlockedNow.Reset()
	for reason, n := range counts {
		m.BlockedNow.WithLabelValues(reason).Set(float64(n))
	}
}
