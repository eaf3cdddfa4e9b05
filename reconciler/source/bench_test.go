package source_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
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

// hugeFileSize is the file the attack committed: 300 MB, unreferenced by any kustomization.
const hugeFileSize = 300_000_000

// hugeFileCommit returns a git fast-import stream of one commit on top of main that adds a
// hugeFileSize file of zeros, generated as it is read: neither this process nor git holds it
// in memory (zeros compress to about 300 KB in the pack, so the fetch itself is small; what
// is measured is reading and writing the file).
func hugeFileCommit(line string) io.Reader {
	head := fmt.Sprintf("commit refs/heads/main\ncommitter Bench <bench@driftless.dev> 1700000000 +0000\ndata %d\n%s\nfrom refs/heads/main^0\nM 644 inline base/huge.bin\ndata %d\n",
		len(line)+1, line, hugeFileSize)
	return io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, hugeFileSize), strings.NewReader("\n"))
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// resetPeakRSS resets the kernel's peak resident set size of this process (VmHWM), so the
// next reading covers only what follows.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// peakRSS returns this process's peak resident set size in bytes (VmHWM).
func peakRSS(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// heapInUse returns the bytes of heap objects, live and not yet swept.
func heapInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// BenchmarkFetchHugeFile fetches, over loopback HTTP into a cold cache, a commit that adds a
// 300 MB file, with the default limits: the fetch is stopped when the file's object header
// arrives in the pack, before its content is read. It reports the peak RSS of the process over the fetches (VmHWM, reset before
// them) and the heap in use right after a fetch.
func BenchmarkFetchHugeFile(b *testing.B) {
	srv := gitserver.New(b)
	repo := srv.CreateRepo(b, "huge.git")
	repo.Commit(b, "main", gitserver.Change{Files: map[string]string{"base/app.yaml": "k: v\n"}})
	repo.Git(b, hugeFileCommit("Add a huge file"), "fast-import", "--quiet", "--big-file-threshold=1m")
	limits := source.Limits{MaxRepositorySize: v1alpha1.DefaultMaxRepositorySize, MaxFileSize: v1alpha1.DefaultMaxFileSize, MaxFiles: v1alpha1.DefaultMaxFiles}
	f := source.NewGitFetcher()
	runtime.GC()
	base := peakRSS(b)
	resetPeakRSS(b)
	var heap int64
	b.ResetTimer()
	for range b.N {
		spec := source.Spec{URL: srv.RepoURL("huge.git"), Ref: source.Ref{Branch: "main"}, CacheDir: b.TempDir(), Limits: limits}
		_, err := f.Fetch(b.Context(), spec)
		if !errors.Is(err, source.ErrLimitExceeded) || !strings.Contains(err.Error(), "286.1 MiB") {
			b.Fatalf("fetch = %v, want the huge file refused", err)
		}
		heap = max(heap, heapInUse())
	}
	b.StopTimer()
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(base)/(1<<20), "RSS-before-MiB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
}
