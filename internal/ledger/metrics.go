package ledger

import (
	"errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/internal/metricsutil"
)

// Metrics are the ledger's and the sink's Prometheus metrics. Labels take fixed values only.
type Metrics struct {
	records       *prometheus.CounterVec
	buffered      prometheus.Gauge
	writeFailures prometheus.Counter
	storedBytes   prometheus.Gauge
	sinkQueue     prometheus.Gauge
	sinkBatches   *prometheus.CounterVec
	sinkRecords   *prometheus.CounterVec
}

// Outcomes of a record in driftless_ledger_records_total and
// driftless_ledger_sink_records_total.
const (
	outcomeWritten    = "written"
	outcomeBufferFull = "dropped-buffer-full"
	outcomeUnwritten  = "dropped-write-failed"
	outcomeDelivered  = "delivered"
	outcomeQueueFull  = "dropped-queue-full"
	outcomeRejected   = "rejected"
	outcomeFailed     = "failed"
)

// NewMetrics creates the ledger's metrics and registers them with reg; registering twice
// returns the metrics registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_ledger_records_total",
			Help: "Ledger records by outcome: written to the cluster, dropped-buffer-full (the in-memory buffer was full; admission was not slowed), dropped-write-failed (writes kept failing).",
		}, []string{"outcome"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "driftless_ledger_buffered_records",
			Help: "Ledger records held in memory, waiting to be written to the cluster.",
		}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "driftless_ledger_write_failures_total",
			Help: "Failed writes of ledger records to the cluster; the records are kept and written again.",
		}),
		storedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "driftless_ledger_stored_bytes",
			Help: "Size of the ledger records kept in the cluster, as of the last cleanup.",
		}),
		sinkQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "driftless_ledger_sink_queue_length",
			Help: "Ledger records waiting for delivery to the sink.",
		}),
		sinkBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_ledger_sink_deliveries_total",
			Help: "Deliveries (batches of records) to the sink by outcome: delivered, failed (retried with backoff), rejected (a 4xx answer; dropped).",
		}, []string{"outcome"}),
		sinkRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_ledger_sink_records_total",
			Help: "Ledger records by what became of them at the sink: delivered, rejected, dropped-queue-full.",
		}, []string{"outcome"}),
	}
	if err := errors.Join(
		metricsutil.RegisterTo(reg, &m.records),
		metricsutil.RegisterTo(reg, &m.buffered),
		metricsutil.RegisterTo(reg, &m.writeFailures),
		metricsutil.RegisterTo(reg, &m.storedBytes),
		metricsutil.RegisterTo(reg, &m.sinkQueue),
		metricsutil.RegisterTo(reg, &m.sinkBatches),
		metricsutil.RegisterTo(reg, &m.sinkRecords),
	); err != nil {
		return nil, err
	}
	return m, nil
}
