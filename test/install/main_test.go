package install

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/driftless-dev/driftless/test/harness"
)

// The control plane is shared by every test in the package; each test leaves the installation
// as it found it: no webhook configuration and no self-protection binding.
var (
	cp *harness.ControlPlane
	// root is the module root, where config/ lives.
	root string
)

// protectedNamespace is protected by config/default/driftless.yaml.
const protectedNamespace = "production"

func TestMain(m *testing.M) {
	code := runMain(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	if root, err = harness.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	crds, err := harness.CertManagerCRDs(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	if cp, err = harness.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	defer cp.Stop()
	args := []string{"apply", "--server-side", "--field-manager=install-test"}
	for _, f := range crds {
		args = append(args, "-f", f)
	}
	if r := cp.Admin.Kubectl(ctx, args...); r.Err != nil {
		fmt.Fprintln(os.Stderr, "install: apply cert-manager CRDs:", r.Combined())
		return 1
	}
	if r := cp.Admin.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io"); r.Err != nil {
		fmt.Fprintln(os.Stderr, "install: wait for cert-manager CRDs:", r.Combined())
		return 1
	}
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", protectedNamespace); r.Err != nil {
		fmt.Fprintln(os.Stderr, "install: create namespace:", r.Combined())
		return 1
	}
	return m.Run()
}
