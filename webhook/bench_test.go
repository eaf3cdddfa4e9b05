package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// benchRequests are the decisions the guard makes most: a person denied in a protected
// namespace, a person allowed elsewhere, and an on-call change under break-glass.
func benchRequests() map[string]admission.Request {
	bg := breakGlassObj("INC-1", now.Add(time.Hour))
	bg.labels = owned.labels
	deployment := request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", group: "apps", resource: "deployments"}.build()
	deployment.Object.Raw, deployment.OldObject.Raw = deploymentJSON, deploymentJSON
	return map[string]admission.Request{
		"deny-protected":            request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build(),
		"deny-protected-deployment": deployment,
		"allow-unprotected":         request{user: "bob", groups: bob, op: admissionv1.Update, ns: "sandbox", object: owned, oldObject: owned}.build(),
		"allow-break-glass":         request{user: "alice", groups: alice, op: admissionv1.Update, ns: "production", object: bg, oldObject: bg}.build(),
	}
}

// deploymentJSON is the policy library's admitted Deployment (5.4 KiB: server-set metadata,
// managedFields and status) in namespace production, encoded from the typed object as the API
// server encodes it, fields in the order of the Go types.
var deploymentJSON = func() []byte {
	raw, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "manifests", "deployment-admitted.yaml"))
	if err != nil {
		panic(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		panic(err)
	}
	d.Namespace = "production"
	data, err := json.Marshal(&d)
	if err != nil {
		panic(err)
	}
	return data
}()

// BenchmarkDecision measures the in-process decision: decode, decide, respond, one JSON log
// line (to io.Discard) and metrics. Every decision is timed by the wall clock: p50-ns and
// p99-ns. cpu-ns/op is the CPU time of the benchmark's thread (its goroutine is locked to it)
// over the whole run, per decision, which leaves out the time other processes on a shared
// machine take the core away; it is read once per run because reading it costs a system call
// of about a microsecond here, which inside the timed window would count towards every
// decision.
func BenchmarkDecision(b *testing.B) {
	ctx := log.IntoContext(context.Background(), zap.New(zap.WriteTo(io.Discard)))
	reqs := benchRequests()
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		req := reqs[name]
		b.Run(name, func(b *testing.B) {
			g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
			timeEach(b, func() { g.Handle(ctx, req) })
		})
	}
}

// BenchmarkMachineTail times, like BenchmarkDecision, a fixed computation that allocates
// nothing, at three sizes (hashing 1, 2 and 4 KiB): the 99th percentile that work of each
// length has on the machine that runs it, whatever the work. A fourth case hashes 4 KiB (about
// as long as the guard takes to deny the 5 KiB Deployment) and then builds the answer to that
// denial, which any guard must allocate: the message kubectl prints, at its real length, in
// the Status that carries it. Its p99 is the least a denial that answers can have here, with
// the garbage collector running as often as that answer makes it run.
func BenchmarkMachineTail(b *testing.B) {
	data := bytes.Repeat([]byte("driftless"), 512)
	for _, n := range []int{1 << 10, 2 << 10, 4 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			h := fnv.New64a()
			timeEach(b, func() {
				h.Reset()
				_, _ = h.Write(data[:n])
				machineTailSink = h.Sum64()
			})
		})
	}
	g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
	denial := g.Handle(context.Background(), benchRequests()["deny-protected-deployment"])
	if denial.Allowed || denial.Result == nil || denial.Result.Message == "" {
		b.Fatalf("the guard did not deny the Deployment with a message: %+v", denial.AdmissionResponse)
	}
	msg := []byte(denial.Result.Message)
	b.Run("bytes=4096+denial-answer", func(b *testing.B) {
		h := fnv.New64a()
		timeEach(b, func() {
			h.Reset()
			_, _ = h.Write(data)
			answerSink = admission.Denied(string(msg))
			machineTailSink = h.Sum64()
		})
	})
}

// machineTailSink and answerSink keep BenchmarkMachineTail's work from being optimised away.
var (
	machineTailSink uint64
	answerSink      admission.Response
)

// tailBound is issue 15's bound on the in-process deny's 99th percentile: it is met when at
// most 1% of runs take longer.
const tailBound = 20 * time.Microsecond

