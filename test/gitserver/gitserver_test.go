package gitserver_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/driftless-dev/driftless/test/gitserver"
)

func TestCommitAndServe(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	first := repo.Commit(t, "main", gitserver.Change{
		Files:   map[string]string{"base/deploy.yaml": "a: 1\n", "README.md": "hi\n", "base/sub/x.yaml": "x\n"},
		Message: "first",
	})
	second := repo.Commit(t, "main", gitserver.Change{
		Files:   map[string]string{"base/deploy.yaml": "a: 2\n"},
		Delete:  []string{"README.md"},
		Message: "second",
	})
	if got := repo.Head(t, "main"); got != second {
		t.Fatalf("Head = %s, want %s", got, second)
	}
	// The CLI agrees the objects are well formed.
	repo.Git(t, nil, "fsck", "--strict")
	if got := repo.Git(t, nil, "rev-parse", "main~1"); strings.TrimSpace(got) != first {
		t.Fatalf("main~1 = %s, want %s", got, first)
	}

	r, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.RepoURL("config.git")})
	if err != nil {
		t.Fatalf("clone over HTTP: %v", err)
	}
	head, err := r.Head()
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	if head.Hash().String() != second {
		t.Fatalf("cloned HEAD = %s, want %s", head.Hash(), second)
	}
	c, err := r.CommitObject(head.Hash())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	tests := []struct {
		path    string
		content string
		missing bool
	}{
		{path: "base/deploy.yaml", content: "a: 2\n"},
		{path: "base/sub/x.yaml", content: "x\n"},
		{path: "README.md", missing: true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			f, err := c.File(tc.path)
			if tc.missing {
				if err == nil {
					t.Fatalf("file %s present, want deleted", tc.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("file %s: %v", tc.path, err)
			}
			got, err := f.Contents()
			if err != nil {
				t.Fatalf("contents of %s: %v", tc.path, err)
			}
			if got != tc.content {
				t.Fatalf("%s = %q, want %q", tc.path, got, tc.content)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	srv := gitserver.New(t, gitserver.WithBasicAuth("robot", "s3cret"), gitserver.WithBearerToken("t0ken"))
	repo := srv.CreateRepo(t, "config.git")
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a: 1\n"}})

	tests := []struct {
		name    string
		auth    transport.AuthMethod
		wantErr error
	}{
		{name: "right password", auth: &githttp.BasicAuth{Username: "robot", Password: "s3cret"}},
		{name: "wrong password", auth: &githttp.BasicAuth{Username: "robot", Password: "nope"}, wantErr: transport.ErrAuthenticationRequired},
		{name: "no credentials", wantErr: transport.ErrAuthenticationRequired},
		{name: "right token", auth: &githttp.TokenAuth{Token: "t0ken"}},
		{name: "wrong token", auth: &githttp.TokenAuth{Token: "s3cret"}, wantErr: transport.ErrAuthenticationRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.RepoURL("config.git"), Auth: tc.auth})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("clone error = %v, want %v", err, tc.wantErr)
			}
		})
	}

	// The 401 comes from the server itself, not from Git.
	resp, err := http.Get(srv.RepoURL("config.git") + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatalf("get info/refs: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}
}

func TestStopStart(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a: 1\n"}})
	list := func() error {
		_, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.RepoURL("config.git")})
		return err
	}
	if err := list(); err != nil {
		t.Fatalf("clone while up: %v", err)
	}
	url := srv.URL()
	srv.Stop()
	if err := list(); err == nil {
		t.Fatal("clone while stopped succeeded, want error")
	}
	srv.Start(t)
	if srv.URL() != url {
		t.Fatalf("URL changed across restart: %s, then %s", url, srv.URL())
	}
	if err := list(); err != nil {
		t.Fatalf("clone after restart: %v", err)
	}
}

func TestSignedCommit(t *testing.T) {
	key := gitserver.NewKey(t, "Release Bot", "release@driftless.dev")
	other := gitserver.NewKey(t, "Mallory", "mallory@example.com")
	repo := gitserver.InitBare(t, t.TempDir()+"/signed.git")
	sha := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a\n"}, SignKey: key.Entity})

	r, err := git.PlainOpen(repo.Path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	c, err := r.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if c.PGPSignature == "" {
		t.Fatal("commit has no signature")
	}
	if _, err := c.Verify(key.ArmoredPublic); err != nil {
		t.Fatalf("verify with signer's key: %v", err)
	}
	if _, err := c.Verify(other.ArmoredPublic); err == nil {
		t.Fatal("verify with another key succeeded, want error")
	}
}

func TestTags(t *testing.T) {
	repo := gitserver.InitBare(t, t.TempDir()+"/tags.git")
	sha := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a\n"}})
	repo.Tag(t, "v1", sha)
	repo.AnnotatedTag(t, "v2", sha, "release v2")
	tests := []struct{ rev string }{{rev: "v1^{commit}"}, {rev: "v2^{commit}"}}
	for _, tc := range tests {
		t.Run(tc.rev, func(t *testing.T) {
			if got := strings.TrimSpace(repo.Git(t, nil, "rev-parse", tc.rev)); got != sha {
				t.Fatalf("%s = %s, want %s", tc.rev, got, sha)
			}
		})
	}
}

func TestSSH(t *testing.T) {
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "config.git")
	sha := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{"a.yaml": "a: 1\n"}})
	keyFile, pub := gitserver.NewSSHKey(t)
	otherKey, _ := gitserver.NewSSHKey(t)
	sshSrv := gitserver.NewSSH(t, srv.Root(), pub)
	knownHosts := sshSrv.WriteKnownHosts(t)

	tests := []struct {
		name    string
		key     string
		wantErr bool
	}{
		{name: "authorized key", key: keyFile},
		{name: "unknown key", key: otherKey, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := gitssh.NewPublicKeysFromFile("git", tc.key, "")
			if err != nil {
				t.Fatalf("load key: %v", err)
			}
			auth.HostKeyCallback, err = gitssh.NewKnownHostsCallback(knownHosts)
			if err != nil {
				t.Fatalf("known_hosts: %v", err)
			}
			r, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: sshSrv.RepoURL("config.git"), Auth: auth})
			if tc.wantErr {
				if err == nil {
					t.Fatal("clone with an unknown key succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("clone over SSH: %v", err)
			}
			head, err := r.Head()
			if err != nil || head.Hash().String() != sha {
				t.Fatalf("HEAD = %v (%v), want %s", head, err, sha)
			}
		})
	}
}
