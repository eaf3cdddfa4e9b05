package reconciler

import (
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/source"
)

// newSource builds the source a configured source declares, with its cache in cacheDir. It
// is the one place that knows the kinds of source: a new kind is a case here, building its
// own package's [source.Source] from its own configuration type. Git repositories are
// fetched with git.
func newSource(src v1alpha1.Source, cacheDir string, git source.Fetcher, clk clock.PassiveClock) (source.Source, error) {
	return source.NewGit(gitSpec(src, cacheDir), git, clk.Now), nil
}

// gitSpec translates a configured Git source into what the Git fetcher needs.
func gitSpec(src v1alpha1.Source, cacheDir string) source.Spec {
	s := source.Spec{
		URL:      src.URL,
		Ref:      source.Ref{Branch: src.Ref.Branch, Tag: src.Ref.Tag, Commit: src.Ref.Commit},
		CacheDir: cacheDir,
		Limits: source.Limits{
			MaxRepositorySize: src.Limits.MaxRepositorySize.Value(),
			MaxFileSize:       src.Limits.MaxFileSize.Value(),
			MaxFiles:          src.Limits.MaxFiles,
		},
	}
	if a := src.Auth; a != nil {
		s.Auth = source.Auth{
			Username: a.Username, PasswordFile: a.PasswordFile, BearerTokenFile: a.BearerTokenFile,
			SSHPrivateKeyFile: a.SSHPrivateKeyFile, SSHKnownHostsFile: a.SSHKnownHostsFile, CAFile: a.CAFile,
		}
	}
	if v := src.Verify; v != nil {
		s.Verify = &source.Verification{KeyringFiles: v.KeyringFiles}
	}
	return s
}
