package webhook

import (
	"bytes"
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
// ratio (issue 15's target: at most 1.2). A third mode installs a webhook that only answers
// (floorWebhook), served the same way, to show what any webhook costs an update here. For each
// mode it reports the CPU time per update of the API server (apiserver-cpu-ms-*, read from
// /proc in 10 ms steps and summed over the rounds) and of this process (process-cpu-ms-*:
// alice's client, and the webhook's server when one is called), and the API server's CPU
// rate with no requests (apiserver-idle-cpu-ms/s), which the per-update figures include for
// as long as an update takes. b.N is the number of updates in each mode.
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
	server.Register(GuardPath, NewReviewHandler(g))
	server.Register(floorPath, http.HandlerFunc(floorWebhook))
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
	floor := vwc.DeepCopy()
	for i := range floor.Webhooks {
		floor.Webhooks[i].ClientConfig.URL = ptr.To("https://127.0.0.1:" + strconv.Itoa(port) + floorPath)
	}
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
	// setWebhook installs the guard's webhook configuration, the floor's, or none, and waits
	// until the API server calls what was installed.
	installed := modeNone
	setWebhook := func(mode webhookMode) error {
		var err error
		if installed != modeNone {
			if err = vwcs.Delete(bg, vwc.Name, metav1.DeleteOptions{}); err != nil {
				return err
			}
		}
		switch mode {
		case modeGuard:
			_, err = vwcs.Create(bg, vwc.DeepCopy(), metav1.CreateOptions{})
		case modeFloor:
			_, err = vwcs.Create(bg, floor.DeepCopy(), metav1.CreateOptions{})
		}
		if err != nil {
			return err
		}
		installed = mode
		return harness.Poll(bg, time.Minute, func() error {
			is, err := guarding()
			if err != nil {
				return err
			}
			if is != (mode != modeNone) {
				return fmt.Errorf("the API server does not yet see the webhook configuration as %s", mode)
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
	// Warm every path: the API server's connection to the guard and the client's.
	for _, mode := range webhookModes {
		if err := setWebhook(mode); err != nil {
			b.Fatal(err)
		}
		for range 20 {
			if _, err := update(alice); err != nil {
				b.Fatal(err)
			}
		}
	}

	// CPU figures need /proc (Linux); elsewhere the benchmark reports the round trips only.
	_, cpuErr := cp.APIServerCPU()
	if cpuErr != nil {
		b.Logf("no CPU figures: %v", cpuErr)
	}
	apiCPU := func() time.Duration {
		if cpuErr != nil {
			return 0
		}
		d, err := cp.APIServerCPU()
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	// What the API server spends with no requests (its own controllers, leases, watches): the
	// per-update CPU figures below include this rate for as long as the updates take.
	const idle = 2 * time.Second
	idleStart := apiCPU()
	if cpuErr == nil {
		time.Sleep(idle)
	}
	idleEnd := apiCPU()

	connsBefore := conns.Load()
	took := map[webhookMode][]time.Duration{}
	// CPU time the API server and this process (alice's client and the webhook server) spent
	// during each mode's updates.
	apiServerCPU, processCPUs := map[webhookMode]time.Duration{}, map[webhookMode]time.Duration{}
	perRound := max(1, b.N/rounds)
	b.ResetTimer()
	for done := 0; done < b.N; done += perRound {
		for _, mode := range webhookModes {
			b.StopTimer()
			if err := setWebhook(mode); err != nil {
				b.Fatal(err)
			}
			apiStart, processStart := apiCPU(), processCPU()
			b.StartTimer()
			for range min(perRound, b.N-done) {
				d, err := update(alice)
				if err != nil {
					b.Fatal(err)
				}
				took[mode] = append(took[mode], d)
			}
			b.StopTimer()
			processCPUs[mode] += processCPU() - processStart
			apiServerCPU[mode] += apiCPU() - apiStart
			b.StartTimer()
		}
	}
	b.StopTimer()
	with, without, floorTook := took[modeGuard], took[modeNone], took[modeFloor]
	if len(with) == 0 || len(without) == 0 || len(floorTook) == 0 {
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
	floorP50 := percentile(floorTook, 0.5)
	b.ReportMetric(float64(floorP50.Microseconds())/1000, "p50-ms-floor")
	b.ReportMetric(float64(floorP50)/float64(withoutP50), "floor-ratio")
	if cpuErr == nil {
		b.ReportMetric(float64((idleEnd-idleStart).Milliseconds())/idle.Seconds(), "apiserver-idle-cpu-ms/s")
		for _, mode := range webhookModes {
			updates := float64(len(took[mode]))
			b.ReportMetric(float64(apiServerCPU[mode].Microseconds())/1000/updates, "apiserver-cpu-ms-"+mode.metric())
			b.ReportMetric(float64(processCPUs[mode].Microseconds())/1000/updates, "process-cpu-ms-"+mode.metric())
		}
	}
	// New TLS connections per update: the API server keeps its connection to a webhook
	// across removing and re-installing its configuration, so this is 0 unless it reconnects.
	b.ReportMetric(float64(conns.Load()-connsBefore)/float64(len(with)+len(floorTook)), "tls-conns/update")
}

// webhookMode is what the API server calls in a round of [BenchmarkAPIServerRoundTrip].
type webhookMode string

const (
	modeGuard webhookMode = "guard"
	modeNone  webhookMode = "none"
	// modeFloor is a webhook that does nothing but answer, served the same way as the
	// guard: what any webhook costs an update on this API server.
	modeFloor webhookMode = "floor"
)

var webhookModes = []webhookMode{modeGuard, modeNone, modeFloor}

// metric is the suffix of the mode's metrics, as the medians name them.
func (m webhookMode) metric() string {
	switch m {
	case modeGuard:
		return "webhook"
	case modeNone:
		return "no-webhook"
	}
	return string(m)
}

// floorPath serves [floorWebhook] beside the guard.
const floorPath = "/floor"

// floorWebhook answers an AdmissionReview with as little work as an answer needs: it finds
// the request's uid by scanning and allows it, except that it denies bob, so that the
// benchmark can tell when the API server calls it.
func floorWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	const key = `"uid":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		http.Error(w, "no uid", http.StatusBadRequest)
		return
	}
	uid := body[i+len(key):]
	uid = uid[:bytes.IndexByte(uid, '"')]
	allowed, status := "true", ""
	if bytes.Contains(body, []byte(`"username":"bob"`)) {
		allowed, status = "false", `,"status":{"code":403,"message":"driftless: floor webhook denies bob"}`
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":%q,"allowed":%s%s}}`, uid, allowed, status)
}
