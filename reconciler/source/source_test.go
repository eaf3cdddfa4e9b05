package source_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// readFile returns the content of name inside a revision directory.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatalf("write secret: %v", err)
	}
	return p
}

// transports runs a test against the loopback HTTP server and file://.
func transports(t *testing.T, fn func(t *testing.T, repo *gitserver.Repo, url string)) {
	t.Run("http", func(t *testing.T) {
		srv := gitserver.New(t)
		repo := srv.CreateRepo(t, "config.git")
		fn(t, repo, srv.RepoURL("config.git"))
	})
	t.Run("file", func(t *testing.T) {
		repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "config.git"))
		fn(t, repo, repo.FileURL())
	})
	t.Run("path", func(t *testing.T) {
		repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "config.git"))
		fn(t, repo, repo.Path)
	})
}

func TestFetchFollowsBranch(t *testing.T) {
	transports(t, func(t *testing.T, repo *gitserver.Repo, url string) {
		first := repo.Commit(t, "main", gitserver.Change{
			Files: map[string]string{
				"apps/payment-gateway/deploy.yaml": "replicas: 2\n",
				"README.md":                        "config\n",
			},
			Message: "Add payment-gateway\n\nLonger body.",
		})
		f := source.NewGitFetcher()
		spec := source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}

		rev1, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatalf("first fetch: %v", err)
		}
		if rev1.Commit != first {
			t.Errorf("Commit = %s, want %s", rev1.Commit, first)
		}
		if rev1.Subject != "Add payment-gateway" {
			t.Errorf("Subject = %q, want %q", rev1.Subject, "Add payment-gateway")
		}
		if rev1.Author != "Driftless Test <test@driftless.dev>" {
			t.Errorf("Author = %q", rev1.Author)
		}
		if rev1.Time.IsZero() {
			t.Error("Time is zero")
		}
		if got := readFile(t, rev1.Dir, "apps/payment-gateway/deploy.yaml"); got != "replicas: 2\n" {
			t.Errorf("deploy.yaml = %q", got)
		}
		if _, err := os.Stat(filepath.Join(rev1.Dir, ".git")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("revision dir has .git (stat error %v), want only the commit's files", err)
		}

		// Fetching again without a change returns the same directory.
		again, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatalf("fetch without change: %v", err)
		}
		if again != rev1 {
			t.Errorf("fetch without change = %+v, want %+v", again, rev1)
		}

		second := repo.Commit(t, "main", gitserver.Change{
			Files:  map[string]string{"apps/payment-gateway/deploy.yaml": "replicas: 3\n"},
			Delete: []string{"README.md"},
		})
		rev2, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatalf("fetch of new commit: %v", err)
		}
		if rev2.Commit != second {
			t.Fatalf("Commit = %s, want %s", rev2.Commit, second)
		}
		if rev2.Dir == rev1.Dir {
			t.Fatalf("new commit checked out into the old directory %s", rev1.Dir)
		}
		if got := readFile(t, rev2.Dir, "apps/payment-gateway/deploy.yaml"); got != "replicas: 3\n" {
			t.Errorf("deploy.yaml = %q, want replicas: 3", got)
		}
		if _, err := os.Stat(filepath.Join(rev2.Dir, "README.md")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("deleted README.md still present (stat error %v)", err)
		}
		// The previous revision is still whole for a caller still using it.
		if got := readFile(t, rev1.Dir, "apps/payment-gateway/deploy.yaml"); got != "replicas: 2\n" {
			t.Errorf("previous revision changed: deploy.yaml = %q", got)
		}
		if got := readFile(t, rev1.Dir, "README.md"); got != "config\n" {
			t.Errorf("previous revision changed: README.md = %q", got)
		}
	})
}

