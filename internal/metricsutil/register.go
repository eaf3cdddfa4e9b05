package metricsutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the collector already registered
// under the same descriptors when it has c's type, so that a second start in one process
// (tests, a restarted run loop) shares the first one's metrics. Any other error is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// RegisterTo registers the collector at dst as [Register] does and replaces it with the one
// registered, so that a constructor can register all its collectors in one expression:
//
//	err := errors.Join(RegisterTo(reg, &m.syncs), RegisterTo(reg, &m.applied))
func RegisterTo[C prometheus.Collector](reg prometheus.Registerer, dst *C) error {
	c, err := Register(reg, *dst)
	*dst = c
	return err
}
