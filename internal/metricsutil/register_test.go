package metricsutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	newCounter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"result"})
	}
	reg := prometheus.NewRegistry()
	first, err := Register(reg, newCounter())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, newCounter())
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if second != first {
		t.Error("the second registration did not return the collector already registered")
	}
	// A collector of another type under the same name is an error.
	if _, err := Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_total", Help: "h"}, []string{"result"})); err == nil {
		t.Error("registering a gauge over the counter succeeded")
	}
	// Descriptors that clash in another way are an error too.
	if _, err := Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "other"}, []string{"result"})); err == nil {
		t.Error("registering a counter with another help text succeeded")
	}
}

func TestRegisterTo(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"result"})
	if err := RegisterTo(reg, &first); err != nil {
		t.Fatal(err)
	}
	second := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"result"})
	if err := RegisterTo(reg, &second); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if second != first {
		t.Error("RegisterTo did not replace the collector with the one already registered")
	}
	clash := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_total", Help: "h"}, []string{"result"})
	if err := RegisterTo(reg, &clash); err == nil {
		t.Error("registering a gauge over the counter succeeded")
	}
}
