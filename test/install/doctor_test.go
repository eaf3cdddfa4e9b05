package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/internal/release"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// doctor runs `driftless doctor` as admin and returns its output and exit code.
func doctor(t *testing.T) (string, int) {
	t.Helper()
	cmd := app.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"doctor", "--kubeconfig", cp.Admin.Kubeconfig})
	err := cmd.ExecuteContext(t.Context())
	if err != nil {
		return out.String(), app.ExitCode(err)
	}
	return out.String(), 0
}

// TestDoctor installs the release manifest for real, does for it what a cluster would (the
// serving Certificate Ready as cert-manager reports it, a running guard whose CA is in the
// webhook configuration), and has `driftless doctor` pass; then breaks the installation twice,
// as the lockout and escalation stories do, and has doctor fail naming the problem.
func TestDoctor(t *testing.T) {
	ctx := t.Context()
	objs, err := release.Render(ctx, release.Options{Root: root, Path: "config/default", Digest: "sha256:" + strings.Repeat("0", 64)})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := release.Marshal(objs, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Runs after the guard has stopped: the binding first, so that admin may remove the rest.
	t.Cleanup(func() {
		ctx := context.Background()
		if r := cp.Admin.Kubectl(ctx, "delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName, "--ignore-not-found"); r.Err != nil {
			t.Errorf("delete the self-protection binding: %v\n%s", r.Err, r.Combined())
		}
		var rest []byte
		for _, o := range objs[1:] {
			// The package's other tests use the GitSource CRD the harness installed.
			if o.GetKind() == "CustomResourceDefinition" {
				continue
			}
			rest = append(append(rest, "---\n"...), toYAML(t, o)...)
		}
		err := harness.Poll(ctx, time.Minute, func() error {
			if r := cp.Admin.KubectlWith(ctx, rest, nil, "delete", "--ignore-not-found", "-f", "-"); r.Err != nil {
				return fmt.Errorf("%v\n%s", r.Err, r.Combined())
			}
			return nil
		})
		if err != nil {
			t.Errorf("remove the installation: %v", err)
		}
	})
	if r := cp.Admin.KubectlWith(ctx, manifest, nil, "apply", "--server-side", "--field-manager=install-test", "-f", "-"); r.Err != nil {
		t.Fatalf("kubectl apply -f install.yaml: %v\n%s", r.Err, r.Combined())
	}

	// cert-manager's part: the serving Certificate is Ready. Only Driftless's own identities
	// may write in driftless-system once self-protection is in effect.
	crt := find(t, objs, "Certificate", "driftless-webhook")
	status := harness.CertificateReadyStatus(time.Now())
	if r := cp.Reconciler.Kubectl(ctx, "patch", "certificate", "-n", driftlessNamespace, crt.GetName(), "--subresource=status", "--type=merge", "-p", status); r.Err != nil {
		t.Fatalf("set the Certificate Ready: %v\n%s", r.Err, r.Combined())
	}

	// The guard, running here instead of in a pod, with config/default's configuration; the
	// webhook configuration reaches it by URL with its CA, as the CA injector would put it.
	config, err := os.ReadFile(filepath.Join(root, "config", "default", "driftless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := inprocess.New(cp, string(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(g.Dir) })
	crtSpec := convert[cmapi.Certificate](t, crt)
	if err := g.CA.WriteServingCert(g.CertDir, 2, append([]string{"127.0.0.1"}, crtSpec.Spec.DNSNames...)...); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("driftless run: %v", err)
		}
	})
	rec, err := cp.Reconciler.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	vwcs := rec.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	vwc, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].ClientConfig.Service = nil
		vwc.Webhooks[i].ClientConfig.URL = ptr.To("https://" + g.WebhookAddr + webhook.GuardPath)
		vwc.Webhooks[i].ClientConfig.CABundle = g.CA.PEM
	}
	if _, err := vwcs.Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("point the webhook configuration at the guard: %v", err)
	}
	if err := g.WaitEnforcing(ctx); err != nil {
		t.Fatal(err)
	}

	out, code := doctor(t)
	t.Logf("driftless doctor:\n%s", out)
	if code != 0 {
		t.Fatalf("driftless doctor exits %d on a sound installation:\n%s", code, out)
	}
	for _, want := range []string{
		"ok   configuration: ConfigMap driftless-system/driftless-config-",
		"ok   cert-manager: ",
		"ok   webhook configuration: driftless-guard matches the installed configuration",
		"ok   serving certificate: certificate driftless-system/driftless-webhook: ready",
		"ok   CA bundle: ",
		"ok   guard reachable: the API server called the guard",
		"ok   self-protection: ",
		"warn access: user bob may impersonate the reconciler's service account",
		"ok   access: nobody but Kubernetes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("driftless doctor does not report %q:\n%s", want, out)
		}
	}

	// Each breakage must turn doctor red, naming the problem, and doctor must recover once it
	// is undone.
	binding := find(t, objs, "ValidatingAdmissionPolicyBinding", webhook.SelfProtectionName)
	tests := []struct {
		name         string
		breakIt, fix []string
		stdin        []byte
		want         []string
	}{
		{
			name:    "admin deletes the self-protection binding",
			breakIt: []string{"delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName},
			fix:     []string{"apply", "--server-side", "--field-manager=install-test", "-f", "-"},
			stdin:   toYAML(t, binding),
			want:    []string{"FAIL self-protection: ValidatingAdmissionPolicyBinding driftless-self-protection is missing"},
		},
		{
			name:    "admin grants bob impersonate on the reconciler's service account",
			breakIt: []string{"create", "clusterrolebinding", "bob-impersonates-driftless", "--clusterrole=impersonate-driftless", "--user=bob"},
			fix:     []string{"delete", "clusterrolebinding", "bob-impersonates-driftless"},
			want:    []string{"FAIL access: user bob may impersonate the reconciler's service account", "(through ClusterRoleBinding bob-impersonates-driftless, ClusterRoleBinding harness-admin-bob)"},
		},
	}
	if r := cp.Admin.Kubectl(ctx, "create", "clusterrole", "impersonate-driftless", "--verb=impersonate", "--resource=serviceaccounts", "--resource-name=driftless"); r.Err != nil {
		t.Fatalf("%v\n%s", r.Err, r.Combined())
	}
	t.Cleanup(func() {
		cp.Admin.Kubectl(context.Background(), "delete", "clusterrole", "impersonate-driftless", "--ignore-not-found")
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := cp.Admin.Kubectl(ctx, tt.breakIt...); r.Err != nil {
				t.Fatalf("%v\n%s", r.Err, r.Combined())
			}
			fixed := false
			t.Cleanup(func() {
				if !fixed {
					cp.Admin.KubectlWith(context.Background(), tt.stdin, nil, tt.fix...)
				}
			})
			out, code := doctor(t)
			if code != 1 {
				t.Errorf("driftless doctor exits %d, want 1", code)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("driftless doctor does not report %q", want)
				}
			}
			if t.Failed() {
				t.Fatalf("driftless doctor:\n%s", out)
			}
			if r := cp.Admin.KubectlWith(ctx, tt.stdin, nil, tt.fix...); r.Err != nil {
				t.Fatalf("%v\n%s", r.Err, r.Combined())
			}
			fixed = true
			if out, code := doctor(t); code != 0 {
				t.Fatalf("driftless doctor exits %d once the breakage is undone:\n%s", code, out)
			}
		})
	}
}
