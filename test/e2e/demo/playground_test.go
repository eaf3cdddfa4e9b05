package demo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/playground"
	"github.com/driftless-dev/driftless/webhook"
)

// buildDriftless builds the driftless binary the playground runs.
func buildDriftless(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "driftless")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/driftless-dev/driftless/cmd/driftless").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPlaygroundIsTheRealInstall: the playground is config/default minus the pods, so doctor
// passes on it, self-protection stops admin, the personas' RBAC stops bob from acting as the
// reconciler, and doctor turns red when the installation is weakened.
func TestPlaygroundIsTheRealInstall(t *testing.T) {
	ctx := t.Context()
	bin := buildDriftless(t)
	var narration bytes.Buffer
	p, err := playground.Start(ctx, playground.Options{Out: &narration, Driftless: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start the playground: %v\n%s", err, narration.String())
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop the playground: %v", err)
		}
	})
	cp := p.ControlPlane()
	doctor := func() (string, error) {
		cmd := exec.CommandContext(ctx, bin, "doctor", "--kubeconfig", cp.Admin.Kubeconfig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// The source's first sync is asynchronous: doctor passes once it is Ready.
	var out string
	err = harness.Poll(ctx, 2*time.Minute, func() error {
		var err error
		if out, err = doctor(); err != nil {
			return fmt.Errorf("driftless doctor: %v\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("doctor does not pass on the playground: %v", err)
	}
	for _, want := range []string{
		"ok   configuration: ConfigMap driftless-system/driftless-config-",
		"ok   webhook configuration: driftless-guard matches the installed configuration",
		"ok   serving certificate: certificate driftless-system/driftless-webhook: ready",
		"ok   guard reachable: the API server called the guard",
		"ok   self-protection: ",
		"ok   access: nobody but Kubernetes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("driftless doctor does not report %q:\n%s", want, out)
		}
	}

	// Self-protection and the personas' RBAC.
	denials := []struct {
		name string
		user *harness.User
		args []string
		want string
	}{
		{"admin deletes the webhook configuration", cp.Admin, []string{"delete", "validatingwebhookconfiguration", webhook.ConfigurationName}, "driftless-self-protection"},
		{"bob impersonates the reconciler", cp.Bob, []string{"--as=" + harness.ReconcilerName, "-n", "production", "get", "configmaps"}, "cannot impersonate"},
		{"bob creates a token for the reconciler", cp.Bob, []string{"create", "token", "driftless", "-n", "driftless-system"}, "forbidden"},
		{"bob edits the Driftless configuration", cp.Bob, []string{"label", "configmap", "-n", "driftless-system", "-l", "driftless.dev/component=config", "edited-by=bob"}, "forbidden"},
	}
	for _, d := range denials {
		t.Run(d.name, func(t *testing.T) {
			r := d.user.Kubectl(ctx, d.args...)
			if r.Err == nil || !strings.Contains(r.Combined(), d.want) {
				t.Errorf("kubectl %s as %s: err %v, want a denial with %q:\n%s", strings.Join(d.args, " "), d.user.Name, r.Err, d.want, r.Combined())
			}
		})
	}
	if r := cp.Admin.Kubectl(ctx, "get", "validatingwebhookconfiguration", webhook.ConfigurationName); r.Err != nil {
		t.Errorf("the webhook configuration is gone: %s", r.Combined())
	}

	// Weakened installations turn doctor red, naming the problem.
	binding := cp.Admin.Kubectl(ctx, "get", "validatingadmissionpolicybinding", webhook.SelfProtectionName, "-o", "json")
	if binding.Err != nil {
		t.Fatal(binding.Combined())
	}
	var saved unstructured.Unstructured
	if err := saved.UnmarshalJSON([]byte(binding.Stdout)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"} {
		unstructured.RemoveNestedField(saved.Object, "metadata", f)
	}
	savedJSON, err := saved.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	weaken := []struct {
		name          string
		breakIt, undo []string
		stdin         []byte
		want          string
	}{
		{
			name:    "admin deletes the self-protection binding",
			breakIt: []string{"delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName},
			undo:    []string{"create", "-f", "-"},
			stdin:   savedJSON,
			want:    "FAIL self-protection: ValidatingAdmissionPolicyBinding driftless-self-protection is missing",
		},
		{
			name:    "admin grants bob impersonate on the reconciler",
			breakIt: []string{"create", "clusterrolebinding", "bob-impersonates-driftless", "--clusterrole=impersonate-driftless", "--user=bob"},
			undo:    []string{"delete", "clusterrolebinding", "bob-impersonates-driftless"},
			want:    "FAIL access: user bob may impersonate the reconciler's service account",
		},
	}
	if r := cp.Admin.Kubectl(ctx, "create", "clusterrole", "impersonate-driftless", "--verb=impersonate", "--resource=serviceaccounts", "--resource-name=driftless"); r.Err != nil {
		t.Fatal(r.Combined())
	}
	for _, w := range weaken {
		t.Run(w.name, func(t *testing.T) {
			if r := cp.Admin.Kubectl(ctx, w.breakIt...); r.Err != nil {
				t.Fatalf("%v\n%s", r.Err, r.Combined())
			}
			out, err := doctor()
			if err == nil || !strings.Contains(out, w.want) {
				t.Errorf("doctor on a weakened installation: err %v, want a failure with %q:\n%s", err, w.want, out)
			}
			if r := cp.Admin.KubectlWith(context.WithoutCancel(ctx), w.stdin, nil, w.undo...); r.Err != nil {
				t.Fatalf("undo: %v\n%s", r.Err, r.Combined())
			}
			if err := harness.Poll(ctx, time.Minute, func() error {
				out, err := doctor()
				if err != nil {
					return fmt.Errorf("%v\n%s", err, out)
				}
				return nil
			}); err != nil {
				t.Errorf("doctor does not recover once undone: %v", err)
			}
		})
	}
}
