package source_test

import (
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/reconciler/source"
)

func TestSpecValidate(t *testing.T) {
	sha := strings.Repeat("a1", 20)
	valid := func() source.Spec {
		return source.Spec{URL: "https://git.example.com/config.git", Ref: source.Ref{Branch: "main"}, CacheDir: "/var/cache/driftless/config"}
	}
	tests := []struct {
		name    string
		mutate  func(*source.Spec)
		wantErr string
	}{
		{name: "valid branch", mutate: func(*source.Spec) {}},
		{name: "valid commit", mutate: func(s *source.Spec) { s.Ref = source.Ref{Commit: sha} }},
		{name: "no url", mutate: func(s *source.Spec) { s.URL = "" }, wantErr: "url: must be set"},
		{name: "no ref", mutate: func(s *source.Spec) { s.Ref = source.Ref{} }, wantErr: "ref: exactly one"},
		{name: "two refs", mutate: func(s *source.Spec) { s.Ref.Tag = "v1" }, wantErr: "ref: exactly one"},
		{name: "short commit", mutate: func(s *source.Spec) { s.Ref = source.Ref{Commit: "a1b2c3"} }, wantErr: `ref.commit: "a1b2c3"`},
		{name: "uppercase commit", mutate: func(s *source.Spec) { s.Ref = source.Ref{Commit: strings.ToUpper(sha)} }, wantErr: "ref.commit"},
		{name: "full ref name", mutate: func(s *source.Spec) { s.Ref = source.Ref{Branch: "refs/heads/main"} }, wantErr: "ref.branch"},
		{name: "bad tag", mutate: func(s *source.Spec) { s.Ref = source.Ref{Tag: "v1..v2"} }, wantErr: "ref.tag"},
		{name: "no cache dir", mutate: func(s *source.Spec) { s.CacheDir = "" }, wantErr: "cacheDir: must be set"},
		{name: "relative cache dir", mutate: func(s *source.Spec) { s.CacheDir = "cache" }, wantErr: "cacheDir"},
		{name: "password and token", mutate: func(s *source.Spec) { s.Auth = source.Auth{PasswordFile: "/p", BearerTokenFile: "/t"} }, wantErr: "mutually exclusive"},
		{name: "username without password", mutate: func(s *source.Spec) { s.Auth = source.Auth{Username: "robot"} }, wantErr: "auth.passwordFile"},
		{name: "ssh key without known_hosts", mutate: func(s *source.Spec) { s.Auth = source.Auth{SSHPrivateKeyFile: "/k"} }, wantErr: "auth.sshKnownHostsFile"},
		{name: "verify without keyring", mutate: func(s *source.Spec) { s.Verify = &source.Verification{} }, wantErr: "verify.keyringFiles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			err := s.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{in: "https://git.example.com/org/config.git", want: "https://git.example.com/org/config.git"},
		{in: "https://robot:s3cret@git.example.com/org/config.git", want: "https://git.example.com/org/config.git"},
		{in: "https://ghp_token123@git.example.com/config.git", want: "https://git.example.com/config.git"},
		{in: "http://u:p@127.0.0.1:8080/x.git", want: "http://127.0.0.1:8080/x.git"},
		{in: "ssh://git@git.example.com/org/config.git", want: "ssh://git@git.example.com/org/config.git"},
		{in: "ssh://git:pw@git.example.com/config.git", want: "ssh://git@git.example.com/config.git"},
		{in: "git@git.example.com:org/config.git", want: "git@git.example.com:org/config.git"},
		{in: "/srv/git/config.git", want: "/srv/git/config.git"},
		{in: "file:///srv/git/config.git", want: "file:///srv/git/config.git"},
		{in: "https://u:p%zz@host/x.git", want: "https://host/x.git"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := source.RedactURL(tc.in); got != tc.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
