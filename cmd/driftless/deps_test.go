package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryHoldsNoTestCode lists the packages linked into driftless and fails on the
// test harness or envtest: the playground and the test helpers live outside the binary.
func TestShippedBinaryHoldsNoTestCode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list driftless's dependencies: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "github.com/driftless-dev/driftless/cmd/driftless").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed %d packages; expected the whole dependency tree", len(deps))
	}
	for _, pkg := range deps {
		for _, forbidden := range []string{"/driftless/test", "sigs.k8s.io/controller-runtime/pkg/envtest"} {
			if strings.Contains(pkg, forbidden) {
				t.Errorf("driftless links %s (matches %q): test code must stay out of the shipped binary", pkg, forbidden)
			}
		}
	}
}
