package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Fetcher fetches a Git repository and checks out the commit a ref resolves
// to. [Git] adapts it to [Source].
type Fetcher interface {
	// Fetch resolves spec.Ref, verifies the commit when spec.Verify is set,
	// and returns the commit with a directory holding its files.
	Fetch(ctx context.Context, spec Spec) (Revision, error)
}

// Spec says what to fetch and how.
type Spec struct {
	// URL is the repository: https://, http://, ssh://, scp-like
	// (git@host:org/repo.git), file:// or a plain local path.
	URL string
	// Ref selects the commit.
	Ref Ref
	// CacheDir is a directory owned by this source, where the clone and
	// the checked-out revisions live. Two sources must not share one.
	CacheDir string
	// Auth holds the credentials, read from files on every fetch.
	Auth Auth
	// Verify, when set, requires the commit to carry a valid OpenPGP
	// signature by one of the pinned keys.
	Verify *Verification
	// Limits bound what a fetch reads and writes. Zero leaves a bound off.
	Limits Limits
}

// Limits bound a fetch, so that a commit cannot exhaust memory or disk. A
// fetch over a limit fails with a [*LimitError] and changes nothing that a
// previous fetch returned.
type Limits struct {
	// MaxRepositorySize bounds the Git objects of the cache clone on disk
	// (a local repository is read in place and not counted), and separately
	// the total size of the files of one checkout.
	MaxRepositorySize int64
	// MaxFileSize bounds one file, read from the Git object header before
	// the content.
	MaxFileSize int64
	// MaxFiles bounds the files and symlinks of one commit.
	MaxFiles int64
}

// ErrLimitExceeded is returned, wrapped in a [*LimitError], when a fetch is over one of its
// [Limits]. It is the configuration's one error for every limit of a source.
var ErrLimitExceeded = v1alpha1.ErrLimitExceeded

// LimitError says which limit a fetch is over.
type LimitError = v1alpha1.LimitError

func formatBytes(n int64) string { return v1alpha1.FormatBytes(n) }

// Ref names the commit to check out. Exactly one field must be set.
type Ref struct {
	// Branch follows the tip of a branch, such as "main".
	Branch string
	// Tag pins a tag, lightweight or annotated, such as "v1.2.0".
	Tag string
	// Commit pins a full 40-character commit SHA.
	Commit string
}

// String describes the ref for messages, such as "branch main".
func (r Ref) String() string {
	switch {
	case r.Branch != "":
		return "branch " + r.Branch
	case r.Tag != "":
		return "tag " + r.Tag
	case r.Commit != "":
		return "commit " + r.Commit
	}
	return "no ref"
}

// Auth holds the locations of credentials. Secrets are never held in the
// Spec itself, and are re-read on every fetch so rotation needs no restart.
type Auth struct {
	// Username is the HTTPS basic-auth username; it needs PasswordFile.
	Username string
	// PasswordFile holds the HTTPS basic-auth password (or access token).
	PasswordFile string
	// BearerTokenFile holds a token sent as "Authorization: Bearer".
	BearerTokenFile string
	// SSHPrivateKeyFile holds an unencrypted PEM or OpenSSH private key.
	SSHPrivateKeyFile string
	// SSHKnownHostsFile pins the server's host keys; required for SSH.
	SSHKnownHostsFile string
	// CAFile holds extra PEM certificates to trust for HTTPS.
	CAFile string
}

// Verification pins the OpenPGP keys a commit must be signed with.
type Verification struct {
	// KeyringFiles are ASCII-armored public keyrings; a signature by a key
	// in any of them is trusted.
	KeyringFiles []string
}

// Revision is a fetched, checked-out commit.
type Revision struct {
	// Commit is the full commit SHA.
	Commit string
	// Author is the commit author as "Name <email>".
	Author string
	// Committer is the committer as "Name <email>".
	Committer string
	// Time is the commit (committer) time.
	Time time.Time
	// Subject is the first line of the commit message.
	Subject string
	// SignedBy is the key ID (16 hex digits) of the verified signature;
	// empty when the spec asks for no verification.
	SignedBy string
	// Dir holds the commit's files and nothing else (no .git). It is
	// never modified, and stays on disk at least until a fetch of a
	// second, different newer commit succeeds.
	Dir string
	// Entries names the content of the commit's paths (blob and tree hashes).
	Entries *Entries
}

// ErrUnsigned is returned, wrapped, when verification is required and the
// commit carries no signature. It is an [ErrVerification].
var ErrUnsigned error = &verificationError{"commit is not signed"}

// ErrUntrusted is returned, wrapped, when verification is required and the
// commit's signature is invalid or made by a key that is not pinned. It is an
// [ErrVerification].
var ErrUntrusted error = &verificationError{"commit signature is not trusted"}

// Validate reports the first problem with the spec, naming the field.
func (s Spec) Validate() error {
	var errs []error
	if strings.TrimSpace(s.URL) == "" {
		errs = append(errs, errors.New("url: must be set"))
	}
	n := 0
	for _, v := range []string{s.Ref.Branch, s.Ref.Tag, s.Ref.Commit} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, fmt.Errorf("ref: exactly one of branch, tag or commit must be set, got %d", n))
	}
	if s.Ref.Commit != "" && !isFullSHA(s.Ref.Commit) {
		errs = append(errs, fmt.Errorf("ref.commit: %q is not a full lowercase 40-character SHA", s.Ref.Commit))
	}
	for _, v := range []struct{ field, name string }{{"ref.branch", s.Ref.Branch}, {"ref.tag", s.Ref.Tag}} {
		if strings.HasPrefix(v.name, "refs/") || strings.ContainsAny(v.name, " ~^:?*[\\") || strings.Contains(v.name, "..") {
			errs = append(errs, fmt.Errorf("%s: %q is not a plain branch or tag name", v.field, v.name))
		}
	}
	if s.CacheDir == "" {
		errs = append(errs, errors.New("cacheDir: must be set"))
	} else if !filepath.IsAbs(s.CacheDir) {
		errs = append(errs, fmt.Errorf("cacheDir: %q must be an absolute path", s.CacheDir))
	}
	a := s.Auth
	if a.PasswordFile != "" && a.BearerTokenFile != "" {
		errs = append(errs, errors.New("auth: passwordFile and bearerTokenFile are mutually exclusive"))
	}
	if a.Username != "" && a.PasswordFile == "" {
		errs = append(errs, errors.New("auth.passwordFile: must be set with auth.username"))
	}
	if a.SSHPrivateKeyFile != "" && a.SSHKnownHostsFile == "" {
		errs = append(errs, errors.New("auth.sshKnownHostsFile: must be set with auth.sshPrivateKeyFile"))
	}
	if s.Verify != nil && len(s.Verify.KeyringFiles) == 0 {
		errs = append(errs, errors.New("verify.keyringFiles: at least one keyring is required"))
	}
	if l := s.Limits; l.MaxRepositorySize < 0 || l.MaxFileSize < 0 || l.MaxFiles < 0 {
		errs = append(errs, errors.New("limits: must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid source spec: %w", errors.Join(errs...))
	}
	return nil
}

// isFullSHA reports whether s is a full lowercase hexadecimal SHA-1.
func isFullSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
