package reconciler

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/internal/metricsutil"
)

// Metrics are the reconciler's Prometheus metrics, labelled by source.
type Metrics struct {
	syncDuration *prometheus.HistogramVec
	syncs        *prometheus.CounterVec
	applied      *prometheus.CounterVec
	pruned       *prometheus.CounterVec
	driftReverts *prometheus.CounterVec
	breakGlass   *prometheus.GaugeVec
	nextExpiry   *prometheus.GaugeVec
}

// NewMetrics creates the reconciler's metrics and registers them with reg. Registering twice
// with the same registry returns the metrics registered first, so reconcilers in one process
// share them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "driftless_reconciler_sync_duration_seconds",
			Help:    "Time one sync of a source took: fetch, render, policy, dry-run, apply and prune.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"source"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_reconciler_syncs_total",
			Help: "Syncs of a source by result (Applied, FetchFailed, VerificationFailed, RenderFailed, PolicyDenied, PolicyFailed, ApplyFailed, AdoptionRefused, LimitExceeded, PruneRefused, PruneFailed).",
		}, []string{"source", "result"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_reconciler_objects_applied_total",
			Help: "Objects created or changed by syncs of a source (unchanged objects are not counted).",
		}, []string{"source"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_reconciler_objects_pruned_total",
			Help: "Objects deleted because they left Git.",
		}, []string{"source"}),
		driftReverts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_reconciler_drift_reverts_total",
			Help: "Out-of-band changes to applied objects reverted to Git, including expired break-glass changes.",
		}, []string{"source"}),
		breakGlass: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "driftless_reconciler_break_glass_active",
			Help: "Objects of a source left alone under an active break-glass.",
		}, []string{"source"}),
		nextExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "driftless_reconciler_break_glass_next_expiry_timestamp_seconds",
			Help: "When the first active break-glass of a source expires and its object is reverted to Git, in seconds since the epoch; 0 when none is active.",
		}, []string{"source"}),
	}
	if err := errors.Join(
		metricsutil.RegisterTo(reg, &m.syncDuration),
		metricsutil.RegisterTo(reg, &m.syncs),
		metricsutil.RegisterTo(reg, &m.applied),
		metricsutil.RegisterTo(reg, &m.pruned),
		metricsutil.RegisterTo(reg, &m.driftReverts),
		metricsutil.RegisterTo(reg, &m.breakGlass),
		metricsutil.RegisterTo(reg, &m.nextExpiry),
	); err != nil {
		return nil, err
	}
	return m, nil
}

// The methods below do nothing on a nil *Metrics.

func (m *Metrics) observeSync(source string, result SyncResult, took time.Duration, applied, pruned int) {
	if m == nil {
		return
	}
	m.syncDuration.WithLabelValues(source).Observe(took.Seconds())
	m.syncs.WithLabelValues(source, string(result)).Inc()
	m.applied.WithLabelValues(source).Add(float64(applied))
	m.pruned.WithLabelValues(source).Add(float64(pruned))
}

func (m *Metrics) driftReverted(source string) {
	if m == nil {
		return
	}
	m.driftReverts.WithLabelValues(source).Inc()
}

// setBreakGlass sets the number of objects held under break-glass and the first expiry
// among them (held sorted by expiry, the first first).
func (m *Metrics) setBreakGlass(source string, held []BreakGlassObject) {
	if m == nil {
		return
	}
	m.breakGlass.WithLabelValues(source).Set(float64(len(held)))
	next := 0.0
	if len(held) > 0 {
		next = float64(held[0].Until.Unix())
	}
	m.nextExpiry.WithLabelValues(source).Set(next)
}
