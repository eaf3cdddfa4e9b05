// Package demo runs the story `make demo` tells, as a test: the ConfigMap incident from the
// first sync to the fix committed in Git, on a real control plane, guard and reconciler, with
// the real driftless binary.
package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/test/playground"
)

func TestIncidentStory(t *testing.T) {
	bin := buildDriftless(t)
	var out bytes.Buffer
	err := playground.Run(t.Context(), playground.Options{
		Out: &out, Driftless: bin, Dir: t.TempDir(), Demo: true,
		// A short break-glass keeps the test quick; the story is the same.
		BreakGlassFor: 8 * time.Second,
	})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("the story did not hold: %v", err)
	}
	for _, want := range []string{
		"driftless: bob may not update configmaps/payment-gateway-config in namespace production",
		"bob is not in a break-glass group (oncall)",
		"alice's kubectl patch was allowed: POOL_SIZE=80, BURST_MODE=on",
		"reverted to Git: POOL_SIZE=50, BURST_MODE removed, break-glass annotations removed",
		"to keep it, commit this patch to the overlay",
		"the reconciler applied it: POOL_SIZE=80",
		"The story held at every step.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the narration does not show %q", want)
		}
	}
}
