// Package metricsutil holds the Prometheus helpers the guard, the reconciler and the command
// line share. It knows nothing of Driftless' domain and imports only Prometheus.
package metricsutil
