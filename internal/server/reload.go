package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/metricsutil"
)

// configReloader re-reads the configuration file, and the policy files it names, and hands
// every changed valid version to apply. What does not load is logged, counted and ignored: the
// last good configuration and policies stay in force. Polling, rather than file notifications,
// also sees the symlink swap a mounted ConfigMap makes. A change is taken only once two polls in
// a row read the same content, so that a file caught half-written (an editor or a copy that
// truncates, then writes) is never applied or reported as broken.
type configReloader struct {
	path     string
	interval time.Duration
	// last is the fingerprint of what was last tried; seen is the fingerprint the previous
	// poll read, which a change must match before it is tried.
	last  []byte
	seen  []byte
	apply func(context.Context, *v1alpha1.DriftlessConfig) error
	log   logr.Logger
	// reloads counts reload attempts by result: applied or failed.
	reloads *prometheus.CounterVec
}

func newReloadsMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_config_reloads_total",
		Help: "Changes of the configuration file or its policy files seen by driftless run, by result: applied, or failed (the last good configuration stays).",
	}, []string{"result"})
	return metricsutil.Register(reg, c)
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
			r.reload(ctx)
		}
	}
}

// NeedLeaderElection is false: every replica serves the webhook with the current configuration.
func (r *configReloader) NeedLeaderElection() bool { return false }

func (r *configReloader) reload(ctx context.Context) {
	c, fingerprint, err := loadConfig(r.path)
	if bytes.Equal(fingerprint, r.last) {
		r.seen = fingerprint
		return
	}
	if !bytes.Equal(fingerprint, r.seen) {
		// Changed since the previous poll: it may still be being written.
		r.seen = fingerprint
		return
	}
	// A bad version is reported once, not on every poll, until something changes again.
	r.last = fingerprint
	if err == nil {
		err = r.apply(ctx, c)
	}
	if err != nil {
		r.reloads.WithLabelValues("failed").Inc()
		r.log.Error(err, "config reload failed, keeping the last good configuration", "config", r.path)
		return
	}
	r.reloads.WithLabelValues("applied").Inc()
	r.log.Info("configuration reloaded", "config", r.path, "mode", c.Guard.Mode)
}

// loadConfig loads the configuration at path with v1alpha1's loader (strict, within
// v1alpha1.MaxConfigSize) and fingerprints it together with the policy files its policy sets
// name, so that a changed policy file counts as a change. What does not load fingerprints as
// its content or its error, so that the same broken version is reported once.
func loadConfig(path string) (*v1alpha1.DriftlessConfig, []byte, error) {
	h := sha256.New()
	data, err := v1alpha1.ReadFile(path)
	if err != nil {
		h.Write([]byte(err.Error()))
		return nil, h.Sum(nil), err
	}
	h.Write(data)
	c, err := v1alpha1.Parse(path, data)
	if err != nil {
		return nil, h.Sum(nil), err
	}
	for _, ps := range c.PolicySets {
		for _, root := range ps.Paths {
			// Unreadable paths fingerprint as their error; Engine.Load reports them.
			werr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
					return err
				}
				content, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				h.Write([]byte(p))
				h.Write(content)
				return nil
			})
			if werr != nil {
				h.Write([]byte(werr.Error()))
			}
		}
	}
	return c, h.Sum(nil), nil
}
