package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const testAddr = "127.0.0.1:4321"

// login exchanges the server's token and returns the session cookie.
func login(t *testing.T, s *Server) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, request(t, http.MethodGet, s.URL()))
	res := w.Result()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("token exchange: %d to %q, want 303 to /", res.StatusCode, res.Header.Get("Location"))
	}
	for _, c := range res.Cookies() {
		if c.Name == CookieName {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
			}
			return c
		}
	}
	t.Fatalf("token exchange set no %s cookie: %v", CookieName, res.Header["Set-Cookie"])
	return nil
}

func request(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, url, nil)
	r.Host = testAddr
	return r
}

// TestGuard: only the browser that used the one-time link gets in, with this server's Host,
// from this origin, and only to read.
func TestGuard(t *testing.T) {
	s, err := NewServer(testAddr, nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	cookie := login(t, s)
	base := "http://" + testAddr
	cases := []struct {
		name   string
		method string
		path   string
		host   string
		header map[string]string
		cookie *http.Cookie
		want   int
		// body is a part of the answer that says the guard, not the router, answered.
		body string
	}{
		{name: "logged in", method: http.MethodGet, path: "/", cookie: cookie, want: http.StatusOK},
		{name: "logged in, HEAD", method: http.MethodHead, path: "/static/app.js", cookie: cookie, want: http.StatusOK},
		{name: "same-origin fetch", method: http.MethodGet, path: "/static/app.css", cookie: cookie, header: map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, want: http.StatusOK},
		{name: "no cookie", method: http.MethodGet, path: "/", want: http.StatusUnauthorized},
		{name: "no cookie, API", method: http.MethodGet, path: "/api/sources", want: http.StatusUnauthorized},
		{name: "forged cookie", method: http.MethodGet, path: "/", cookie: &http.Cookie{Name: CookieName, Value: "guess"}, want: http.StatusUnauthorized},
		{name: "DNS rebinding: another Host", method: http.MethodGet, path: "/", host: "attacker.example:4321", cookie: cookie, want: http.StatusMisdirectedRequest},
		{name: "localhost is another Host", method: http.MethodGet, path: "/", host: "localhost:4321", cookie: cookie, want: http.StatusMisdirectedRequest},
		{name: "another origin", method: http.MethodGet, path: "/api/sources", cookie: cookie, header: map[string]string{"Origin": "http://attacker.example"}, want: http.StatusForbidden},
		{name: "another site", method: http.MethodGet, path: "/", cookie: cookie, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: http.StatusForbidden},
		{name: "POST", method: http.MethodPost, path: "/", cookie: cookie, want: http.StatusMethodNotAllowed, body: "read-only"},
		{name: "DELETE", method: http.MethodDelete, path: "/api/sources", cookie: cookie, want: http.StatusMethodNotAllowed, body: "read-only"},
		{name: "POST with the token", method: http.MethodPost, path: "/?token=guess", want: http.StatusMethodNotAllowed, body: "read-only"},
		{name: "the token again, without the cookie", method: http.MethodGet, path: strings.TrimPrefix(s.URL(), base), want: http.StatusForbidden},
		{name: "a wrong token", method: http.MethodGet, path: "/?token=guess", want: http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, c.method, base+c.path)
			if c.host != "" {
				r.Host = c.host
			}
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			if c.cookie != nil {
				r.AddCookie(c.cookie)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, w.Code, c.want, w.Body.String())
			}
			if !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("%s %s answered %q, want it to say %q", c.method, c.path, w.Body.String(), c.body)
			}
			if csp := w.Header().Get("Content-Security-Policy"); csp != contentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q, want %q", csp, contentSecurityPolicy)
			}
			if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing X-Frame-Options or X-Content-Type-Options: %v", w.Header())
			}
		})
	}
}

// TestNewServerRefusesOtherAddresses: the server is for 127.0.0.1 only.
func TestNewServerRefusesOtherAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:80", "[::]:80", "192.168.1.2:80", "localhost:80", "127.0.0.1:0", "127.0.0.1"} {
		if _, err := NewServer(addr, nil, "", 0); err == nil {
			t.Errorf("NewServer(%q) succeeded, want an error", addr)
		}
	}
}

// TestAssetsNeedNothingElse: the page carries no inline script, style or event handler (the
// CSP would block them) and names no other origin.
func TestAssetsNeedNothingElse(t *testing.T) {
	scripts := regexp.MustCompile(`<script[^>]*>([^<]*)</script>`)
	inline := []*regexp.Regexp{regexp.MustCompile(`\son[a-z]+\s*=`), regexp.MustCompile(`\sstyle\s*=`), regexp.MustCompile(`<style`), regexp.MustCompile(`javascript:`)}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		text := string(b)
		if strings.HasSuffix(path, ".html") {
			if strings.Count(text, "<script") != len(scripts.FindAllString(text, -1)) {
				t.Errorf("%s has a script element that is not a plain <script src=...></script>", path)
			}
			for _, m := range scripts.FindAllStringSubmatch(text, -1) {
				if !strings.Contains(m[0], " src=") || strings.TrimSpace(m[1]) != "" {
					t.Errorf("%s holds an inline script the CSP blocks: %q", path, m[0])
				}
			}
			for _, re := range inline {
				if m := re.FindString(text); m != "" {
					t.Errorf("%s holds inline code or style the CSP blocks: %q", path, m)
				}
			}
		}
		for _, m := range external.FindAllString(text, -1) {
			if m == "http://www.w3.org" { // the SVG namespace, never fetched
				continue
			}
			t.Errorf("%s names another origin: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(contentSecurityPolicy, "unsafe") || strings.Contains(contentSecurityPolicy, "http") {
		t.Errorf("the CSP allows inline code or another origin: %s", contentSecurityPolicy)
	}
}

// TestLedgerFilter: the ledger page's filter is checked before anything is read.
func TestLedgerFilter(t *testing.T) {
	if f, err := ParseLedgerFilter(" production ", "bob", "", ""); err != nil || f.Since.String() != "24h0m0s" || f.Namespace != "production" {
		t.Errorf("defaults: %+v, %v", f, err)
	}
	for _, bad := range [][4]string{{"", "", "forever", ""}, {"", "", "-1h", ""}, {"", "", "10000h", ""}, {"", "", "1h", "everything"}} {
		if _, err := ParseLedgerFilter(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("ParseLedgerFilter%q succeeded, want an error", bad)
		}
	}
}
