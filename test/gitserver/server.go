package gitserver

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a smart-HTTP Git server on loopback serving the bare
// repositories under [Server.Root].
type Server struct {
	root     string
	backend  string
	username string
	password string
	token    string

	mu   sync.Mutex
	addr string
	srv  *httptest.Server
	logf func(format string, args ...any)
	// fetches counts, per repository path, the fetches begun (upload-pack ref
	// advertisements); guarded by mu.
	fetches map[string]int
}

// Option configures a [Server] made by [New].
type Option func(*Server)

// WithBasicAuth makes the server demand HTTP basic authentication with the
// given username and password; any other credentials get 401 Unauthorized.
func WithBasicAuth(username, password string) Option {
	return func(s *Server) {
		s.username = username
		s.password = password
	}
}

// WithBearerToken makes the server demand "Authorization: Bearer token";
// any other credentials get 401 Unauthorized. It can be combined with
// [WithBasicAuth], in which case either is accepted.
func WithBearerToken(token string) Option {
	return func(s *Server) { s.token = token }
}

// New starts a server on a loopback address serving the bare repositories
// in a fresh temporary directory. The server is closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		root:    t.TempDir(),
		backend: HTTPBackend(t),
		logf:    t.Logf,
	}
	for _, o := range opts {
		o(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Close)
	return s
}

// HTTPBackend returns the path of the git-http-backend program, found with
// `git --exec-path`, and fails the test if Git is not installed.
func HTTPBackend(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("find git exec path (is git installed?): %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("find git-http-backend: %v", err)
	}
	return p
}

// Root returns the directory holding the served bare repositories.
func (s *Server) Root() string { return s.root }

// URL returns the server's base URL, such as http://127.0.0.1:40123. It
// stays the same across [Server.Stop] and [Server.Start].
func (s *Server) URL() string { return "http://" + s.addr }

// RepoURL returns the clone URL of the repository called name.
func (s *Server) RepoURL(name string) string { return s.URL() + "/" + name }

// CreateRepo creates an empty bare repository called name (for example
// "config.git") under [Server.Root] and returns it.
func (s *Server) CreateRepo(t testing.TB, name string) *Repo {
	t.Helper()
	return InitBare(t, filepath.Join(s.root, name))
}

// Stop closes the listener and all connections, so clients get "connection
// refused" until [Server.Start] is called. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.srv = nil
	}
}

// Start listens again on the address the server had before [Server.Stop].
// Starting a running server does nothing.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	var l net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a little while to
	// release it.
	for range 50 {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(l)
}

// Close stops the server for good.
func (s *Server) Close() { s.Stop() }

// Fetches returns how many fetches of the repository name (as given to CreateRepo) have
// begun: each clone or fetch asks for the refs of git-upload-pack once.
func (s *Server) Fetches(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches["/"+name]
}

// countFetches counts the upload-pack ref advertisements next handles.
func (s *Server) countFetches(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if repo, ok := strings.CutSuffix(r.URL.Path, "/info/refs"); ok && r.URL.Query().Get("service") == "git-upload-pack" {
			s.mu.Lock()
			if s.fetches == nil {
				s.fetches = map[string]int{}
			}
			s.fetches[repo]++
			s.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serve(l net.Listener) {
	srv := httptest.NewUnstartedServer(s.countFetches(s.handler()))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

func (s *Server) handler() http.Handler {
	backend := &cgi.Handler{
		Path: s.backend,
		Dir:  s.root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
		},
		Stderr: logWriter{s.logf},
	}
	if s.username == "" && s.password == "" && s.token == "" {
		return backend
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	if s.token != "" {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
			subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1 {
			return true
		}
	}
	if s.username == "" && s.password == "" {
		return false
	}
	u, p, ok := r.BasicAuth()
	return ok &&
		subtle.ConstantTimeCompare([]byte(u), []byte(s.username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.password)) == 1
}

// logWriter sends git-http-backend's standard error to the test log.
type logWriter struct {
	logf func(format string, args ...any)
}

func (w logWriter) Write(p []byte) (int, error) {
	w.logf("git-http-backend: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
