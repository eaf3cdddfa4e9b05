package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

// forgedReview is an AdmissionReview that nobody but the API server should be able to send: a
// break-glass use by user on ConfigMap name in production.
func forgedReview(t *testing.T, user, name string) []byte {
	t.Helper()
	obj, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "production", "annotations": map[string]string{
			v1alpha1.AnnotationBreakGlass:      "invented reason",
			v1alpha1.AnnotationBreakGlassUntil: guard.Clock.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("forged-" + name),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"},
			Name:      name,
			Namespace: "production",
			// An update: break-glass covers objects that exist.
			Operation: admissionv1.Update,
			UserInfo:  authenticationv1.UserInfo{Username: user, Groups: []string{harness.OncallGroup}},
			Object:    runtime.RawExtension{Raw: obj},
			OldObject: runtime.RawExtension{Raw: obj},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// guardClient is an HTTPS client that trusts the guard's serving CA and presents certs.
func guardClient(certs ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(guard.CA.PEM)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 32,
	}}
}

func postReview(c *http.Client, body []byte) (*admissionv1.AdmissionReview, error) {
	resp, err := c.Post("https://"+guard.WebhookAddr+webhook.GuardPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s: %s", resp.Status, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return &out, nil
}

// TestOnlyTheAPIServerReachesTheGuard posts a forged break-glass review to the guard directly,
// as anyone who can reach its port could: without a client certificate, and with one from
// another CA, the TLS handshake fails and the guard decides nothing. With the API server's
// client certificate the same review is decided, and the API server's own calls (every other
// test in this package) work with client authentication on.
func TestOnlyTheAPIServerReachesTheGuard(t *testing.T) {
	otherCA, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := otherCA.ClientCert("kube-apiserver", 10)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	apiserver, err := cp.WebhookClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	body := forgedReview(t, "alice", "forged-tls")

	for _, tt := range []struct {
		name   string
		client *http.Client
	}{
		{"no client certificate", guardClient()},
		{"client certificate from another CA", guardClient(impostor)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := guard.Decisions()
			if err != nil {
				t.Fatal(err)
			}
			review, err := postReview(tt.client, body)
			if err == nil {
				t.Fatalf("the guard answered a review without the API server's certificate: %+v", review.Response)
			}
			if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("refused, but not at the TLS handshake: %v", err)
			}
			after, err := guard.Decisions()
			if err != nil {
				t.Fatal(err)
			}
			if after["total"] != before["total"] {
				t.Errorf("the guard decided %v requests it should never have read", after["total"]-before["total"])
			}
		})
	}
	t.Run("the API server's client certificate", func(t *testing.T) {
		review, err := postReview(guardClient(apiserver), body)
		if err != nil {
			t.Fatal(err)
		}
		if review.Response == nil || !review.Response.Allowed {
			t.Fatalf("review with a valid break-glass was not allowed: %+v", review.Response)
		}
	})
	t.Run("the API server calls the guard", func(t *testing.T) {
		if err := guard.WaitEnforcing(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestForgedReviewsAreBounded sends 1,000 reviews with distinct invented users, as a caller
// holding a valid client certificate could: the guard allows them (they look like break-glass
// uses), but they create no metric series and at most webhook.EventBurst Events. The guard's
// clock stands still meanwhile, so the Event budget does not refill during the test.
func TestForgedReviewsAreBounded(t *testing.T) {
	ctx := t.Context()
	apiserver, err := cp.WebhookClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	client := guardClient(apiserver)
	// The first use creates the series of a break-glass use; the rest must add none.
	if _, err := postReview(client, forgedReview(t, "forged-warmup", "forged-warmup")); err != nil {
		t.Fatal(err)
	}
	seriesBefore := guardSeries(t)
	eventsBefore, err := guard.Counter("driftless_guard_events_total", "reason", "outcome")
	if err != nil {
		t.Fatal(err)
	}

	const forged = 1000
	flood(t, client, 0, forged)
	// The flood may add the fixed series of suppressed Events; a second flood of new users
	// must add nothing at all.
	series := guardSeries(t)
	flood(t, client, forged, forged+200)
	if after := guardSeries(t); after != series {
		t.Errorf("200 more forged users changed the guard's metric series from %d to %d", series, after)
	}
	if after := guardSeries(t); after > seriesBefore+1 {
		t.Errorf("%d forged users changed the guard's metric series from %d to %d", forged, seriesBefore, after)
	}
	eventsAfter, err := guard.Counter("driftless_guard_events_total", "reason", "outcome")
	if err != nil {
		t.Fatal(err)
	}
	recorded := eventsAfter[webhook.EventBreakGlassUsed+"/recorded"] - eventsBefore[webhook.EventBreakGlassUsed+"/recorded"]
	suppressed := eventsAfter[webhook.EventBreakGlassUsed+"/suppressed"] - eventsBefore[webhook.EventBreakGlassUsed+"/suppressed"]
	if recorded > webhook.EventBurst || recorded+suppressed != forged+200 {
		t.Errorf("the guard recorded %v and suppressed %v Events for %d forged uses, want at most %d recorded", recorded, suppressed, forged, webhook.EventBurst)
	}
	// The Events the guard recorded reach the API server; no more than that.
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	err = harness.Poll(ctx, time.Minute, func() error {
		list, err := admin.EventsV1().Events("production").List(ctx, metav1.ListOptions{FieldSelector: "reason=" + webhook.EventBreakGlassUsed})
		if err != nil {
			return err
		}
		n := 0
		for _, e := range list.Items {
			if strings.Contains(e.Note, "break-glass: forged-user-") {
				n++
			}
		}
		if n > webhook.EventBurst {
			t.Fatalf("%d Events for %d forged users, want at most %d", n, forged+200, webhook.EventBurst)
		}
		if float64(n) != recorded {
			return fmt.Errorf("%d Events for forged users in the API server, the guard recorded %v", n, recorded)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// Let the budget refill for the tests that follow.
	guard.Clock.Step(time.Hour)
}

// flood sends forged reviews for users from to to-1 from 16 workers; all must be allowed.
func flood(t *testing.T, client *http.Client, from, to int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				review, err := postReview(client, forgedReview(t, fmt.Sprintf("forged-user-%d", i), fmt.Sprintf("forged-%d", i)))
				if err == nil && (review.Response == nil || !review.Response.Allowed) {
					err = fmt.Errorf("review %d not allowed: %+v", i, review.Response)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d reviews failed, first: %v", len(errs), to-from, errs[0])
	}
}

// guardSeries counts the samples of every driftless_guard_* and controller-runtime webhook
// metric the guard exposes, and fails if a label value names a forged user.
func guardSeries(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + guard.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, f := range families {
		if strings.HasPrefix(name, "driftless_guard_") || strings.HasPrefix(name, "controller_runtime_webhook_") {
			n += len(f.GetMetric())
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if strings.Contains(l.GetValue(), "forged") {
						t.Errorf("metric %s has a label %s=%q from a request", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	return n
}
