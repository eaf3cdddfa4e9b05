package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/driftless-dev/driftless/internal/metricsutil"
)

// PathPrefix is the path the receiver serves; a source's hook URL is PathPrefix + its name.
const PathPrefix = "/hook/"

// Headers a sender signs its request with.
const (
	// HeaderGitHub carries "sha256=" and the hex HMAC-SHA256 of the body (GitHub).
	HeaderGitHub = "X-Hub-Signature-256"
	// HeaderGitLab carries the secret token itself (GitLab).
	HeaderGitLab = "X-Gitlab-Token"
	// HeaderGeneric carries "sha256=" and the hex HMAC-SHA256 of the body, for any sender.
	HeaderGeneric = "X-Driftless-Signature-256"
)

// Defaults of [Options].
const (
	DefaultMaxBodyBytes = 4 << 20
	// DefaultRate and DefaultBurst bound the syncs one source's hook requests.
	DefaultRate  = rate.Limit(1)
	DefaultBurst = 5
	// DefaultTotalRate and DefaultTotalBurst bound the requests whose signature is checked,
	// over all sources, so that a flood of unsigned requests cannot keep the CPU busy.
	DefaultTotalRate  = rate.Limit(50)
	DefaultTotalBurst = 100
	// DefaultRequestTimeout bounds looking up the secret and requesting the sync.
	DefaultRequestTimeout = 10 * time.Second
)

// ErrUnknownSource is returned by a [Secrets] or [Requester] for a source that does not
// exist or has no receiver secret.
var ErrUnknownSource = errors.New("unknown source or no receiver secret")

// Secrets returns the receiver secret of a source, or an error wrapping [ErrUnknownSource].
type Secrets interface {
	ReceiverSecret(ctx context.Context, source string) ([]byte, error)
}

// Requester requests a sync of a source now. It must not wait for the sync.
type Requester interface {
	RequestSync(ctx context.Context, source string, reason string) error
}

// Options are the dependencies of a [Handler].
type Options struct {
	// Secrets looks up each source's secret. Required.
	Secrets Secrets
	// Requester requests the syncs. Required.
	Requester Requester
	// Metrics counts requests by result. Nil counts nothing.
	Metrics *Metrics
	// MaxBodyBytes bounds a request body. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Rate and Burst bound the accepted requests of one source. Default DefaultRate and
	// DefaultBurst.
	Rate  rate.Limit
	Burst int
	// TotalRate and TotalBurst bound the requests whose signature is checked. Default
	// DefaultTotalRate and DefaultTotalBurst.
	TotalRate  rate.Limit
	TotalBurst int
	// Logger receives a line per request, without secrets or bodies.
	Logger logr.Logger
}

// Handler is the push receiver. Make one with [New].
type Handler struct {
	o     Options
	total *rate.Limiter

	mu        sync.Mutex
	perSource map[string]*rate.Limiter
}

var _ http.Handler = (*Handler)(nil)

// New returns a receiver with o's dependencies.
func New(o Options) (*Handler, error) {
	if o.Secrets == nil || o.Requester == nil {
		return nil, errors.New("receiver: secrets and requester are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.TotalRate <= 0 {
		o.TotalRate = DefaultTotalRate
	}
	if o.TotalBurst <= 0 {
		o.TotalBurst = DefaultTotalBurst
	}
	return &Handler{o: o, total: rate.NewLimiter(o.TotalRate, o.TotalBurst), perSource: map[string]*rate.Limiter{}}, nil
}

// Results a request ends with, the values of the metric's result label.
const (
	ResultAccepted     = "accepted"
	ResultPing         = "ping"
	ResultUnauthorized = "unauthorized"
	ResultRateLimited  = "rate_limited"
	ResultTooLarge     = "too_large"
	ResultBadRequest   = "bad_request"
	ResultError        = "error"
)

// ServeHTTP verifies a push and requests its source's sync.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.o.Logger.WithValues("remote", r.RemoteAddr)
	result, status, msg := h.serve(r, log)
	h.o.Metrics.observe(result)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"result": result, "message": msg})
}

