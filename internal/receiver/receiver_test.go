package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// secrets and requests are in-memory stand-ins for the cluster lookups, which the end-to-end
// test in test/e2e exercises against a real API server.
type secrets map[string]string

func (s secrets) ReceiverSecret(_ context.Context, name string) ([]byte, error) {
	if name == "broken" {
		return nil, errors.New("api server unavailable")
	}
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("source %q: %w", name, ErrUnknownSource)
	}
	return []byte(v), nil
}

type requests struct {
	mu    sync.Mutex
	names []string
}

func (r *requests) RequestSync(_ context.Context, name, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
	return nil
}

func (r *requests) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

func mac(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestReceiver(t *testing.T) {
	const body = `{"ref":"refs/heads/main","after":"0123"}`
	cases := []struct {
		name     string
		method   string
		path     string
		headers  map[string]string
		body     string
		want     int
		requests []string
	}{
		{name: "github signature", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("s3cret", body)}, want: 202, requests: []string{"apps"}},
		{name: "generic signature", path: "/hook/apps", headers: map[string]string{HeaderGeneric: mac("s3cret", body)}, want: 202, requests: []string{"apps"}},
		{name: "gitlab token", path: "/hook/apps", headers: map[string]string{HeaderGitLab: "s3cret"}, want: 202, requests: []string{"apps"}},
		{name: "github signature with the wrong secret", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("guess", body)}, want: 401},
		{name: "signature of another body", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("s3cret", body+" ")}, want: 401},
		{name: "another source's secret", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("other", body)}, want: 401},
		{name: "gitlab wrong token", path: "/hook/apps", headers: map[string]string{HeaderGitLab: "s3cre"}, want: 401},
		{name: "no signature", path: "/hook/apps", want: 401},
		{name: "malformed signature", path: "/hook/apps", headers: map[string]string{HeaderGitHub: "sha1=abcd"}, want: 401},
		{name: "two kinds of signature", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("s3cret", body), HeaderGitLab: "s3cret"}, want: 401},
		{name: "unknown source looks like a bad signature", path: "/hook/nope", headers: map[string]string{HeaderGitHub: mac("s3cret", body)}, want: 401},
		{name: "source without a secret", path: "/hook/nosecret", headers: map[string]string{HeaderGitHub: mac("", body)}, want: 401},
		{name: "odd name", path: "/hook/../apps", headers: map[string]string{HeaderGitHub: mac("s3cret", body)}, want: 401},
		{name: "secret lookup fails", path: "/hook/broken", headers: map[string]string{HeaderGitHub: mac("s3cret", body)}, want: 503},
		{name: "github ping", path: "/hook/apps", headers: map[string]string{HeaderGitHub: mac("s3cret", body), "X-GitHub-Event": "ping"}, want: 200},
		{name: "unsigned ping", path: "/hook/apps", headers: map[string]string{"X-GitHub-Event": "ping"}, want: 401},
		{name: "GET", method: http.MethodGet, path: "/hook/apps", headers: map[string]string{HeaderGitLab: "s3cret"}, want: 405},
		{name: "body too large", path: "/hook/apps", body: strings.Repeat("x", 1025), headers: map[string]string{HeaderGitHub: mac("s3cret", strings.Repeat("x", 1025))}, want: 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reqs := &requests{}
			h, err := New(Options{Secrets: secrets{"apps": "s3cret", "other": "other", "nosecret": ""}, Requester: reqs, MaxBodyBytes: 1024})
			if err != nil {
				t.Fatal(err)
			}
			method, b := c.method, c.body
			if method == "" {
				method = http.MethodPost
			}
			if b == "" {
				b = body
			}
			req := httptest.NewRequest(method, c.path, strings.NewReader(b))
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Errorf("status = %d, want %d (%s)", rec.Code, c.want, rec.Body.String())
			}
			if got := reqs.got(); strings.Join(got, ",") != strings.Join(c.requests, ",") {
				t.Errorf("syncs requested = %v, want %v", got, c.requests)
			}
		})
	}
}

// TestUnauthorizedResponsesAreAlike checks that a caller cannot tell an unknown source from a
// known one with a wrong signature.
func TestUnauthorizedResponsesAreAlike(t *testing.T) {
	h, err := New(Options{Secrets: secrets{"apps": "s3cret"}, Requester: &requests{}})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, path := range []string{"/hook/apps", "/hook/nope"} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
		req.Header.Set(HeaderGitHub, mac("guess", "{}"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		bodies = append(bodies, fmt.Sprint(rec.Code, string(b)))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("known and unknown source answered differently:\n%s\n%s", bodies[0], bodies[1])
	}
}

func TestRateLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	reqs := &requests{}
	h, err := New(Options{Secrets: secrets{"apps": "s3cret", "web": "w"}, Requester: reqs, Metrics: metrics, Rate: 0.001, Burst: 2, TotalRate: 0.001, TotalBurst: 4})
	if err != nil {
		t.Fatal(err)
	}
	post := func(source, secret string) int {
		req := httptest.NewRequest(http.MethodPost, "/hook/"+source, strings.NewReader("{}"))
		req.Header.Set(HeaderGeneric, mac(secret, "{}"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	// Per source: two accepted, the third refused; another source still has its own burst.
	got := []int{post("apps", "s3cret"), post("apps", "s3cret"), post("apps", "s3cret"), post("web", "w")}
	if want := []int{202, 202, 429, 202}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	// In total: the fifth signed request is refused before its signature is checked, even
	// for a source with burst left.
	if code := post("web", "w"); code != 429 {
		t.Errorf("over the total rate: status = %d, want 429", code)
	}
	if got := strings.Join(reqs.got(), ","); got != "apps,apps,web" {
		t.Errorf("syncs requested = %s, want apps,apps,web", got)
	}
	if n := testutil.ToFloat64(metrics.requests.WithLabelValues(ResultRateLimited)); n != 2 {
		t.Errorf("rate_limited = %v, want 2", n)
	}
	if n := testutil.ToFloat64(metrics.requests.WithLabelValues(ResultAccepted)); n != 3 {
		t.Errorf("accepted = %v, want 3", n)
	}
}