func TestFetchRefs(t *testing.T) {
	transports(t, func(t *testing.T, repo *gitserver.Repo, url string) {
		v1 := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "1"}})
		repo.Tag(t, "v1", v1)
		v2 := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "2"}})
		repo.AnnotatedTag(t, "v2", v2, "release 2")
		tip := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "3"}})
		feature := repo.Commit(t, "feature", gitserver.Change{Files: map[string]string{"v": "feature"}})

		tests := []struct {
			name       string
			ref        source.Ref
			wantCommit string
			wantV      string
		}{
			{name: "branch", ref: source.Ref{Branch: "main"}, wantCommit: tip, wantV: "3"},
			{name: "other branch", ref: source.Ref{Branch: "feature"}, wantCommit: feature, wantV: "feature"},
			{name: "lightweight tag", ref: source.Ref{Tag: "v1"}, wantCommit: v1, wantV: "1"},
			{name: "annotated tag", ref: source.Ref{Tag: "v2"}, wantCommit: v2, wantV: "2"},
			{name: "commit below tip", ref: source.Ref{Commit: v1}, wantCommit: v1, wantV: "1"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rev, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{URL: url, Ref: tc.ref, CacheDir: t.TempDir()})
				if err != nil {
					t.Fatalf("fetch %s: %v", tc.ref, err)
				}
				if rev.Commit != tc.wantCommit {
					t.Errorf("Commit = %s, want %s", rev.Commit, tc.wantCommit)
				}
				if got := readFile(t, rev.Dir, "v"); got != tc.wantV {
					t.Errorf("v = %q, want %q", got, tc.wantV)
				}
			})
		}

		missing := []struct {
			name string
			ref  source.Ref
		}{
			{name: "missing branch", ref: source.Ref{Branch: "nope"}},
			{name: "missing tag", ref: source.Ref{Tag: "v9"}},
			{name: "missing commit", ref: source.Ref{Commit: strings.Repeat("ab", 20)}},
		}
		for _, tc := range missing {
			t.Run(tc.name, func(t *testing.T) {
				_, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{URL: url, Ref: tc.ref, CacheDir: t.TempDir()})
				if err == nil {
					t.Fatalf("fetch %s succeeded, want error", tc.ref)
				}
				if !strings.Contains(err.Error(), tc.ref.String()) {
					t.Errorf("error %q does not name %q", err, tc.ref)
				}
			})
		}
	})
}

func TestFetchCommitWithoutSHAWant(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	old := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "old"}})
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "new"}})
	repo.SetConfig(t, "uploadpack.allowReachableSHA1InWant", "false")

	rev, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{
		URL: srv.RepoURL("config.git"), Ref: source.Ref{Commit: old}, CacheDir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("fetch pinned commit: %v", err)
	}
	if rev.Commit != old || readFile(t, rev.Dir, "v") != "old" {
		t.Fatalf("got commit %s with v=%q, want %s with v=old", rev.Commit, readFile(t, rev.Dir, "v"), old)
	}
}

func TestFetchAuth(t *testing.T) {
	const password = "correct-horse-battery-staple"
	const token = "tok-0123456789abcdef"
	srv := gitserver.New(t, gitserver.WithBasicAuth("robot", password), gitserver.WithBearerToken(token))
	repo := srv.CreateRepo(t, "config.git")
	sha := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a: 1\n"}})
	url := srv.RepoURL("config.git")

	tests := []struct {
		name    string
		url     string
		auth    source.Auth
		wantErr bool
		secrets []string
	}{
		{name: "basic auth", url: url, auth: source.Auth{Username: "robot", PasswordFile: writeSecret(t, password)}},
		{name: "bearer token", url: url, auth: source.Auth{BearerTokenFile: writeSecret(t, token)}},
		{name: "credentials in url", url: strings.Replace(url, "http://", "http://robot:"+password+"@", 1)},
		{name: "no credentials", url: url, wantErr: true},
		{name: "wrong password", url: url, auth: source.Auth{Username: "robot", PasswordFile: writeSecret(t, "hunter2-wrong")}, wantErr: true, secrets: []string{"hunter2-wrong"}},
		{name: "wrong token", url: url, auth: source.Auth{BearerTokenFile: writeSecret(t, "tok-wrong-42")}, wantErr: true, secrets: []string{"tok-wrong-42"}},
		{name: "wrong password in url", url: strings.Replace(url, "http://", "http://robot:pa55-in-url@", 1), wantErr: true, secrets: []string{"pa55-in-url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{
				URL: tc.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Auth: tc.auth,
			})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				if rev.Commit != sha {
					t.Fatalf("Commit = %s, want %s", rev.Commit, sha)
				}
				return
			}
			if err == nil {
				t.Fatal("fetch succeeded, want authentication error")
			}
			msg := err.Error()
			if !strings.Contains(msg, "authentication required") {
				t.Errorf("error %q does not say authentication failed", msg)
			}
			if !strings.Contains(msg, url) {
				t.Errorf("error %q does not name the redacted URL %s", msg, url)
			}
			for _, s := range append(tc.secrets, password, token) {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains the secret %q", msg, s)
				}
			}
		})
	}
}

