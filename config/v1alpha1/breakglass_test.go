package v1alpha1_test

import (
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// BreakGlassCase is one row of the break-glass contract's table. The guard, the reconciler and
// the command line are tested against the same rows (see test/e2e).
func TestReadBreakGlass(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        v1alpha1.BreakGlassState
		problem     string
	}{
		{"none", nil, v1alpha1.BreakGlassNone, ""},
		{"unrelated annotations", map[string]string{"a": "b"}, v1alpha1.BreakGlassNone, ""},
		{"active", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, v1alpha1.BreakGlassActive, ""},
		{"active at the maximum", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(4 * time.Hour)}, v1alpha1.BreakGlassActive, ""},
		{"white space around both values", map[string]string{v1alpha1.AnnotationBreakGlass: "  INC-1 ", v1alpha1.AnnotationBreakGlassUntil: " " + at(time.Hour) + "\n"}, v1alpha1.BreakGlassActive, ""},
		{"beyond the maximum", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(4*time.Hour + time.Second)}, v1alpha1.BreakGlassInvalid, "more than the maximum of 4h ahead"},
		{"expired", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(-time.Second)}, v1alpha1.BreakGlassExpired, "expired at"},
		{"expiring now", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(0)}, v1alpha1.BreakGlassExpired, "expired at"},
		{"reason of spaces", map[string]string{v1alpha1.AnnotationBreakGlass: "   ", v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, v1alpha1.BreakGlassInvalid, "needs a reason"},
		{"no reason", map[string]string{v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, v1alpha1.BreakGlassInvalid, "needs a reason"},
		{"no expiry", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1"}, v1alpha1.BreakGlassInvalid, "needs an expiry"},
		{"blank expiry", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: " "}, v1alpha1.BreakGlassInvalid, "needs an expiry"},
		{"not RFC 3339", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: "tomorrow"}, v1alpha1.BreakGlassInvalid, "is not an RFC 3339 time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := v1alpha1.ReadBreakGlass(tc.annotations, now, 4*time.Hour)
			if got.State != tc.want {
				t.Fatalf("state = %s (%s), want %s", got.State, got.Problem, tc.want)
			}
			if !strings.Contains(got.Problem, tc.problem) || (tc.problem == "") != (got.Problem == "") {
				t.Errorf("problem = %q, want it to contain %q", got.Problem, tc.problem)
			}
			if got.Holds() != (tc.want == v1alpha1.BreakGlassActive) {
				t.Errorf("Holds() = %v for state %s", got.Holds(), got.State)
			}
		})
	}
}

func TestReadBreakGlassRecordsWho(t *testing.T) {
	now := time.Now()
	got := v1alpha1.ReadBreakGlass(map[string]string{
		v1alpha1.AnnotationBreakGlass:      "INC-1",
		v1alpha1.AnnotationBreakGlassUntil: now.Add(time.Hour).Format(time.RFC3339),
		v1alpha1.AnnotationBreakGlassBy:    "alice",
		v1alpha1.AnnotationBreakGlassGroup: "oncall",
	}, now, 4*time.Hour)
	if got.By != "alice" || got.Group != "oncall" || got.Reason != "INC-1" {
		t.Errorf("claim = %+v, want alice in oncall with reason INC-1", got)
	}
}
