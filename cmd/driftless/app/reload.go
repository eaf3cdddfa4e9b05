package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// configReloader re-reads the configuration file and hands every new valid version to apply.
// A file that does not load is logged and ignored: the last good configuration stays in force.
// Polling, rather than file notifications, also sees the symlink swap a mounted ConfigMap makes.
type configReloader struct {
	path     string
	interval time.Duration
	last     []byte
	apply    func(*v1alpha1.DriftlessConfig) error
	log      logr.Logger
	// reloads counts reload attempts by result: applied or failed.
	reloads *prometheus.CounterVec
}

func newReloadsMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_config_reloads_total",
		Help: "Changes of the configuration file seen by driftless run, by result: applied, or failed (the last good configuration stays).",
	}, []string{"result"})
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return are.ExistingCollector.(*prometheus.CounterVec), nil
		}
		return nil, err
	}
	return c, nil
}

// Start polls until ctx is done.
func (r *configReloader) Start(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.reload()
		}
	}
}

func (r *configReloader) reload() {
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.log.Error(err, "config reload failed, keeping the last good configuration", "config", r.path)
		return
	}
	if bytes.Equal(data, r.last) {
		return
	}
	// A bad file is reported once, not on every poll, until it changes again.
	r.last = data
	c, err := v1alpha1.Decode(data)
	if err == nil {
		err = r.apply(c)
	}
	if err != nil {
		r.reloads.WithLabelValues("failed").Inc()
		r.log.Error(err, "config reload failed, keeping the last good configuration", "config", r.path)
		return
	}
	r.reloads.WithLabelValues("applied").Inc()
	r.log.Info("configuration reloaded", "config", r.path, "mode", c.Guard.Mode)
}

// NeedLeaderElection is false: every replica serves the webhook with the current configuration.
func (r *configReloader) NeedLeaderElection() bool { return false }