func TestFetchServerDownKeepsLastRevision(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	first := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"deploy.yaml": "replicas: 2\n"}})
	f := source.NewGitFetcher()
	spec := source.Spec{URL: srv.RepoURL("config.git"), Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}
	rev1, err := f.Fetch(t.Context(), spec)
	if err != nil {
		t.Fatalf("first fetch: %v", err)
	}

	srv.Stop()
	second := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"deploy.yaml": "replicas: 3\n"}})
	if _, err := f.Fetch(t.Context(), spec); err == nil {
		t.Fatal("fetch while the server is down succeeded, want error")
	}
	if rev1.Commit != first || readFile(t, rev1.Dir, "deploy.yaml") != "replicas: 2\n" {
		t.Fatalf("last good revision damaged by a failed fetch")
	}
	current, err := filepath.EvalSymlinks(filepath.Join(spec.CacheDir, "current"))
	if err != nil || current != rev1.Dir {
		t.Fatalf("current = %s (%v), want %s", current, err, rev1.Dir)
	}

	srv.Start(t)
	rev2, err := f.Fetch(t.Context(), spec)
	if err != nil {
		t.Fatalf("fetch after the server is back: %v", err)
	}
	if rev2.Commit != second || readFile(t, rev2.Dir, "deploy.yaml") != "replicas: 3\n" {
		t.Fatalf("after recovery got %s, want %s with replicas: 3", rev2.Commit, second)
	}
}

func TestFetchCanceled(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a": "a"}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := source.NewGitFetcher().Fetch(ctx, source.Spec{URL: srv.RepoURL("config.git"), Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("fetch with canceled context = %v, want context.Canceled", err)
	}
}

func TestFetchVerify(t *testing.T) {
	trusted := gitserver.NewKey(t, "Release Bot", "release@driftless.dev")
	other := gitserver.NewKey(t, "Mallory", "mallory@example.com")
	keyring := trusted.WritePublic(t)
	otherKeyring := other.WritePublic(t)

	transports(t, func(t *testing.T, repo *gitserver.Repo, url string) {
		f := source.NewGitFetcher()
		cache := t.TempDir()
		spec := func(files ...string) source.Spec {
			return source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: cache, Verify: &source.Verification{KeyringFiles: files}}
		}
		good := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "signed"}, SignKey: trusted.Entity})
		rev, err := f.Fetch(t.Context(), spec(keyring))
		if err != nil {
			t.Fatalf("fetch commit signed by the pinned key: %v", err)
		}
		if rev.Commit != good {
			t.Fatalf("Commit = %s, want %s", rev.Commit, good)
		}
		if want := trusted.Entity.PrimaryKey.KeyIdString(); rev.SignedBy != want {
			t.Errorf("SignedBy = %q, want the pinned key %s", rev.SignedBy, want)
		}
		if _, err := f.Fetch(t.Context(), spec(otherKeyring, keyring)); err != nil {
			t.Fatalf("fetch with the pinned key in the second keyring: %v", err)
		}

		tests := []struct {
			name    string
			change  gitserver.Change
			keyring string
			wantErr error
		}{
			{name: "unsigned", change: gitserver.Change{Files: map[string]string{"v": "unsigned"}}, keyring: keyring, wantErr: source.ErrUnsigned},
			{name: "signed by another key", change: gitserver.Change{Files: map[string]string{"v": "mallory"}, SignKey: other.Entity}, keyring: keyring, wantErr: source.ErrUntrusted},
			{name: "signed, keyring of another key", change: gitserver.Change{Files: map[string]string{"v": "signed again"}, SignKey: trusted.Entity}, keyring: otherKeyring, wantErr: source.ErrUntrusted},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				sha := repo.Commit(t, "main", tc.change)
				_, err := f.Fetch(t.Context(), spec(tc.keyring))
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, source.ErrVerification) {
					t.Fatalf("fetch = %v, want %v, an ErrVerification", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), sha) {
					t.Errorf("error %q does not name commit %s", err, sha)
				}
				// The refused commit is never checked out; the last good
				// revision stays current and intact.
				if _, err := os.Stat(filepath.Join(cache, "checkouts", sha)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("refused commit was checked out (stat error %v)", err)
				}
				if got := readFile(t, rev.Dir, "v"); got != "signed" {
					t.Errorf("last good revision changed: v = %q", got)
				}
				current, err := filepath.EvalSymlinks(filepath.Join(cache, "current"))
				if err != nil || current != rev.Dir {
					t.Errorf("current = %s (%v), want %s", current, err, rev.Dir)
				}
			})
		}

		t.Run("unreadable keyring", func(t *testing.T) {
			bad := writeSecret(t, "not a keyring")
			_, err := f.Fetch(t.Context(), spec(bad))
			if err == nil || errors.Is(err, source.ErrVerification) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("fetch with a broken keyring = %v, want an error naming %s", err, bad)
			}
		})
	})
}

