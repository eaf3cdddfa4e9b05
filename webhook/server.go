package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Bounds of the guard's HTTPS server. An AdmissionReview carries the object and, for an
// update, the old object; the API server accepts request bodies of up to 3 MiB, so a review is
// at most about twice that plus the envelope.
const (
	// DefaultMaxRequestBytes is the largest AdmissionReview body the guard reads.
	DefaultMaxRequestBytes int64 = 7 << 20
	// DefaultMaxInFlight is how many reviews the guard decides at once; more get a 429 at once.
	DefaultMaxInFlight = 32
	// DefaultReadHeaderTimeout bounds the TLS handshake and the request headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds a request from its headers to the end of the response; the
	// API server gives up after the webhook's timeoutSeconds anyway.
	DefaultWriteTimeout = 15 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection may wait for its next request.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultClientCAReloadInterval is how often the client CA file is checked for changes.
	DefaultClientCAReloadInterval = 10 * time.Second
)

// ServerOptions configure the guard's HTTPS server. Zero durations and sizes take the
// defaults above.
type ServerOptions struct {
	// Host and Port are where the server listens. Port is required.
	Host string
	Port int
	// CertDir holds the serving certificate (tls.crt, tls.key); changed files are picked up
	// without a restart. Required.
	CertDir string
	// ClientCAFile, when set, makes the server require a client certificate signed by one of
	// the CAs in this PEM file: a client without one is refused during the TLS handshake, before
	// anything is read. A relative path is relative to CertDir. The file is re-read when it
	// changes, so a CA bundle can be rotated with an overlap. Empty accepts any client.
	ClientCAFile string
	// ClientCAReloadInterval is how often ClientCAFile is checked for changes.
	ClientCAReloadInterval time.Duration
	// MaxRequestBytes is the largest request body read; larger requests get 413.
	MaxRequestBytes int64
	// MaxInFlight bounds the requests handled at once; excess requests get 429 at once.
	MaxInFlight int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the http.Server's.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Metrics counts refused requests; nil counts none.
	Metrics *Metrics
	// Logger receives the server's log lines.
	Logger logr.Logger
	// ConnState, when set, is called when a client connection changes state (as
	// http.Server.ConnState); a new connection means a TLS handshake.
	ConnState func(net.Conn, http.ConnState)
}

// Server is the guard's HTTPS server: controller-runtime's webhook server interface with
// client-certificate authentication, timeouts, a body size limit and bounded concurrency.
type Server struct {
	opts    ServerOptions
	mux     *http.ServeMux
	slots   chan struct{}
	clients atomic.Pointer[x509.CertPool]
	mu      sync.Mutex
	started bool
}

var _ ctrlwebhook.Server = (*Server)(nil)

// NewServer returns a server with the given options; it listens when started.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("webhook server: port %d is not from 1 to 65535", opts.Port)
	}
	if opts.CertDir == "" {
		return nil, errors.New("webhook server: a certificate directory is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&opts.ReadTimeout, DefaultReadTimeout)
	def(&opts.WriteTimeout, DefaultWriteTimeout)
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.ClientCAReloadInterval, DefaultClientCAReloadInterval)
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.ClientCAFile != "" && !filepath.IsAbs(opts.ClientCAFile) {
		opts.ClientCAFile = filepath.Join(opts.CertDir, opts.ClientCAFile)
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), slots: make(chan struct{}, opts.MaxInFlight)}
	if opts.ClientCAFile != "" {
		// Read now, so that a missing or empty CA file is a start-up error, never an open door.
		pool, _, err := readClientCAs(opts.ClientCAFile)
		if err != nil {
			return nil, err
		}
		s.clients.Store(pool)
	}
	return s, nil
}

// NeedLeaderElection is false: every replica serves the guard.
func (*Server) NeedLeaderElection() bool { return false }

// Register serves hook at path, behind the body size limit and the concurrency bound.
func (s *Server) Register(path string, hook http.Handler) {
	s.mux.Handle(path, s.bounded(hook))
}

// WebhookMux returns the server's multiplexer. Handlers added to it directly are not bounded.
func (s *Server) WebhookMux() *http.ServeMux { return s.mux }

// bounded refuses a request when MaxInFlight requests are being handled, and limits the body
// it reads to MaxRequestBytes.
func (s *Server) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.opts.Metrics.refused(RefusedOverloaded)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "driftless guard: too many requests in flight", http.StatusTooManyRequests)
			return
		}
		if r.ContentLength > s.opts.MaxRequestBytes {
			s.opts.Metrics.refused(RefusedTooLarge)
			http.Error(w, fmt.Sprintf("driftless guard: request body of %d bytes is more than %d", r.ContentLength, s.opts.MaxRequestBytes), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes)
		next.ServeHTTP(w, r)
	})
}

// Start serves until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	log := s.opts.Logger.WithName("webhook-server")
	watcher, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("webhook server: serving certificate in %s: %w", s.opts.CertDir, err)
	}
	go func() {
		if err := watcher.Start(ctx); err != nil {
			log.Error(err, "serving certificate watcher stopped")
		}
	}()
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: watcher.GetCertificate,
	}
	if s.opts.ClientCAFile != "" {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		// The pool is looked up per handshake, so a reloaded CA bundle applies to new
		// connections at once.
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.Clone()
			c.GetConfigForClient = nil
			c.ClientCAs = s.clients.Load()
			return c, nil
		}
		go s.watchClientCAs(ctx, log)
		log.Info("webhook requires client certificates", "clientCAFile", s.opts.ClientCAFile)
	} else {
		log.Info("webhook accepts any client: no client CA is configured; anyone who reaches its port can make it decide and record")
	}

	listener, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return fmt.Errorf("webhook server: %w", err)
	}
	srv := &http.Server{
		Handler:           s.mux,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig:         cfg,
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ConnState:         s.opts.ConnState,
		// TLS handshake failures (no or a wrong client certificate) are the client's problem;
		// at the default level they would flood the log.
		ErrorLog: stdlog.New(logWriter{log.V(1)}, "", 0),
	}
	closed := make(chan struct{})
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			log.Error(err, "shut down webhook server")
		}
		close(closed)
	}()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	log.Info("serving webhook", "host", s.opts.Host, "port", s.opts.Port)
	if err := srv.ServeTLS(listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook server: %w", err)
	}
	<-closed
	return nil
}

// StartedChecker reports ready once the server listens and accepts TCP connections. It does
// not complete a TLS handshake, which needs a client certificate when client CAs are set.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not been started yet")
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)), 10*time.Second)
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}

// watchClientCAs re-reads the client CA file when its content changes. A file that no longer
// parses is logged and the last good pool stays: clients are never let in by a broken file.
func (s *Server) watchClientCAs(ctx context.Context, log logr.Logger) {
	_, last, _ := readClientCAs(s.opts.ClientCAFile)
	t := time.NewTicker(s.opts.ClientCAReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pool, data, err := readClientCAs(s.opts.ClientCAFile)
		if err != nil {
			log.Error(err, "client CA file not reloaded; the last good one stays in force")
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		s.clients.Store(pool)
		last = data
		log.Info("client CA file reloaded", "clientCAFile", s.opts.ClientCAFile)
	}
}

func readClientCAs(path string) (*x509.CertPool, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, nil, fmt.Errorf("client CA file %s holds no PEM certificate", path)
	}
	return pool, data, nil
}

// logWriter turns the http.Server's error log into log lines.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("webhook server", "error", string(bytes.TrimSpace(p)))
	return len(p), nil
}
