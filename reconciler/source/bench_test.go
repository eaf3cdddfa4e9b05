package source_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// fastImportHistory returns a git fast-import stream of n commits on main,
// each changing one of 100 files.
func fastImportHistory(n int) string {
	var b strings.Builder
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := 1; i <= n; i++ {
		msg := fmt.Sprintf("change %d\n", i)
		content := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  rev: %q\n", i%100, fmt.Sprint(i))
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@driftless.dev> %d +0000\ndata %d\n%s", i, start+int64(i), len(msg), msg)
		if i > 1 {
			fmt.Fprintf(&b, "from :%d\n", i-1)
		}
		fmt.Fprintf(&b, "M 644 inline apps/cm-%02d.yaml\ndata %d\n%s\n", i%100, len(content), content)
	}
	return b.String()
}

// BenchmarkFetchNewCommit measures fetching one new commit over loopback
// HTTP from a repository with 10,000 commits into a warm cache, including
// the checkout of the new revision.
func BenchmarkFetchNewCommit(b *testing.B) {
	srv := gitserver.New(b)
	repo := srv.CreateRepo(b, "big.git")
	repo.Git(b, strings.NewReader(fastImportHistory(10000)), "fast-import", "--quiet")
	repo.Git(b, nil, "repack", "-adq")

	f := source.NewGitFetcher()
	spec := source.Spec{URL: srv.RepoURL("big.git"), Ref: source.Ref{Branch: "main"}, CacheDir: b.TempDir()}
	if _, err := f.Fetch(b.Context(), spec); err != nil {
		b.Fatalf("initial fetch: %v", err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		want := repo.Commit(b, "main", gitserver.Change{Files: map[string]string{"apps/new.yaml": fmt.Sprintf("n: %d\n", i)}})
		b.StartTimer()
		rev, err := f.Fetch(b.Context(), spec)
		if err != nil {
			b.Fatalf("fetch: %v", err)
		}
		if rev.Commit != want {
			b.Fatalf("fetched %s, want %s", rev.Commit, want)
		}
	}
}

// BenchmarkFetchUnchanged measures a fetch that finds nothing new, the
// common case on every reconcile interval.
func BenchmarkFetchUnchanged(b *testing.B) {
	srv := gitserver.New(b)
	repo := srv.CreateRepo(b, "big.git")
	repo.Git(b, strings.NewReader(fastImportHistory(10000)), "fast-import", "--quiet")
	repo.Git(b, nil, "repack", "-adq")
	f := source.NewGitFetcher()
	spec := source.Spec{URL: srv.RepoURL("big.git"), Ref: source.Ref{Branch: "main"}, CacheDir: b.TempDir()}
	if _, err := f.Fetch(b.Context(), spec); err != nil {
		b.Fatalf("initial fetch: %v", err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := f.Fetch(b.Context(), spec); err != nil {
			b.Fatalf("fetch: %v", err)
		}
	}
}

// BenchmarkInitialFetch measures the first, cold fetch of a repository
// with 10,000 commits (depth 1).
func BenchmarkInitialFetch(b *testing.B) {
	srv := gitserver.New(b)
	repo := srv.CreateRepo(b, "big.git")
	repo.Git(b, strings.NewReader(fastImportHistory(10000)), "fast-import", "--quiet")
	repo.Git(b, nil, "repack", "-adq")
	f := source.NewGitFetcher()
	b.ResetTimer()
	for range b.N {
		spec := source.Spec{URL: srv.RepoURL("big.git"), Ref: source.Ref{Branch: "main"}, CacheDir: b.TempDir()}
		if _, err := f.Fetch(b.Context(), spec); err != nil {
			b.Fatalf("fetch: %v", err)
		}
	}
}