// TestGitSource fetches through the Source seam: the artifact carries the commit, its
// files and its metadata, and the location names no credentials.
func TestGitSource(t *testing.T) {
	srv := gitserver.New(t, gitserver.WithBasicAuth("driftless", "s3cret-pass"))
	repo := srv.CreateRepo(t, "config.git")
	sha := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a": "one"}, Message: "add a\n\nbody"})
	u, err := url.Parse(srv.RepoURL("config.git"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("driftless")
	fetched := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := source.Spec{URL: u.String(), Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(),
		Auth: source.Auth{Username: "driftless", PasswordFile: writeSecret(t, "s3cret-pass")}}
	var src source.Source = source.NewGit(spec, source.NewGitFetcher(), func() time.Time { return fetched })

	art, err := src.Fetch(t.Context())
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if art.Revision != sha || readFile(t, art.Dir, "a") != "one" {
		t.Errorf("artifact = %s in %s, want %s holding a", art.Revision, art.Dir, sha)
	}
	md := art.Metadata
	if md.Subject != "add a" || md.Author == "" || md.Created.IsZero() || !md.Fetched.Equal(fetched) || md.SignedBy != "" {
		t.Errorf("metadata = %+v, want subject %q, an author, a commit time, fetched at %s and no signer", md, "add a", fetched)
	}
	loc := src.Location()
	if strings.Contains(loc.URL, "driftless@") || !strings.HasSuffix(loc.URL, "/config.git") || loc.Ref != "branch main" {
		t.Errorf("location = %+v, want the URL without credentials and branch main", loc)
	}
}

func TestFetchIsShallow(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	old := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "1"}})
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "2"}})
	cache := t.TempDir()
	if _, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{URL: srv.RepoURL("config.git"), Ref: source.Ref{Branch: "main"}, CacheDir: cache}); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	clone, err := git.PlainOpen(filepath.Join(cache, "repo.git"))
	if err != nil {
		t.Fatalf("open cache clone: %v", err)
	}
	if _, err := clone.CommitObject(plumbing.NewHash(old)); err == nil {
		t.Fatalf("cache clone holds the parent commit %s; want a depth-1 fetch", old)
	}
}

func TestFetchSSH(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	first := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "1"}})
	keyFile, pub := gitserver.NewSSHKey(t)
	otherKey, _ := gitserver.NewSSHKey(t)
	sshSrv := gitserver.NewSSH(t, srv.Root(), pub)
	knownHosts := sshSrv.WriteKnownHosts(t)
	_, impostor := gitserver.NewSSHKey(t)
	wrongHosts := gitserver.WriteKnownHosts(t, sshSrv.Addr(), impostor)
	url := sshSrv.RepoURL("config.git")

	tests := []struct {
		name    string
		auth    source.Auth
		wantErr string
	}{
		{name: "authorized key", auth: source.Auth{SSHPrivateKeyFile: keyFile, SSHKnownHostsFile: knownHosts}},
		{name: "unauthorized key", auth: source.Auth{SSHPrivateKeyFile: otherKey, SSHKnownHostsFile: knownHosts}, wantErr: "unable to authenticate"},
		{name: "host key not pinned", auth: source.Auth{SSHPrivateKeyFile: keyFile, SSHKnownHostsFile: wrongHosts}, wantErr: "key mismatch"},
		{name: "no known_hosts", auth: source.Auth{SSHPrivateKeyFile: keyFile}, wantErr: "auth.sshKnownHostsFile"},
		{name: "no key", auth: source.Auth{SSHKnownHostsFile: knownHosts}, wantErr: "auth.sshPrivateKeyFile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, err := source.NewGitFetcher().Fetch(t.Context(), source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Auth: tc.auth})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("fetch = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("fetch over SSH: %v", err)
			}
			if rev.Commit != first {
				t.Fatalf("Commit = %s, want %s", rev.Commit, first)
			}
		})
	}

	t.Run("new commit", func(t *testing.T) {
		f := source.NewGitFetcher()
		spec := source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Auth: source.Auth{SSHPrivateKeyFile: keyFile, SSHKnownHostsFile: knownHosts}}
		if _, err := f.Fetch(t.Context(), spec); err != nil {
			t.Fatalf("first fetch: %v", err)
		}
		second := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"v": "2"}})
		rev, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatalf("fetch of new commit: %v", err)
		}
		if rev.Commit != second || readFile(t, rev.Dir, "v") != "2" {
			t.Fatalf("got %s, want %s with v=2", rev.Commit, second)
		}
	})
}

