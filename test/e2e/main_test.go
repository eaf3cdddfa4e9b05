package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// The control plane and the guard are shared by every test in the package. Tests that change
// the guard's mode, clock or process restore them before they end.
var (
	cp    *harness.ControlPlane
	guard *inprocess.Server
)

// Namespaces of the guard suite. prod-* are protected, dev-* are not.
var (
	protectedNamespaces   = []string{"production", "prod-bob", "prod-admin", "prod-reconciler"}
	unprotectedNamespaces = []string{"dev-bob", "dev-admin"}
)

const guardConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: platform
    url: https://git.example.com/platform/config.git
    path: overlays/production
guard:
  mode: %s
  protectedNamespaces: [production, prod-bob, prod-admin, prod-reconciler]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
`

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	if cp, err = harness.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cp.Stop()
	for _, ns := range append(append([]string{}, protectedNamespaces...), unprotectedNamespaces...) {
		if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil {
			fmt.Fprintln(os.Stderr, "e2e: create namespace:", r.Combined())
			return 1
		}
	}
	// The shared guard does not reconcile: tests that need the reconciler start their own
	// driftless run, which must be the only one running GitSources.
	if guard, err = inprocess.NewWithOptions(cp, fmt.Sprintf(guardConfig, "enforce"), inprocess.Options{GuardOnly: true}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(guard.Dir)
	if err := guard.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start guard:", err)
		return 1
	}
	defer guard.Stop()
	if err := guard.Install(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: install guard:", err)
		return 1
	}
	return m.Run()
}
