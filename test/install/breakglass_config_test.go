package install

import (
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// breakGlassCLI runs `driftless break-glass` in-process as u.
func breakGlassCLI(t *testing.T, u *harness.User, args ...string) (string, error) {
	t.Helper()
	return driftlessCLI(t, u, append([]string{"break-glass"}, args...)...)
}

// TestBreakGlassReadsTheInstalledConfiguration checks that `driftless break-glass` finds
// config/default's configuration under its generated, hashed name, and that without it the
// command says so and fails instead of guessing.
func TestBreakGlassReadsTheInstalledConfiguration(t *testing.T) {
	ctx := t.Context()
	ns := "bg-config"
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	if r := cp.Admin.Kubectl(ctx, "create", "configmap", "-n", ns, "target", "--from-literal=x=1"); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", driftlessNamespace); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	open := []string{"-n", ns, "configmap/target", "--reason", "INC-1", "--for", "1h"}

	t.Run("absent", func(t *testing.T) {
		out, err := breakGlassCLI(t, cp.Alice, open...)
		if err == nil || !strings.Contains(err.Error(), "no installed Driftless configuration") || !strings.Contains(err.Error(), "--no-preflight") {
			t.Fatalf("err = %v, want it to say the configuration is absent\n%s", err, out)
		}
		if code := app.ExitCode(err); code == 0 {
			t.Errorf("exit code %d, want non-zero", code)
		}
		if r := cp.Admin.Kubectl(ctx, "get", "-n", ns, "configmap/target", "-o", "jsonpath={.metadata.annotations}"); strings.Contains(r.Stdout, v1alpha1.AnnotationBreakGlass) {
			t.Errorf("the object was annotated although the preflight failed: %s", r.Stdout)
		}
	})

	// Installed as config/default renders it, by Driftless's own identity (self-protection
	// lets nobody else write in its namespace).
	cm := find(t, renderDefault(t), "ConfigMap", v1alpha1.ConfigMapName)
	if !strings.HasPrefix(cm.GetName(), v1alpha1.ConfigMapName+"-") {
		t.Fatalf("config/default's ConfigMap is named %q, want the generator's hashed name", cm.GetName())
	}
	if r := cp.Reconciler.KubectlWith(ctx, toYAML(t, cm), nil, "apply", "--server-side", "--field-manager=install-test", "-f", "-"); r.Err != nil {
		t.Fatal(r.Combined())
	}
	t.Cleanup(func() { cp.Reconciler.Kubectl(ctx, "delete", "-n", driftlessNamespace, "configmap", cm.GetName()) })

	t.Run("installed maximum", func(t *testing.T) {
		out, err := breakGlassCLI(t, cp.Alice, "-n", ns, "configmap/target", "--reason", "INC-1", "--for", "5h")
		if err == nil || !strings.Contains(err.Error(), "more than the guard's maximum of 4h0m0s (configmap "+driftlessNamespace+"/"+cm.GetName()+")") {
			t.Fatalf("err = %v, want the installed 4h maximum named\n%s", err, out)
		}
	})
	t.Run("installed groups", func(t *testing.T) {
		out, err := breakGlassCLI(t, cp.Bob, open...)
		if err == nil || !strings.Contains(err.Error(), "bob is not in a break-glass group (oncall)") {
			t.Fatalf("err = %v, want bob refused by the installed groups\n%s", err, out)
		}
	})
	t.Run("alice breaks glass as her group", func(t *testing.T) {
		if out, err := breakGlassCLI(t, cp.Alice, open...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		r := cp.Admin.Kubectl(ctx, "get", "-n", ns, "configmap/target", "-o", "jsonpath={.metadata.annotations."+strings.ReplaceAll(v1alpha1.AnnotationBreakGlassGroup, ".", `\.`)+"}")
		if r.Stdout != "oncall" {
			t.Errorf("break-glass-group = %q, want oncall: %s", r.Stdout, r.Combined())
		}
	})
}
