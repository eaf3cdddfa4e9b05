package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

const reloadConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  mode: %s
`

// TestReloadWaitsForTheFileToSettle: a change is applied once two polls read the same
// content, so a file caught half-written is neither applied nor counted as a failure.
func TestReloadWaitsForTheFileToSettle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmtMode("enforce"))
	_, fingerprint, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	reloads, err := newReloadsMetric(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	r := &configReloader{path: path, last: fingerprint, log: logr.Discard(), reloads: reloads,
		apply: func(_ context.Context, c *v1alpha1.DriftlessConfig) error {
			applied = append(applied, string(c.Guard.Mode))
			return nil
		}}
	counts := func() (float64, float64) {
		return testutil.ToFloat64(reloads.WithLabelValues("applied")), testutil.ToFloat64(reloads.WithLabelValues("failed"))
	}

	r.reload(t.Context())
	if len(applied) != 0 {
		t.Fatalf("an unchanged file was applied: %v", applied)
	}
	// Half of the new file, as a truncate-then-write shows it between two writes.
	full := fmtMode("warn")
	write(full[:len(full)-8])
	r.reload(t.Context())
	write(full)
	r.reload(t.Context())
	if a, f := counts(); len(applied) != 0 || a != 0 || f != 0 {
		t.Fatalf("a file still changing was tried: applied %v, counters applied=%v failed=%v", applied, a, f)
	}
	r.reload(t.Context())
	if a, f := counts(); len(applied) != 1 || applied[0] != "warn" || a != 1 || f != 0 {
		t.Fatalf("the settled file: applied %v, counters applied=%v failed=%v; want [warn], 1, 0", applied, a, f)
	}
	r.reload(t.Context())
	if len(applied) != 1 {
		t.Fatalf("the same file was applied again: %v", applied)
	}
}

func fmtMode(mode string) string {
	return fmt.Sprintf(reloadConfig, mode)
}
