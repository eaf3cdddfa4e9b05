package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// BenchmarkAPIServerRoundTrip measures what the guard adds to an update through a real API
// server (test/harness): alice, on call, updates a ConfigMap under break-glass in a protected
// namespace (the API server calls the guard, which decodes the object's metadata and allows
// it; the reconciler is never sent to the guard), in alternating rounds with the guard's
// webhook configuration installed and removed, in the same run. The guard runs in this
// process behind its own HTTPS server with client-certificate authentication, as driftless
// run serves it. It reports the median round trip with and without the webhook and their
// ratio (issue 15's target: at most 1.2). b.N is the number of updates in each mode.
func BenchmarkAPIServerRoundTrip(b *testing.B) {
	const rounds = 10
	bg := context.Background()
	cp, err := harness.Start(bg)
	if err != nil {
		b.Skipf("no control plane (make envtest): %v", err)
	}
	defer cp.Stop()
	admin, err := cp.Admin.Clientset()
	if err != nil {
		b.Fatal(err)
	}
	alice, err := cp.Alice.Clientset()
	if err != nil {
		b.Fatal(err)
	}
	bob, err := cp.Bob.Clientset()
	if err != nil {
		b.Fatal(err)
	}
	const ns = "production"
	if _, err := admin.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	cm, err := admin.CoreV1().ConfigMaps(ns).Create(bg, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: "app", Labels: map[string]string{v1alpha1.LabelSource: "platform"},
			// Valid on the guard's clock (newTestGuard's fixed now).
			Annotations: breakGlassObj("INC-1", now.Add(time.Hour)).annotations,
		},
		Data: map[string]string{"config": strings.Repeat("x", 2048), "n": "0"},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}

	dir := b.TempDir()
	ca, err := harness.NewCA()
	if err != nil {
		b.Fatal(err)
	}
	if err := ca.WriteServingCert(dir, 1, "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	clientCA := filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(clientCA, cp.WebhookClientCA.PEM, 0o600); err != nil {
		b.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
	// Connections the API server opens to the guard: each is a TLS handshake.
	var conns atomic.Int64
	server, err := NewServer(ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir, ClientCAFile: clientCA,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	// As in driftless run: controller-runtime's default per-request logger, JSON to a sink.
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	server.Register(GuardPath, &admission.Webhook{Handler: g})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go func() { _ = server.Start(ctx) }()

	cfg, err := v1alpha1.Decode([]byte(testConfig))
	if err != nil {
		b.Fatal(err)
	}
	vwc := WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To("https://127.0.0.1:" + strconv.Itoa(port) + GuardPath),
		CABundle: ca.PEM,
	})
	vwcs := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	// guarding says whether the API server calls the guard: bob's dry-run create is denied.
	guarding := func() (bool, error) {
		probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}}
		_, err := bob.CoreV1().ConfigMaps(ns).Create(bg, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil:
			return false, nil
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "driftless:"):
			return true, nil
		}
		return false, err
	}
	setWebhook := func(on bool) error {
		var err error
		if on {
			_, err = vwcs.Create(bg, vwc.DeepCopy(), metav1.CreateOptions{})
		} else {
			err = vwcs.Delete(bg, vwc.Name, metav1.DeleteOptions{})
		}
		if err != nil {
			return err
		}
		return harness.Poll(bg, time.Minute, func() error {
			is, err := guarding()
			if err != nil {
				return err
			}
			if is != on {
				return fmt.Errorf("the API server does not yet see the webhook configuration as on=%v", on)
			}
			return nil
		})
	}

	n := 0
	update := func(client *kubernetes.Clientset) (time.Duration, error) {
		n++
		cm.Data["n"] = strconv.Itoa(n)
		start := time.Now()
		out, err := client.CoreV1().ConfigMaps(ns).Update(bg, cm, metav1.UpdateOptions{})
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		cm = out
		return took, nil
	}
	// Warm both paths: the API server's connection to the guard and the client's.
	for _, on := range []bool{true, false} {
		if err := setWebhook(on); err != nil {
			b.Fatal(err)
		}
		for range 20 {
			if _, err := update(alice); err != nil {
				b.Fatal(err)
			}
		}
	}

	connsBefore := conns.Load()
	with := make([]time.Duration, 0, b.N)
	without := make([]time.Duration, 0, b.N)
	perRound := max(1, b.N/rounds)
	b.ResetTimer()
	for done := 0; done < b.N; done += perRound {
		for _, on := range []bool{true, false} {
			b.StopTimer()
			if err := setWebhook(on); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for range min(perRound, b.N-done) {
				took, err := update(alice)
				if err != nil {
					b.Fatal(err)
				}
				if on {
					with = append(with, took)
				} else {
					without = append(without, took)
				}
			}
		}
	}
	b.StopTimer()
	if len(with) == 0 || len(without) == 0 {
		b.Fatal(errors.New("no updates measured"))
	}
	// Every update with the webhook on went through the guard.
	if called := testutil.ToFloat64(g.metrics.decisions.WithLabelValues(string(ResultAllowed), string(ReasonBreakGlass))); called < float64(len(with)) {
		b.Fatalf("the guard allowed %v updates under break-glass, want at least the %d measured with the webhook", called, len(with))
	}
	withP50, withoutP50 := percentile(with, 0.5), percentile(without, 0.5)
	b.ReportMetric(float64(withP50.Microseconds())/1000, "p50-ms-webhook")
	b.ReportMetric(float64(withoutP50.Microseconds())/1000, "p50-ms-no-webhook")
	b.ReportMetric(float64(percentile(with, 0.99).Microseconds())/1000, "p99-ms-webhook")
	b.ReportMetric(float64(percentile(without, 0.99).Microseconds())/1000, "p99-ms-no-webhook")
	b.ReportMetric(float64(withP50)/float64(withoutP50), "ratio")
	// The API server's connections are per webhook configuration: it connects again after
	// each re-install, so a handshake per round and webhook is the floor here.
	b.ReportMetric(float64(conns.Load()-connsBefore)/float64(len(with)), "tls-conns/update")
}