// TestCheckoutReusesUnchangedFiles shows a new commit's checkout links the files it did not
// change to the previous checkout instead of writing them again, and writes the ones it did.
func TestCheckoutReusesUnchangedFiles(t *testing.T) {
	transports(t, func(t *testing.T, repo *gitserver.Repo, url string) {
		repo.Commit(t, "main", gitserver.Change{Files: map[string]string{
			"base/a.yaml": "a: 1\n", "base/b.yaml": "b: 1\n", "overlay/c.yaml": "c: 1\n",
		}})
		f := source.NewGitFetcher()
		spec := source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}
		rev1, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"base/b.yaml": "b: 2\n"}})
		rev2, err := f.Fetch(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		same := func(name string) bool {
			a, err := os.Stat(filepath.Join(rev1.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.Stat(filepath.Join(rev2.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			return os.SameFile(a, b)
		}
		for _, name := range []string{"base/a.yaml", "overlay/c.yaml"} {
			if !same(name) {
				t.Errorf("%s is unchanged but was written again instead of linked", name)
			}
		}
		if same("base/b.yaml") {
			t.Error("base/b.yaml changed but shares the previous checkout's file")
		}
		if got := readFile(t, rev2.Dir, "base/b.yaml"); got != "b: 2\n" {
			t.Errorf("base/b.yaml = %q, want b: 2", got)
		}
		if got := readFile(t, rev1.Dir, "base/b.yaml"); got != "b: 1\n" {
			t.Errorf("previous checkout changed: base/b.yaml = %q", got)
		}
	})
}

func TestFetchLimits(t *testing.T) {
	random := make([]byte, 3<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	manyFiles := map[string]string{}
	for i := range 11 {
		manyFiles[fmt.Sprintf("apps/f%02d.yaml", i)] = "k: v\n"
	}
	tests := []struct {
		name   string
		files  map[string]string
		limits source.Limits
		want   []string
	}{
		{"file size", map[string]string{"base/huge.bin": strings.Repeat("\x00", 5<<20)}, source.Limits{MaxFileSize: 1 << 20},
			[]string{"5 MiB, over the source's limits.maxFileSize of 1 MiB"}},
		{"files", manyFiles, source.Limits{MaxFiles: 10}, []string{"more than 10 files, over the source's limits.maxFiles of 10"}},
		{"checkout size", map[string]string{"a.bin": strings.Repeat("\x00", 1<<20), "b.bin": strings.Repeat("\x00", 1<<20), "c.bin": strings.Repeat("\x00", 1<<20)},
			source.Limits{MaxRepositorySize: 2 << 20}, []string{"files add up to more than 2 MiB, over the source's limits.maxRepositorySize of 2 MiB"}},
		{"repository size", map[string]string{"random.bin": string(random)}, source.Limits{MaxRepositorySize: 2 << 20},
			[]string{"over the source's limits.maxRepositorySize of 2 MiB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			transports(t, func(t *testing.T, repo *gitserver.Repo, url string) {
				good := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"apps/cm.yaml": "k: v\n"}})
				f := source.NewGitFetcher()
				spec := source.Spec{URL: url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Limits: tc.limits}
				rev, err := f.Fetch(t.Context(), spec)
				if err != nil || rev.Commit != good {
					t.Fatalf("fetch of the good commit = %s, %v; want %s", rev.Commit, err, good)
				}
				repo.Commit(t, "main", gitserver.Change{Files: tc.files})
				_, err = f.Fetch(t.Context(), spec)
				if !errors.Is(err, source.ErrLimitExceeded) {
					t.Fatalf("fetch over the limit: %v, want ErrLimitExceeded", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if got := readFile(t, rev.Dir, "apps/cm.yaml"); got != "k: v\n" {
					t.Errorf("the last good revision's files changed: %q", got)
				}
				// The commit that fixes it fetches.
				fixed := repo.Commit(t, "main", gitserver.Change{Delete: slices.Collect(maps.Keys(tc.files))})
				if rev, err := f.Fetch(t.Context(), spec); err != nil || rev.Commit != fixed {
					t.Errorf("fetch of the fixed commit = %s, %v; want %s", rev.Commit, err, fixed)
				}
			})
		})
	}
}
