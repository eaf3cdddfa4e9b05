package reconciler_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

func TestStatusAndMetrics(t *testing.T) {
	name := unique("metrics")
	reg := prometheus.NewRegistry()
	m, err := reconciler.NewMetrics(reg)
	if err != nil {
		t.Fatalf("new metrics: %v", err)
	}
	if again, err := reconciler.NewMetrics(reg); err != nil || again == nil {
		t.Fatalf("registering the metrics twice: %v", err)
	}
	g := newRig(t, name, overFile)
	g.opts.Metrics = m
	namespace(t, name)
	commit := g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
		"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
	})
	r := g.reconciler()
	g.sync(r)
	g.commit(map[string]string{"apps/broken.yaml": "kind: [\n"})
	if _, err := r.Sync(testCtx(t)); err == nil {
		t.Fatal("sync of broken YAML succeeded")
	}

	all, err := reconciler.ReadStatus(t.Context(), g.opts.Client, v1alpha1.DefaultNamespace)
	if err != nil {
		t.Fatalf("read status: %v", err)
	}
	var st *reconciler.Status
	for i := range all {
		if all[i].Source == name {
			st = &all[i]
		}
	}
	if st == nil {
		t.Fatalf("ReadStatus returned no status for %s among %d", name, len(all))
	}
	if st.Result != reconciler.ResultRenderFailed || st.Revision != commit || st.ObjectsManaged != 2 || st.LastAttempt.IsZero() || st.LastApplied.IsZero() {
		t.Errorf("status = %+v, want RenderFailed keeping %s with 2 managed objects", st, commit)
	}
	// The status reads well with plain kubectl.
	out := kubectl(t, "-n", v1alpha1.DefaultNamespace, "get", "gitsource", name, "-o", "yaml")
	for _, want := range []string{"lastSyncResult: RenderFailed", "lastAppliedRevision: " + commit, "objectsManaged: 2", "reason: RenderFailed"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get gitsource shows no %q:\n%s", want, out)
		}
	}

	metrics := []struct {
		name, labels string
		want         float64
	}{
		{"driftless_reconciler_syncs_total", `result="Applied",source="` + name + `"`, 1},
		{"driftless_reconciler_syncs_total", `result="RenderFailed",source="` + name + `"`, 1},
		{"driftless_reconciler_objects_applied_total", `source="` + name + `"`, 2},
		{"driftless_reconciler_objects_pruned_total", `source="` + name + `"`, 0},
		{"driftless_reconciler_break_glass_active", `source="` + name + `"`, 0},
	}
	text, err := testutil.GatherAndCount(reg, "driftless_reconciler_sync_duration_seconds")
	if err != nil || text != 1 {
		t.Errorf("sync duration histogram series = %d (%v), want 1", text, err)
	}
	for _, mt := range metrics {
		got := gathered(t, reg, mt.name, mt.labels)
		if got != mt.want {
			t.Errorf("%s{%s} = %v, want %v", mt.name, mt.labels, got, mt.want)
		}
	}
}

// gathered returns the value of the series of metric name with exactly labels (formatted
// as in the exposition format, sorted by name).
func gathered(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(parts, ",") != labels {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, labels)
	return 0
}
