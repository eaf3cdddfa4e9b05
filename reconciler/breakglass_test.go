package reconciler_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

func TestBreakGlass(t *testing.T) {
	tests := []struct {
		name string
		// until is the break-glass expiry relative to the reconciler's clock.
		until time.Duration
		// honoured: the change is left alone until the clock passes the expiry.
		honoured bool
		// reason and note of the Event that reports the revert.
		reason string
		note   []string
	}{
		{"valid", 30 * time.Minute, true, "BreakGlassExpired", []string{"INC-42", "expired", "alice", "color: red", "extra: added"}},
		{"expiry beyond the maximum", 5 * time.Hour, false, "BreakGlassInvalid", []string{"more than the maximum of 4h ahead", "color: red", "extra: added"}},
		{"expiry in the past", -time.Minute, false, "BreakGlassExpired", []string{"INC-42", "color: red", "extra: added"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := unique(fmt.Sprintf("bg-%d", i))
			g := newRig(t, name, overFile)
			reg := prometheus.NewRegistry()
			m, err := reconciler.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			g.opts.Metrics = m
			// Longer than the break-glass, so that a sync asks to come back at its expiry.
			g.src.Interval.Duration = time.Hour
			namespace(t, name)
			commit := g.commit(map[string]string{"apps/app.yaml": configMap(name, "app", map[string]string{"color": "blue", "size": "1"}, nil)})
			r := g.reconciler()
			g.start(r, commit)

			until := g.clock.Now().Add(tc.until).UTC().Truncate(time.Second)
			patch, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"annotations": map[string]string{
					v1alpha1.AnnotationBreakGlass:      "INC-42",
					v1alpha1.AnnotationBreakGlassUntil: until.Format(time.RFC3339),
					v1alpha1.AnnotationBreakGlassBy:    "alice",
				}},
				"data": map[string]string{"color": "red", "extra": "added"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if r := cp.Alice.Kubectl(t.Context(), "-n", name, "patch", "configmap", "app", "--type=merge", "-p", string(patch)); r.Err != nil {
				t.Fatalf("kubectl patch as alice: %v: %s", r.Err, r.Combined())
			}

			if tc.honoured {
				eventually(t, "status records the break-glass", func() (bool, string) {
					st := g.status()
					if len(st.BreakGlass) != 1 {
						return false, fmt.Sprintf("%+v", st.BreakGlass)
					}
					b := st.BreakGlass[0]
					return b.Object == "ConfigMap "+name+"/app" && b.Reason == "INC-42" && b.By == "alice" &&
						b.Until.Equal(until) && strings.Contains(b.Managers, "kubectl-patch") &&
						strings.Contains(b.Patch, "color: red") && strings.Contains(b.Patch, "extra: added") &&
						!strings.Contains(b.Patch, "break-glass"), fmt.Sprintf("%+v", b)
				})
				waitEvent(t, name, "app", "BreakGlassActive", "INC-42", "color: red")
				// Written with the status: alerts see when it ends.
				source := `source="` + name + `"`
				if got := gathered(t, reg, "driftless_reconciler_break_glass_active", source); got != 1 {
					t.Errorf("break_glass_active = %v, want 1", got)
				}
				if got := gathered(t, reg, "driftless_reconciler_break_glass_next_expiry_timestamp_seconds", source); got != float64(until.Unix()) {
					t.Errorf("break_glass_next_expiry_timestamp_seconds = %v, want %d", got, until.Unix())
				}
				// A full sync leaves it alone as well, and asks to come back at the expiry.
				res := g.sync(r)
				if got := dataOf(getConfigMap(t, name, "app")); got != "color=red,extra=added,size=1" {
					t.Fatalf("app under break-glass = %s, want the out-of-band change kept", got)
				}
				if left := until.Sub(g.clock.Now()); res.RequeueAfter != left {
					t.Errorf("RequeueAfter = %s, want the time to the expiry, %s", res.RequeueAfter, left)
				}
				for _, mode := range []reconciler.DiffMode{reconciler.DiffRead, reconciler.DiffServerDryRun} {
					report, err := r.Diff(testCtx(t), mode)
					if err != nil {
						t.Fatalf("diff (%s): %v", mode, err)
					}
					if len(report.Changes) != 1 || report.Changes[0].Action != "break-glass" || !strings.Contains(report.Changes[0].Diff, "-  extra: added") {
						t.Errorf("diff (%s) under break-glass = %+v, want the object as break-glass with extra removed", mode, report.Changes)
					}
				}

				g.clock.SetTime(until.Add(time.Second))
			}

			eventually(t, "object reverted to Git", func() (bool, string) {
				cm := getConfigMap(t, name, "app")
				_, bg := cm.Annotations[v1alpha1.AnnotationBreakGlass]
				_, bgUntil := cm.Annotations[v1alpha1.AnnotationBreakGlassUntil]
				_, bgBy := cm.Annotations[v1alpha1.AnnotationBreakGlassBy]
				return dataOf(cm) == "color=blue,size=1" && !bg && !bgUntil && !bgBy, fmt.Sprintf("data %s, annotations %v", dataOf(cm), cm.Annotations)
			})
			waitEvent(t, name, "app", tc.reason, tc.note...)
			eventually(t, "status drops the break-glass", func() (bool, string) {
				st := g.status()
				return len(st.BreakGlass) == 0 && st.DriftReverts >= 1, fmt.Sprintf("%+v", st)
			})
			if got := gathered(t, reg, "driftless_reconciler_break_glass_next_expiry_timestamp_seconds", `source="`+name+`"`); got != 0 {
				t.Errorf("break_glass_next_expiry_timestamp_seconds = %v after the break-glass ended, want 0", got)
			}
		})
	}
}
