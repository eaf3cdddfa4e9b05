package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

//go:embed assets
var assets embed.FS

// CookieName is the name of the session cookie the one-time token is exchanged for.
const CookieName = "driftless_ui"

// contentSecurityPolicy lets the page load only its own script, style and icon and fetch only
// its own origin; no inline script or style, no frames, no forms elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure Serve.
type Options struct {
	// Reader reads the cluster; required.
	Reader *Reader
	// Port is the port on 127.0.0.1 to listen on; 0 picks a free one.
	Port int
	// Namespace is the namespace the views show first (the -n flag); empty shows all.
	Namespace string
	// Out receives the URL to open; required.
	Out io.Writer
	// Open opens the URL in a browser; nil only prints it.
	Open func(ctx context.Context, url string) error
	// PollInterval is how often the page refreshes its data; 0 is 2s.
	PollInterval time.Duration
}

// Serve listens on 127.0.0.1, prints the URL with its one-time token to o.Out, opens it with
// o.Open, and serves the view until ctx ends.
func Serve(ctx context.Context, o Options) error {
	if o.Reader == nil || o.Out == nil {
		return errors.New("ui: Reader and Out are required")
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("port %d: want 0 to 65535", o.Port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d: %w", o.Port, err)
	}
	s, err := NewServer(ln.Addr().String(), o.Reader, o.Namespace, o.PollInterval)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	link := s.URL()
	fmt.Fprintf(o.Out, "driftless ui: serving on http://%s (read-only, as your kubeconfig's user)\n", s.addr)
	fmt.Fprintf(o.Out, "open this link once; it logs this browser in and then stops working:\n  %s\n", link)
	fmt.Fprintln(o.Out, "press Ctrl-C to stop")
	if o.Open != nil {
		if err := o.Open(ctx, link); err != nil {
			fmt.Fprintf(o.Out, "could not open a browser (%v); open the link above yourself\n", err)
		}
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", s.addr, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stop serving on %s: %w", s.addr, err)
	}
	return nil
}

// Server is the view's HTTP handler, for one address: it checks every request (Host, Origin,
// method, session) before it routes it.
type Server struct {
	addr    string
	origin  string
	reader  *Reader
	ns      string
	poll    time.Duration
	mux     *http.ServeMux
	static  http.Handler
	mu      sync.Mutex
	token   string
	used    bool
	session string
}

// NewServer returns the handler for a server listening on addr, which must be a 127.0.0.1
// address with its port, with a new one-time token.
func NewServer(addr string, reader *Reader, namespace string, poll time.Duration) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "" || port == "0" {
		return nil, fmt.Errorf("address %q: want 127.0.0.1:PORT", addr)
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	token, err := randomString()
	if err != nil {
		return nil, err
	}
	session, err := randomString()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	s := &Server{addr: addr, origin: "http://" + addr, reader: reader, ns: namespace, poll: poll,
		token: token, session: session, static: http.FileServerFS(sub)}
	s.routes()
	return s, nil
}

// URL returns the link with the one-time token.
func (s *Server) URL() string { return s.origin + "/?token=" + url.QueryEscape(s.token) }

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ServeHTTP checks the request and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")

	// DNS rebinding: a page of another site that resolves its name to 127.0.0.1 sends its
	// own name as Host.
	if r.Host != s.addr {
		deny(w, http.StatusMisdirectedRequest, "this server answers only to http://"+s.addr)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		deny(w, http.StatusMethodNotAllowed, "the view is read-only: GET and HEAD only")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.origin {
		deny(w, http.StatusForbidden, "requests from other origins are refused")
		return
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		deny(w, http.StatusForbidden, "requests from other sites are refused")
		return
	}
	if r.URL.Path == "/" && r.URL.Query().Has("token") {
		s.exchange(w, r)
		return
	}
	if !s.authenticated(r) {
		deny(w, http.StatusUnauthorized, "not logged in: open the link driftless ui printed (each run prints a new one, usable once)")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// exchange trades the one-time token for the session cookie and redirects to the page
// without the token, so that it stays in neither the address bar nor the history.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	got := r.URL.Query().Get("token")
	s.mu.Lock()
	ok := subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
	used := s.used
	if ok && !used {
		s.used = true
	}
	s.mu.Unlock()
	switch {
	case !ok:
		deny(w, http.StatusForbidden, "wrong token: open the link driftless ui printed")
		return
	case used && !s.authenticated(r):
		deny(w, http.StatusForbidden, "this link was used already: restart driftless ui for a new one")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.session, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authenticated reports whether r carries the session cookie.
func (s *Server) authenticated(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used && subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.session)) == 1
}

func deny(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "driftless ui: %s\n", msg)
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	index := func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/"
		s.static.ServeHTTP(w, r2)
	}
	s.mux.HandleFunc("GET /{$}", index)
	s.mux.Handle("GET /static/", http.StripPrefix("/static", s.static))
	s.mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/icon.svg"
		s.static.ServeHTTP(w, r2)
	})
	s.mux.HandleFunc("GET /api/info", func(w http.ResponseWriter, r *http.Request) {
		info := s.reader.Info(r.Context())
		info.Namespace = s.ns
		info.PollMillis = s.poll.Milliseconds()
		writeJSON(w, r, info)
	})
	s.mux.HandleFunc("GET /api/sources", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, s.reader.Sources(r.Context()))
	})
	s.mux.HandleFunc("GET /api/sources/{name}/objects", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, s.reader.Objects(r.Context(), r.PathValue("name"), r.URL.Query().Get("namespace")))
	})
	s.mux.HandleFunc("GET /api/break-glass", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, s.reader.BreakGlass(r.Context(), r.URL.Query().Get("namespace")))
	})
	s.mux.HandleFunc("GET /api/ledger", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := ParseLedgerFilter(q.Get("namespace"), q.Get("user"), q.Get("since"), q.Get("what"))
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, r, s.reader.Ledger(r.Context(), f))
	})
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		logr.FromContextOrDiscard(r.Context()).Error(err, "cannot encode a view", "path", r.URL.Path)
		http.Error(w, "cannot encode the view", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
