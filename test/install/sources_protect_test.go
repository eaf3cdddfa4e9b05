package install

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// driftlessCLI runs the real command tree as u.
func driftlessCLI(t *testing.T, u *harness.User, args ...string) (string, error) {
	t.Helper()
	cmd := app.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--kubeconfig", u.Kubeconfig))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// TestSelfProtectionOfSources checks, on config/default installed for real, what people may do
// to a GitSource in the Driftless namespace: anyone RBAC lets patch it may request a sync and
// nothing else; only the break-glass groups may suspend it, with a reason, an expiry and their
// own name. bob (developers) and alice (oncall) are bound to cluster-admin, so only admission
// stands between them and a change.
func TestSelfProtectionOfSources(t *testing.T) {
	ctx := t.Context()
	installDefault(t)
	const source = "protected-apps"
	gs := "apiVersion: driftless.dev/v1alpha1\nkind: GitSource\nmetadata:\n  name: " + source + "\n  namespace: " + driftlessNamespace +
		"\nspec:\n  url: https://git.example.com/config.git\n  interval: 10m\n"
	// The reconciler applies GitSources from Git; here it stands in for that.
	if r := cp.Reconciler.KubectlWith(ctx, []byte(gs), nil, "apply", "--server-side", "-f", "-"); r.Err != nil {
		t.Fatalf("the reconciler applies a GitSource: %v\n%s", r.Err, r.Combined())
	}
	t.Cleanup(func() {
		cp.Reconciler.Kubectl(t.Context(), "delete", "gitsource", "-n", driftlessNamespace, source, "--ignore-not-found")
	})
	client, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	annotations := func(t *testing.T) map[string]string {
		t.Helper()
		u, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(driftlessNamespace).Get(ctx, source, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u.GetAnnotations()
	}
	denied := func(t *testing.T, r harness.KubectlResult, what string) {
		t.Helper()
		if r.Err == nil || !strings.Contains(r.Stderr, "driftless") {
			t.Errorf("%s: want a denial by the self-protection policy, got err=%v\n%s", what, r.Err, r.Combined())
		}
	}

	t.Run("bob requests a sync", func(t *testing.T) {
		out, err := driftlessCLI(t, cp.Bob, "reconcile", source)
		if err != nil {
			t.Fatalf("driftless reconcile as bob: %v\n%s", err, out)
		}
		if annotations(t)[v1alpha1.AnnotationReconcileRequestedAt] == "" {
			t.Errorf("no %s annotation after driftless reconcile:\n%s", v1alpha1.AnnotationReconcileRequestedAt, out)
		}
		out, err = driftlessCLI(t, cp.Bob, "get", "sources", "-o", "wide")
		if err != nil || !strings.Contains(out, source) {
			t.Errorf("driftless get sources as bob: %v\n%s", err, out)
		}
	})
	t.Run("bob cannot change the spec along with a sync request", func(t *testing.T) {
		denied(t, cp.Bob.Kubectl(ctx, "patch", "gitsource", "-n", driftlessNamespace, source, "--type", "merge",
			"-p", `{"metadata":{"annotations":{"driftless.dev/reconcile-requested-at":"x"}},"spec":{"interval":"5s"}}`), "spec change with a sync request")
		denied(t, cp.Bob.Kubectl(ctx, "label", "gitsource", "-n", driftlessNamespace, source, "team=bob"), "label")
		denied(t, cp.Bob.Kubectl(ctx, "annotate", "gitsource", "-n", driftlessNamespace, source, "note=hi"), "another annotation")
		denied(t, cp.Bob.Kubectl(ctx, "delete", "gitsource", "-n", driftlessNamespace, source), "delete")
	})
	t.Run("bob cannot suspend", func(t *testing.T) {
		out, err := driftlessCLI(t, cp.Bob, "suspend", source, "--reason", "INC-9", "--for", "10m")
		if err == nil || !strings.Contains(err.Error(), "not in a break-glass group") {
			t.Errorf("driftless suspend as bob: want refused before the API server, got %v\n%s", err, out)
		}
		out, err = driftlessCLI(t, cp.Bob, "suspend", source, "--reason", "INC-9", "--for", "10m", "--no-preflight")
		if err == nil || !strings.Contains(err.Error(), "driftless") {
			t.Errorf("driftless suspend --no-preflight as bob: want denied by admission, got %v\n%s", err, out)
		}
		if _, ok := annotations(t)[v1alpha1.AnnotationSuspend]; ok {
			t.Error("bob's suspension was stored")
		}
	})
	t.Run("alice suspends as herself and resumes", func(t *testing.T) {
		out, err := driftlessCLI(t, cp.Alice, "suspend", source, "--reason", "INC-9: hold", "--for", "10m")
		if err != nil {
			t.Fatalf("driftless suspend as alice: %v\n%s", err, out)
		}
		a := annotations(t)
		if a[v1alpha1.AnnotationSuspend] != "INC-9: hold" || a[v1alpha1.AnnotationSuspendBy] != harness.AliceName || a[v1alpha1.AnnotationSuspendUntil] == "" {
			t.Errorf("suspension annotations = %v", a)
		}
		denied(t, cp.Alice.Kubectl(ctx, "annotate", "--overwrite", "gitsource", "-n", driftlessNamespace, source, v1alpha1.AnnotationSuspendBy+"=bob"), "suspension in bob's name")
		denied(t, cp.Alice.Kubectl(ctx, "annotate", "--overwrite", "gitsource", "-n", driftlessNamespace, source, v1alpha1.AnnotationSuspendUntil+"=tomorrow"), "expiry that is not a time")
		denied(t, cp.Alice.Kubectl(ctx, "annotate", "gitsource", "-n", driftlessNamespace, source, v1alpha1.AnnotationSuspend+"-"), "suspension without a reason")
		out, err = driftlessCLI(t, cp.Alice, "resume", source)
		if err != nil {
			t.Fatalf("driftless resume as alice: %v\n%s", err, out)
		}
		for _, k := range []string{v1alpha1.AnnotationSuspend, v1alpha1.AnnotationSuspendUntil, v1alpha1.AnnotationSuspendBy} {
			if _, ok := annotations(t)[k]; ok {
				t.Errorf("%s is still set after resume", k)
			}
		}
	})
}
