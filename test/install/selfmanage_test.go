package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// installationSource is the source that applies Driftless's own installation in
// TestSelfManagement.
const installationSource = "installation"

// ensureNamespace creates a namespace unless it exists; the tests of the package share it.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := admin.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// sourceConfig is config/default's DriftlessConfig with one source added.
func sourceConfig(t *testing.T, name, url, path, interval string) string {
	t.Helper()
	base, err := os.ReadFile(filepath.Join(root, "config", "default", "driftless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(base) + fmt.Sprintf("sources:\n  - name: %s\n    url: %s\n    path: %s\n    interval: %s\n", name, url, path, interval)
}

// manifest writes typed objects as one YAML stream, as `driftless manifests` does: without the
// empty status and creation timestamp a typed object marshals.
func manifest(t *testing.T, objs ...runtime.Object) string {
	t.Helper()
	var docs []string
	for _, obj := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		delete(u, "status")
		unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
		docs = append(docs, string(toYAML(t, &unstructured.Unstructured{Object: u})))
	}
	return strings.Join(docs, "---\n")
}

// sourceStatus reads the status the reconciler wrote for a source.
func sourceStatus(ctx context.Context, name string) (reconciler.Status, error) {
	client, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		return reconciler.Status{}, err
	}
	all, err := reconciler.ReadStatus(ctx, client, driftlessNamespace)
	if err != nil {
		return reconciler.Status{}, err
	}
	for _, s := range all {
		if s.Source == name {
			return s, nil
		}
	}
	return reconciler.Status{}, fmt.Errorf("no status for source %q yet", name)
}

// waitApplied waits until the source's status says commit was applied.
func waitApplied(ctx context.Context, source, commit string) error {
	return harness.Poll(ctx, time.Minute, func() error {
		s, err := sourceStatus(ctx, source)
		if err != nil {
			return err
		}
		if s.Revision != commit || s.Result != reconciler.ResultApplied {
			return fmt.Errorf("source %s: revision %q, result %s (%s), want %s applied", source, s.Revision, s.Result, s.Message, commit)
		}
		return nil
	})
}

// recreationEvent finds the Warning Event that reports the recreation of the object with uid.
// Events about cluster-scoped objects live in the default namespace.
func recreationEvent(ctx context.Context, admin kubernetes.Interface, kind, name string, uid types.UID) error {
	list, err := admin.EventsV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Kind != kind || e.Regarding.Name != name {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s %s %s (uid %s): %s", e.Type, e.Reason, e.ReportingController, e.Regarding.UID, e.Note))
		if e.Regarding.UID == uid && e.Type == corev1.EventTypeWarning && e.Reason == "DriftReverted" && strings.HasPrefix(e.Note, "recreated: ") {
			return nil
		}
	}
	return fmt.Errorf("no Warning DriftReverted event about the recreated %s %s (uid %s); events about it: %q", kind, name, uid, seen)
}