func (h *Handler) serve(r *http.Request, log logr.Logger) (result string, status int, msg string) {
	if r.Method != http.MethodPost {
		return ResultBadRequest, http.StatusMethodNotAllowed, "only POST"
	}
	name, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || !validName(name) {
		return ResultUnauthorized, http.StatusUnauthorized, "signature not valid for this hook"
	}
	sig, ok := signatureOf(r.Header)
	if !ok {
		log.V(1).Info("push refused: no signature header", "source", name)
		return ResultUnauthorized, http.StatusUnauthorized, "signature not valid for this hook"
	}
	if !h.total.Allow() {
		return ResultRateLimited, http.StatusTooManyRequests, "too many requests"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.o.MaxBodyBytes+1))
	if err != nil {
		return ResultBadRequest, http.StatusBadRequest, "cannot read the body"
	}
	if int64(len(body)) > h.o.MaxBodyBytes {
		return ResultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", h.o.MaxBodyBytes)
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultRequestTimeout)
	defer cancel()
	secret, err := h.o.Secrets.ReceiverSecret(ctx, name)
	if err != nil {
		if !errors.Is(err, ErrUnknownSource) {
			log.Error(err, "push refused: cannot read the receiver secret", "source", name)
			return ResultError, http.StatusServiceUnavailable, "cannot check the signature now"
		}
		log.Info("push refused: unknown source or no receiver secret", "source", name)
		return ResultUnauthorized, http.StatusUnauthorized, "signature not valid for this hook"
	}
	if len(secret) == 0 || !sig.valid(secret, body) {
		log.Info("push refused: signature not valid", "source", name, "scheme", sig.scheme)
		return ResultUnauthorized, http.StatusUnauthorized, "signature not valid for this hook"
	}
	if isPing(r.Header) {
		return ResultPing, http.StatusOK, "pong"
	}
	if !h.limiter(name).Allow() {
		return ResultRateLimited, http.StatusTooManyRequests, "too many pushes for this source"
	}
	if err := h.o.Requester.RequestSync(ctx, name, "push via "+sig.scheme); err != nil {
		if errors.Is(err, ErrUnknownSource) {
			return ResultUnauthorized, http.StatusUnauthorized, "signature not valid for this hook"
		}
		log.Error(err, "cannot request a sync", "source", name)
		return ResultError, http.StatusServiceUnavailable, "cannot request the sync now"
	}
	log.Info("push accepted: sync requested", "source", name, "scheme", sig.scheme)
	return ResultAccepted, http.StatusAccepted, "sync requested"
}

// limiter returns the rate limiter of one source; only verified requests reach it, so the
// map holds no more entries than there are sources with a secret.
func (h *Handler) limiter(name string) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.perSource[name]
	if l == nil {
		l = rate.NewLimiter(h.o.Rate, h.o.Burst)
		h.perSource[name] = l
	}
	return l
}

// signature is what a request presents: an HMAC of the body, or the token itself.
type signature struct {
	scheme string
	// mac is the HMAC-SHA256 the sender computed; nil for a token.
	mac []byte
	// token is GitLab's secret token.
	token []byte
}

// signatureOf returns the signature a request carries; a request that carries more than one
// kind, or a malformed one, carries none.
func signatureOf(hdr http.Header) (signature, bool) {
	var found []signature
	for _, c := range []struct{ header, scheme string }{{HeaderGitHub, "github"}, {HeaderGeneric, "hmac"}} {
		vs := hdr.Values(c.header)
		if len(vs) == 0 {
			continue
		}
		hexMAC, ok := strings.CutPrefix(vs[0], "sha256=")
		mac, err := hex.DecodeString(hexMAC)
		if len(vs) != 1 || !ok || err != nil || len(mac) != sha256.Size {
			return signature{}, false
		}
		found = append(found, signature{scheme: c.scheme, mac: mac})
	}
	if vs := hdr.Values(HeaderGitLab); len(vs) > 0 {
		if len(vs) != 1 || vs[0] == "" {
			return signature{}, false
		}
		found = append(found, signature{scheme: "gitlab", token: []byte(vs[0])})
	}
	if len(found) != 1 {
		return signature{}, false
	}
	return found[0], true
}

// valid reports, in time independent of where they differ, whether the signature was made
// with secret over body.
func (s signature) valid(secret, body []byte) bool {
	if s.mac == nil {
		// ConstantTimeCompare returns early on a length mismatch only, which tells an
		// attacker the token's length at most; compare digests to hide that too.
		a, b := sha256.Sum256(s.token), sha256.Sum256(secret)
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(m.Sum(nil), s.mac)
}

// isPing reports whether a request is GitHub's test delivery, which requests no sync.
func isPing(hdr http.Header) bool {
	return hdr.Get("X-GitHub-Event") == "ping"
}

// validName reports whether s can be an object name (a DNS-1123 subdomain without dots
// would be stricter; this bounds length and characters so that nothing odd is looked up).
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Metrics count the receiver's requests by result.
type Metrics struct {
	requests *prometheus.CounterVec
}

// NewMetrics registers the receiver's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftless_receiver_requests_total",
		Help: "Git push receiver requests, by result (accepted, ping, unauthorized, rate_limited, too_large, bad_request, error).",
	}, []string{"result"})}
	if err := metricsutil.RegisterTo(reg, &m.requests); err != nil {
		return nil, fmt.Errorf("register receiver metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) observe(result string) {
	if m != nil {
		m.requests.WithLabelValues(result).Inc()
	}
}