// timeEach runs op b.N times on a locked thread, timing each run by the wall clock, and
// reports the median and 99th percentile (p50-ns, p99-ns), the share of runs over tailBound
// in percent (over-20us-%: the machine's own interruptions take part of that 1% whatever the
// work) and the thread's CPU time per run (cpu-ns/op).
func timeEach(b *testing.B, op func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart := threadCPU()
	for b.Loop() {
		start := time.Now()
		op()
		took = append(took, time.Since(start))
	}
	cpu := threadCPU() - cpuStart
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(took)), "cpu-ns/op")
	b.ReportMetric(float64(percentile(took, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(took, 0.99).Nanoseconds()), "p99-ns")
	b.ReportMetric(100*float64(countOver(took, tailBound))/float64(len(took)), "over-20us-%")
}

// countOver returns how many of d are over bound.
func countOver(d []time.Duration, bound time.Duration) int {
	n := 0
	for _, x := range d {
		if x > bound {
			n++
		}
	}
	return n
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkHTTPSLoad serves the guard over TLS on loopback with the guard's Server, as
// driftless run does, and sends AdmissionReviews from 16 concurrent clients, without and with
// client-certificate authentication. It reports reviews per second, latency percentiles and
// the process's peak RSS (server and clients share the process).
func BenchmarkHTTPSLoad(b *testing.B) {
	for _, clientAuth := range []bool{false, true} {
		b.Run(fmt.Sprintf("client-auth=%v", clientAuth), func(b *testing.B) { benchmarkHTTPSLoad(b, clientAuth) })
	}
}

func benchmarkHTTPSLoad(b *testing.B, clientAuth bool) {
	const concurrency = 16
	dir := b.TempDir()
	ca, err := harness.NewCA()
	if err != nil {
		b.Fatal(err)
	}
	if err := ca.WriteServingCert(dir, 1, "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
	opts := ServerOptions{Host: "127.0.0.1", Port: port, CertDir: dir}
	var certs []tls.Certificate
	if clientAuth {
		crt, key, err := ca.ClientCert("kube-apiserver", 5)
		if err != nil {
			b.Fatal(err)
		}
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			b.Fatal(err)
		}
		certs = []tls.Certificate{pair}
		opts.ClientCAFile = filepath.Join(dir, "client-ca.crt")
		if err := os.WriteFile(opts.ClientCAFile, ca.PEM, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	server, err := NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	// As in driftless run: controller-runtime's default per-request logger, JSON to a sink.
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	server.Register(GuardPath, NewReviewHandler(g))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = server.Start(ctx) }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: concurrency}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + GuardPath
	req := benchRequests()["deny-protected"]
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		b.Fatal(err)
	}
	post := func() error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"allowed":false`)) {
			return fmt.Errorf("unexpected answer %s: %s", resp.Status, out)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for err := post(); err != nil; err = post() {
		if time.Now().After(deadline) {
			b.Fatalf("webhook server did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.ResetTimer()
	var (
		mu   sync.Mutex
		took = make([]time.Duration, 0, b.N)
		wg   sync.WaitGroup
		errs = make(chan error, concurrency)
	)
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/concurrency+1)
			for range work {
				t0 := time.Now()
				if err := post(); err != nil {
					errs <- err
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			took = append(took, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reviews/s")
	b.ReportMetric(float64(percentile(took, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(took, 0.99).Microseconds())/1000, "p99-ms")
	if rss, err := peakRSS(); err == nil {
		b.ReportMetric(rss, "peak-rss-MiB")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// peakRSS reads the process's peak resident set size (VmHWM) in MiB.
func peakRSS() (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", "self", "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// BenchmarkReviewHandler serves each benchmark request's AdmissionReview, and the review
// kube-apiserver sent in BenchmarkAPIServerRoundTrip (apiServerReview), over HTTP in process
// (no TLS), with the guard's ReviewHandler and, for comparison, controller-runtime's
// admission.Webhook around the same guard, each review timed as in BenchmarkDecision.
func BenchmarkReviewHandler(b *testing.B) {
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	bodies := map[string][]byte{"apiserver-break-glass": apiServerReview(b)}
	for name, req := range benchRequests() {
		bodies[name] = reviewBody(b, req)
	}
	for _, name := range slices.Sorted(maps.Keys(bodies)) {
		body := bodies[name]
		g, _ := newTestGuard(b, v1alpha1.ModeEnforce)
		for _, h := range []struct {
			name    string
			handler http.Handler
		}{{"guard", NewReviewHandler(g)}, {"controller-runtime", &admission.Webhook{Handler: g}}} {
			b.Run(name+"/"+h.name, func(b *testing.B) {
				timeEach(b, func() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodPost, GuardPath, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					h.handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				})
			})
		}
	}
}