// TestSelfManagement keeps the guard's own webhook configuration and the self-protection
// policy in the config repository, has Driftless apply them, and deletes them out of band:
// the reconciler recreates each as soon as its watch reports the deletion, without waiting
// for the next sync, records a Warning Event and counts the revert.
//
// The deletions are the two that admission allows. No ValidatingAdmissionPolicy applies to
// policies and bindings, so the administrator can delete the self-protection binding; the
// policy lets the break-glass groups change the webhook configuration. The administrator's
// own delete of the webhook configuration is denied while the binding is in place, and again
// once the reconciler has put it back. Whether the administrator could slip a delete of the
// webhook configuration between the binding's deletion and its recreation is a race between
// the reconciler and the API server's refresh of its policies; it is not asserted.
func TestSelfManagement(t *testing.T) {
	ctx := t.Context()
	ensureNamespace(t, driftlessNamespace)
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	vwcs := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	bindings := admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()

	git := gitserver.New(t)
	repo := git.CreateRepo(t, "installation.git")
	// The fake clock of the in-process run is never stepped here, so the first sync is the only
	// one: whatever is restored later, the watch restored within that sync's interval.
	config := sourceConfig(t, installationSource, git.RepoURL("installation.git"), "installation", "10m")
	g, err := inprocess.New(cp, config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(g.Dir) })
	cfg, err := v1alpha1.Load(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// The installation as the platform team commits it: the webhook configuration for the
	// guard's address and CA, and the self-protection policy and binding.
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To("https://" + g.WebhookAddr + webhook.GuardPath),
		CABundle: g.CA.PEM,
	})
	policy, binding := webhook.SelfProtection(cfg)
	commit := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{
		Message: "Install Driftless",
		Files: map[string]string{
			"installation/webhook.yaml":         manifest(t, vwc),
			"installation/self-protection.yaml": manifest(t, policy, binding),
		},
	})

	// Runs after the guard has stopped (cleanups run last first), so that nothing restores
	// what it removes: the package's tests leave no webhook configuration and no binding.
	t.Cleanup(func() {
		ctx := context.Background()
		if r := cp.Admin.Kubectl(ctx, "delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName, "--ignore-not-found"); r.Err != nil {
			t.Errorf("delete the self-protection binding: %v\n%s", r.Err, r.Combined())
		}
		err := harness.Poll(ctx, time.Minute, func() error {
			if err := vwcs.Delete(ctx, webhook.ConfigurationName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return nil
		})
		if err != nil {
			t.Errorf("delete the webhook configuration once the protection is gone: %v", err)
		}
		if err := admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, webhook.SelfProtectionName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete the self-protection policy: %v", err)
		}
		if r := cp.Reconciler.Kubectl(ctx, "delete", "gitsource", "-n", driftlessNamespace, "--ignore-not-found", installationSource); r.Err != nil {
			t.Errorf("delete the source's status: %v\n%s", r.Err, r.Combined())
		}
	})
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("driftless run: %v", err)
		}
	})
	if err := waitApplied(ctx, installationSource, commit); err != nil {
		t.Fatalf("the first sync: %v", err)
	}
	if err := g.WaitEnforcing(ctx); err != nil {
		t.Fatalf("the webhook configuration from Git does not route to the guard: %v", err)
	}
	vapDenies := func() error {
		err := vwcs.Delete(ctx, webhook.ConfigurationName, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), webhook.SelfProtectionName) {
			return nil
		}
		return fmt.Errorf("self-protection not in effect: admin's dry-run delete of the webhook configuration: %v", err)
	}
	if err := harness.Poll(ctx, time.Minute, vapDenies); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		r := cp.Admin.Kubectl(ctx, "get", strings.ToLower(kind), "-l", v1alpha1.LabelSource+"="+installationSource, "-o", "name")
		if r.Err != nil || strings.TrimSpace(r.Stdout) == "" {
			t.Errorf("no %s labelled with source %s: %v\n%s", kind, installationSource, r.Err, r.Combined())
		}
	}

	t.Run("with the binding in place, admin may not delete the webhook configuration", func(t *testing.T) {
		before, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := cp.Admin.Kubectl(ctx, "delete", "validatingwebhookconfiguration", webhook.ConfigurationName)
		if r.Err == nil {
			t.Fatalf("admin deleted the webhook configuration:\n%s", r.Combined())
		}
		for _, want := range []string{
			"ValidatingAdmissionPolicy '" + webhook.SelfProtectionName + "'",
			"driftless: admin may not delete validatingwebhookconfigurations.admissionregistration.k8s.io/" + webhook.ConfigurationName + ": ",
		} {
			if !strings.Contains(r.Combined(), want) {
				t.Errorf("the denial does not say %q:\n%s", want, r.Combined())
			}
		}
		after, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.UID != before.UID {
			t.Errorf("the webhook configuration was replaced: uid %s, was %s", after.UID, before.UID)
		}
	})

	syncs := func() (float64, error) {
		c, err := g.Counter("driftless_reconciler_syncs_total", "source")
		return c[installationSource], err
	}
	reverts := func() (float64, error) {
		c, err := g.Counter("driftless_reconciler_drift_reverts_total", "source")
		return c[installationSource], err
	}
	// The status is written before the sync is counted.
	var syncsAfterFirst float64
	err = harness.Poll(ctx, 30*time.Second, func() error {
		var err error
		if syncsAfterFirst, err = syncs(); err == nil && syncsAfterFirst == 0 {
			err = errors.New("the first sync is not counted yet")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if syncsAfterFirst != 1 {
		t.Fatalf("%v syncs of source %s, want the first one only", syncsAfterFirst, installationSource)
	}

	uidOf := map[string]func() (types.UID, error){
		"ValidatingAdmissionPolicyBinding": func() (types.UID, error) {
			b, err := bindings.Get(ctx, webhook.SelfProtectionName, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			return b.UID, nil
		},
		"ValidatingWebhookConfiguration": func() (types.UID, error) {
			w, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			return w.UID, nil
		},
	}
	deletions := []struct {
		name string
		by   *harness.User
		kind string
		obj  string
		// back shows that what the object protects works again.
		back func() error
	}{
		{
			name: "admin deletes the self-protection binding, which no admission policy protects",
			by:   cp.Admin, kind: "ValidatingAdmissionPolicyBinding", obj: webhook.SelfProtectionName,
			back: vapDenies,
		},
		{
			name: "an on-call engineer deletes the webhook configuration, which self-protection lets break-glass groups change",
			by:   cp.Alice, kind: "ValidatingWebhookConfiguration", obj: webhook.ConfigurationName,
			back: func() error { return g.WaitEnforcing(ctx) },
		},
	}
	for _, tt := range deletions {
		t.Run(tt.name, func(t *testing.T) {
			uid, err := uidOf[tt.kind]()
			if err != nil {
				t.Fatal(err)
			}
			revertsBefore, err := reverts()
			if err != nil {
				t.Fatal(err)
			}
			statusBefore, err := sourceStatus(ctx, installationSource)
			if err != nil {
				t.Fatal(err)
			}

			if r := tt.by.Kubectl(ctx, "delete", strings.ToLower(tt.kind), tt.obj); r.Err != nil {
				t.Fatalf("%s's kubectl delete %s %s: %v\n%s", tt.by.Name, tt.kind, tt.obj, r.Err, r.Combined())
			}

			var recreated types.UID
			err = harness.Poll(ctx, 30*time.Second, func() error {
				got, err := uidOf[tt.kind]()
				if err != nil {
					return err
				}
				if got == uid {
					return fmt.Errorf("%s %s still has uid %s: not deleted yet", tt.kind, tt.obj, uid)
				}
				recreated = got
				return nil
			})
			if err != nil {
				t.Fatalf("the reconciler did not recreate %s %s: %v", tt.kind, tt.obj, err)
			}
			if err := harness.Poll(ctx, 30*time.Second, func() error { return recreationEvent(ctx, admin, tt.kind, tt.obj, recreated) }); err != nil {
				t.Error(err)
			}
			err = harness.Poll(ctx, 30*time.Second, func() error {
				n, err := reverts()
				if err != nil {
					return err
				}
				if n != revertsBefore+1 {
					return fmt.Errorf("driftless_reconciler_drift_reverts_total{source=%q} is %v, want %v", installationSource, n, revertsBefore+1)
				}
				s, err := sourceStatus(ctx, installationSource)
				if err != nil {
					return err
				}
				if s.DriftReverts != statusBefore.DriftReverts+1 {
					return fmt.Errorf("status counts %d drift reverts, want %d", s.DriftReverts, statusBefore.DriftReverts+1)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if err := harness.Poll(ctx, time.Minute, tt.back); err != nil {
				t.Errorf("after the recreation: %v", err)
			}
			if n, err := syncs(); err != nil {
				t.Error(err)
			} else if n != syncsAfterFirst {
				t.Errorf("%v syncs ran, want %v: the watch, not a sync, must restore the object", n, syncsAfterFirst)
			}
		})
	}

	t.Run("admin may not delete the restored webhook configuration", func(t *testing.T) {
		r := cp.Admin.Kubectl(ctx, "delete", "validatingwebhookconfiguration", webhook.ConfigurationName)
		if r.Err == nil {
			t.Fatalf("admin deleted the webhook configuration:\n%s", r.Combined())
		}
		if !strings.Contains(r.Combined(), "driftless: admin may not delete validatingwebhookconfigurations.admissionregistration.k8s.io/"+webhook.ConfigurationName+": ") {
			t.Errorf("denied, but not by self-protection:\n%s", r.Combined())
		}
	})
}
