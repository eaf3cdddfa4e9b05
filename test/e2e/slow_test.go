package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

// TestFailClosedWhenTheGuardIsSlow installs the generated webhook configuration for a guard
// that never answers: the API server gives up after the configuration's timeout and, with
// failurePolicy Fail, denies the change instead of letting it through.
func TestFailClosedWhenTheGuardIsSlow(t *testing.T) {
	ctx := t.Context()
	const ns = "slow-guard"
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	if r := cp.Admin.Kubectl(ctx, "create", "configmap", "-n", ns, "slow-config", "--from-literal=poolSize=10"); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	release := make(chan struct{})
	hang := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })

	cfg := &v1alpha1.DriftlessConfig{Guard: v1alpha1.Guard{ProtectedNamespaces: []string{ns}}}
	v1alpha1.SetDefaults(cfg)
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To(hang.URL + webhook.GuardPath),
		CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hang.Certificate().Raw}),
	})
	vwc.Name = "driftless-guard-slow"
	for _, w := range vwc.Webhooks {
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail || w.TimeoutSeconds == nil {
			t.Fatalf("webhook %s: failurePolicy %v, timeout %v; want Fail with a timeout", w.Name, w.FailurePolicy, w.TimeoutSeconds)
		}
	}
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(t.Context(), vwc.Name, metav1.DeleteOptions{})
	})

	// The API server takes the configuration up asynchronously: wait with dry-runs (which it
	// sends to the webhook too) until it calls the guard that never answers.
	if err := harness.Poll(ctx, time.Minute, func() error {
		r := cp.Bob.Kubectl(ctx, "patch", "-n", ns, "configmap/slow-config", "--dry-run=server", "--type=merge", "-p", `{"data":{"poolSize":"99"}}`)
		if r.Err == nil {
			return fmt.Errorf("the API server does not call the slow guard yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := cp.Bob.Kubectl(ctx, "patch", "-n", ns, "configmap/slow-config", "--type=merge", "-p", `{"data":{"poolSize":"99"}}`)
	if r.Err == nil {
		t.Fatalf("bob's change went through a guard that never answered:\n%s", r.Combined())
	}
	if !strings.Contains(r.Combined(), "failed calling webhook") {
		t.Errorf("unexpected error: %s", r.Combined())
	}
	assertKubectlOutput(t, cp.Admin, `{.data.poolSize}`, "10", "get", "-n", ns, "configmap/slow-config")
}
