// Package demo runs the story `make demo` tells, as a test: the ConfigMap incident from the
// first sync to the fix committed in Git, on a real control plane, guard and reconciler.
package demo

import (
	"bytes"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
)

func TestIncidentStory(t *testing.T) {
	cmd := app.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	// A short break-glass keeps the test quick; the story is the same.
	cmd.SetArgs([]string{"dev", "--demo", "--break-glass-for", "8s", "--dir", t.TempDir()})
	err := cmd.ExecuteContext(t.Context())
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
