package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
)

// TestDiffCommand runs `driftless diff` as documented: as the reconciler's identity (admin
// impersonating it), because the guard decides dry-runs in protected namespaces like real
// requests.
func TestDiffCommand(t *testing.T) {
	repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "config.git"))
	cm := func(value string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: diff-config\n  namespace: production\ndata:\n  POOL_SIZE: %q\n", value)
	}
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"app/configmap.yaml": cm("10")}, Message: "Add the pool size"})
	config := filepath.Join(t.TempDir(), "driftless.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: diffsource
    url: %s
    path: app
`, repo.FileURL())), 0o600); err != nil {
		t.Fatal(err)
	}
	asReconciler := []string{"diff", "--config", config, "--as", harness.ReconcilerName}

	out, err := driftless(t, cp.Admin, asReconciler...)
	if err != nil {
		t.Fatalf("diff: %v\n%s", err, out)
	}
	if !strings.Contains(out, "create ConfigMap production/diff-config") || !strings.Contains(out, `"Add the pool size"`) {
		t.Errorf("diff does not show the create:\n%s", out)
	}
	if r := cp.Admin.Kubectl(t.Context(), "get", "-n", "production", "configmap/diff-config"); r.Err == nil {
		t.Fatal("diff created the object")
	}

	// Once applied (as the reconciler would), a new commit shows as an update with its diff.
	if r := cp.Reconciler.KubectlWith(t.Context(), []byte(cm("10")), nil, "apply", "--server-side", "--field-manager=driftless", "-f", "-"); r.Err != nil {
		t.Fatal(r.Combined())
	}
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"app/configmap.yaml": cm("80")}, Message: "Raise the pool size"})
	out, err = driftless(t, cp.Admin, asReconciler...)
	if err != nil {
		t.Fatalf("diff: %v\n%s", err, out)
	}
	for _, want := range []string{"update ConfigMap production/diff-config", `-  POOL_SIZE: "10"`, `+  POOL_SIZE: "80"`} {
		if !strings.Contains(out, want) {
			t.Errorf("diff does not show %q:\n%s", want, out)
		}
	}
	assertKubectlOutput(t, cp.Admin, `{.data.POOL_SIZE}`, "10", "get", "-n", "production", "configmap/diff-config")

	// As a person, the guard denies the dry-runs, as the command's help says.
	if out, err := driftless(t, cp.Bob, "diff", "--config", config); err == nil || !strings.Contains(out+err.Error(), "driftless: bob may not") {
		t.Errorf("bob's diff in a protected namespace: err %v\n%s", err, out)
	}
}
