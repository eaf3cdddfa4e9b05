package webhook

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/internal/metricsutil"
)

// Metrics are the guard's Prometheus metrics. Every label takes its values from a fixed set
// (results, reasons, Event reasons) or from the configuration (break-glass groups): nothing a
// caller sends creates a series.
type Metrics struct {
	decisions  *prometheus.CounterVec
	latency    prometheus.Histogram
	breakGlass *prometheus.CounterVec
	events     *prometheus.CounterVec
	refusals   *prometheus.CounterVec
}

// Why the server refused a request before the guard decided it.
const (
	RefusedOverloaded = "overloaded"
	RefusedTooLarge   = "too-large"
)

// Whether an Event was written or left out by the Event limiter.
const (
	eventRecorded   = "recorded"
	eventSuppressed = "suppressed"
)

// NewMetrics creates the guard's metrics and registers them with reg. Registering twice with
// the same registry returns the metrics registered first, so two guards in one process share
// them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_guard_decisions_total",
			Help: "Admission requests decided by the guard, by result (allowed, denied, warned, recorded, errored) and reason.",
		}, []string{"result", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "driftless_guard_decision_duration_seconds",
			Help:    "Time the guard took to decide an admission request, from decoded request to response.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25},
		}),
		breakGlass: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_guard_break_glass_uses_total",
			Help: "Changes allowed under break-glass, by configured break-glass group. The user is in the log line and the Event.",
		}, []string{"group"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_guard_events_total",
			Help: "Events the guard recorded, or suppressed because the Event rate limit was reached, by Event reason.",
		}, []string{"reason", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_guard_requests_refused_total",
			Help: "Requests the guard's server refused before deciding them: overloaded (too many in flight) or too-large (body over the limit).",
		}, []string{"reason"}),
	}
	if err := errors.Join(
		metricsutil.RegisterTo(reg, &m.decisions),
		metricsutil.RegisterTo(reg, &m.latency),
		metricsutil.RegisterTo(reg, &m.breakGlass),
		metricsutil.RegisterTo(reg, &m.events),
		metricsutil.RegisterTo(reg, &m.refusals),
	); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observe(result Result, reason Reason, took time.Duration) {
	m.decisions.WithLabelValues(string(result), string(reason)).Inc()
	m.latency.Observe(took.Seconds())
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}
