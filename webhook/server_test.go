package webhook

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestServerBounds shows the server's bounds on the handler: a request beyond MaxInFlight is
// refused at once with 429 while the others are handled, and a body over MaxRequestBytes is
// refused with 413, whether it says its length or not.
func TestServerBounds(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerOptions{Port: 9443, CertDir: t.TempDir(), MaxInFlight: 1, MaxRequestBytes: 16, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	s.Register("/guard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Header.Get("X-Block") != "" {
			entered <- struct{}{}
			<-release
		}
	}))
	srv := httptest.NewServer(s.WebhookMux())
	defer srv.Close()

	blocked := make(chan int)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/guard", strings.NewReader("{}"))
		req.Header.Set("X-Block", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			blocked <- 0
			return
		}
		resp.Body.Close()
		blocked <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Post(srv.URL+"/guard", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("request beyond MaxInFlight: %s, want 429", resp.Status)
	}
	close(release)
	if code := <-blocked; code != http.StatusOK {
		t.Errorf("the request in flight: %d, want 200", code)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues(RefusedOverloaded)); got != 1 {
		t.Errorf("overloaded refusals counted %v, want 1", got)
	}

	for _, tt := range []struct {
		name string
		body io.Reader
	}{
		{"with Content-Length", strings.NewReader(strings.Repeat("x", 17))},
		{"chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 10)), strings.NewReader(strings.Repeat("x", 10)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/guard", "application/json", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("body over the limit: %s, want 413", resp.Status)
			}
		})
	}
}

// TestServerRefusesAMissingClientCA: a client CA file that cannot be read is a start-up error,
// never a server that accepts anyone.
func TestServerRefusesAMissingClientCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewServer(ServerOptions{Port: 9443, CertDir: dir, ClientCAFile: "ca.crt"}); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("missing client CA file: %v, want an error naming it", err)
	}
}
