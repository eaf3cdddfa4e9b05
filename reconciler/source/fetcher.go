package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-logr/logr"
)

// Layout of a Spec's CacheDir.
const (
	// shallowRepoDir is the bare clone fetched at depth 1.
	shallowRepoDir = "repo.git"
	// fullRepoDir is a complete bare clone, used only to find a pinned
	// commit on servers that refuse to send a commit by its SHA.
	fullRepoDir = "full.git"
	// checkoutsDir holds one directory per checked-out commit.
	checkoutsDir = "checkouts"
	// currentLink points at the last revision returned.
	currentLink = "current"
	// maxPacks bounds the packfiles a cache clone collects (each fetch adds
	// one, and every object lookup searches them all). A shallow clone
	// over the bound is replaced by a fresh depth-1 clone, which costs
	// about one initial fetch.
	maxPacks = 64
)

// GitFetcher is a [Fetcher] backed by go-git. Its zero value is not usable;
// make one with [NewGitFetcher]. It is safe for concurrent use; fetches into
// the same cache directory are serialized.
type GitFetcher struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// repos keeps cache clones open between fetches, so pack indexes are
	// read once. Entries are used only under the cache directory's lock.
	repos map[string]*git.Repository
	// entries keeps the entries of the last commit fetched into each cache directory, so
	// that fetching it again, or checking out the next one, walks no tree. Guarded by mu.
	entries map[string]commitEntries
}

// commitEntries are the entries of one commit.
type commitEntries struct {
	commit  plumbing.Hash
	entries *Entries
}

var _ Fetcher = (*GitFetcher)(nil)

// NewGitFetcher returns a ready GitFetcher.
func NewGitFetcher() *GitFetcher {
	return &GitFetcher{locks: map[string]*sync.Mutex{}, repos: map[string]*git.Repository{}, entries: map[string]commitEntries{}}
}

// lock serializes work on one cache directory and returns the unlock.
func (f *GitFetcher) lock(dir string) func() {
	f.mu.Lock()
	l, ok := f.locks[dir]
	if !ok {
		l = &sync.Mutex{}
		f.locks[dir] = l
	}
	f.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Fetch implements [Fetcher]. Errors name the redacted URL and the ref and
// never contain credentials.
func (f *GitFetcher) Fetch(ctx context.Context, spec Spec) (Revision, error) {
	if err := spec.Validate(); err != nil {
		return Revision{}, err
	}
	rev, secrets, err := f.fetch(ctx, spec)
	if err != nil {
		err = fmt.Errorf("fetch %s at %s: %w", RedactURL(spec.URL), spec.Ref, err)
		return Revision{}, redact(err, spec.URL, secrets...)
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("fetched source",
		"url", RedactURL(spec.URL), "ref", spec.Ref.String(), "commit", rev.Commit)
	return rev, nil
}

func (f *GitFetcher) fetch(ctx context.Context, spec Spec) (Revision, []string, error) {
	ep, err := transport.NewEndpoint(spec.URL)
	if err != nil {
		return Revision{}, nil, fmt.Errorf("parse url: %w", err)
	}
	cache := filepath.Clean(spec.CacheDir)
	unlock := f.lock(cache)
	defer unlock()
	if err := os.MkdirAll(filepath.Join(cache, checkoutsDir), 0o755); err != nil {
		return Revision{}, nil, fmt.Errorf("create cache dir: %w", err)
	}

	var (
		repo    *git.Repository
		hash    plumbing.Hash
		secrets []string
	)
	if ep.Protocol == "file" {
		repo, hash, err = resolveLocal(ep.Path, spec.Ref)
	} else {
		var creds credentials
		creds, err = resolveAuth(spec.Auth, ep)
		if err != nil {
			return Revision{}, nil, err
		}
		secrets = creds.secrets
		repo, hash, err = f.fetchRemote(ctx, cache, remoteURL(ep), spec.Ref, creds, spec.Limits)
	}
	if err != nil {
		return Revision{}, secrets, err
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return Revision{}, secrets, fmt.Errorf("read commit %s: %w", hash, err)
	}
	var signedBy string
	if spec.Verify != nil {
		if signedBy, err = verifyCommit(commit, spec.Verify.KeyringFiles); err != nil {
			return Revision{}, secrets, err
		}
	}
	if err := ctx.Err(); err != nil {
		return Revision{}, secrets, err
	}
	prevEntries := func(prev string) *Entries {
		h := plumbing.NewHash(prev)
		if h.IsZero() || h.String() != prev {
			return nil
		}
		e, _ := f.commitEntries(cache, repo, h)
		return e
	}
	dir, err := checkout(ctx, cache, commit, spec.Limits, prevEntries)
	if err != nil {
		return Revision{}, secrets, err
	}
	entries, err := f.commitEntries(cache, repo, hash)
	if err != nil {
		return Revision{}, secrets, err
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(commit.Message), "\n")
	return Revision{
		Commit:    hash.String(),
		Author:    fmt.Sprintf("%s <%s>", commit.Author.Name, commit.Author.Email),
		Committer: fmt.Sprintf("%s <%s>", commit.Committer.Name, commit.Committer.Email),
		Time:      commit.Committer.When,
		Subject:   strings.TrimSpace(subject),
		SignedBy:  signedBy,
		Dir:       dir,
		Entries:   entries,
	}, secrets, nil
}

// commitEntries returns the entries of commit h of repo, the cached ones when h was the last
// commit of the cache directory, and remembers them as the last.
func (f *GitFetcher) commitEntries(cache string, repo *git.Repository, h plumbing.Hash) (*Entries, error) {
	f.mu.Lock()
	last, ok := f.entries[cache]
	f.mu.Unlock()
	if ok && last.commit == h {
		return last.entries, nil
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	e, err := TreeEntries(c)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.entries[cache] = commitEntries{commit: h, entries: e}
	f.mu.Unlock()
	return e, nil
}

// remoteURL is ep without HTTP credentials, which go to the auth method.
func remoteURL(ep *transport.Endpoint) string {
	c := *ep
	if c.Protocol == "http" || c.Protocol == "https" {
		c.User, c.Password = "", ""
	}
	return c.String()
}

// largeObject is the size above which a Git object is streamed from its
// packfile or loose file instead of being read into memory.
const largeObject = 1 << 20

// openStorage opens the Git directory dir (a bare repository or a .git
// directory) so that objects over largeObject are streamed, not read into
// memory.
func openStorage(dir string) (*git.Repository, error) {
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(), filesystem.Options{LargeObjectThreshold: largeObject})
	return git.Open(&guardedStorage{Storage: st}, nil)
}

// guard sets the object size limit of the fetches into repo, a cache clone.
func guard(repo *git.Repository, limits Limits) {
	if g, ok := repo.Storer.(*guardedStorage); ok {
		g.maxObject = limits.MaxFileSize
	}
}

// resolveLocal opens the repository at path in place and resolves ref. Its
// Git objects are not copied, so only the checkout counts against
// limits.MaxRepositorySize.
func resolveLocal(path string, ref Ref) (*git.Repository, plumbing.Hash, error) {
	gitDir := path
	if info, err := os.Stat(filepath.Join(path, git.GitDirName)); err == nil && info.IsDir() {
		gitDir = filepath.Join(path, git.GitDirName)
	}
	repo, err := openStorage(gitDir)
	if err != nil {
		// A linked worktree (.git is a file): go-git resolves it, with
		// default storage options.
		if repo, err = git.PlainOpenWithOptions(path, &git.PlainOpenOptions{EnableDotGitCommonDir: true}); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("open local repository: %w", err)
		}
	}
	var name plumbing.ReferenceName
	switch {
	case ref.Commit != "":
		h := plumbing.NewHash(ref.Commit)
		if _, err := repo.CommitObject(h); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("find commit: %w", err)
		}
		return repo, h, nil
	case ref.Tag != "":
		name = plumbing.NewTagReferenceName(ref.Tag)
	default:
		name = plumbing.NewBranchReferenceName(ref.Branch)
	}
	h, err := resolveRef(repo, name)
	return repo, h, err
}

// resolveRef resolves a reference to a commit, peeling annotated tags.
func resolveRef(repo *git.Repository, name plumbing.ReferenceName) (plumbing.Hash, error) {
	r, err := repo.Reference(name, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: %w", name, err)
	}
	h := r.Hash()
	// Peel annotated tags, which may point at other tags.
	for range 10 {
		tag, err := repo.TagObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return h, nil
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read tag %s: %w", name, err)
		}
		if tag.TargetType != plumbing.CommitObject && tag.TargetType != plumbing.TagObject {
			return plumbing.ZeroHash, fmt.Errorf("%s points at a %s, not a commit", name, tag.TargetType)
		}
		h = tag.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: too many nested tags", name)
}

// fetchRemote brings ref's commit into the cache clone and returns the
// repository holding it and the commit hash. A clone that grows over
// limits.MaxRepositorySize stops the fetch and is removed.
func (f *GitFetcher) fetchRemote(ctx context.Context, cache, url string, ref Ref, creds credentials, limits Limits) (*git.Repository, plumbing.Hash, error) {
	dir := filepath.Join(cache, shallowRepoDir)
	repo, h, err := f.fetchRemoteInto(ctx, cache, dir, url, ref, creds, limits)
	if errors.Is(err, ErrLimitExceeded) {
		f.dropCache(dir)
		f.dropCache(filepath.Join(cache, fullRepoDir))
	}
	return repo, h, err
}

// dropCache removes the cache clone at dir. Failures only cost disk.
func (f *GitFetcher) dropCache(dir string) {
	f.mu.Lock()
	delete(f.repos, dir)
	f.mu.Unlock()
	_ = os.RemoveAll(dir)
}

// fetchRemoteInto is fetchRemote into the clone at dir.
func (f *GitFetcher) fetchRemoteInto(ctx context.Context, cache, dir, url string, ref Ref, creds credentials, limits Limits) (*git.Repository, plumbing.Hash, error) {
	repo, err := f.openCache(dir, url, true)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	opts := &git.FetchOptions{
		RemoteURL: url,
		Auth:      creds.method,
		CABundle:  creds.caBundle,
		Depth:     1,
		Tags:      git.NoTags,
		Force:     true,
	}
	var local plumbing.ReferenceName
	switch {
	case ref.Branch != "":
		local = plumbing.NewRemoteReferenceName(git.DefaultRemoteName, ref.Branch)
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + plumbing.NewBranchReferenceName(ref.Branch).String() + ":" + local.String())}
	case ref.Tag != "":
		local = plumbing.NewTagReferenceName(ref.Tag)
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + local.String() + ":" + local.String())}
	default:
		return f.fetchCommit(ctx, cache, url, repo, plumbing.NewHash(ref.Commit), opts, limits)
	}
	if err := fetchWithin(ctx, repo, opts, dir, limits); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, plumbing.ZeroHash, err
	}
	h, err := resolveRef(repo, local)
	return repo, h, err
}

// sizeCheckInterval is how often a running fetch measures the clone.
const sizeCheckInterval = 100 * time.Millisecond

// fetchWithin fetches into repo, the clone at dir, and stops the fetch as
// soon as the clone grows over limits.MaxRepositorySize or the pack brings
// an object over limits.MaxFileSize; it measures the clone once more when
// the fetch is done.
func fetchWithin(ctx context.Context, repo *git.Repository, opts *git.FetchOptions, dir string, limits Limits) error {
	guard(repo, limits)
	if limits.MaxRepositorySize <= 0 {
		return repo.FetchContext(ctx, opts)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(sizeCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := checkRepositorySize(dir, limits); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	err := repo.FetchContext(fctx, opts)
	close(done)
	if cause := context.Cause(fctx); errors.Is(cause, ErrLimitExceeded) {
		return cause
	}
	if err != nil {
		return err
	}
	return checkRepositorySize(dir, limits)
}

// checkRepositorySize fails when the files under dir add up to more than
// limits.MaxRepositorySize.
func checkRepositorySize(dir string, limits Limits) error {
	if limits.MaxRepositorySize <= 0 {
		return nil
	}
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return nil
			}
			size += info.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("measure repository: %w", err)
	}
	if size > limits.MaxRepositorySize {
		return &LimitError{Limit: "limits.maxRepositorySize", Msg: fmt.Sprintf("the repository's Git objects take more than %s on disk, over the source's limits.maxRepositorySize of %s", formatBytes(limits.MaxRepositorySize), formatBytes(limits.MaxRepositorySize))}
	}
	return nil
}

// fetchCommit fetches a commit by SHA. A commit already in the cache is
// never fetched again (it cannot change). Servers that refuse to send a
// commit by SHA get a full fetch into a separate, complete clone.
func (f *GitFetcher) fetchCommit(ctx context.Context, cache, url string, repo *git.Repository, h plumbing.Hash, opts *git.FetchOptions, limits Limits) (*git.Repository, plumbing.Hash, error) {
	if _, err := repo.CommitObject(h); err == nil {
		return repo, h, nil
	}
	pinned := plumbing.ReferenceName("refs/driftless/pinned")
	opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + h.String() + ":" + pinned.String())}
	err := fetchWithin(ctx, repo, opts, filepath.Join(cache, shallowRepoDir), limits)
	switch {
	case err == nil || errors.Is(err, git.NoErrAlreadyUpToDate):
		if _, err := repo.CommitObject(h); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("read fetched commit: %w", err)
		}
		return repo, h, nil
	case !errors.Is(err, git.ErrExactSHA1NotSupported):
		return nil, plumbing.ZeroHash, err
	}

	full, err := f.openCache(filepath.Join(cache, fullRepoDir), url, false)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	if _, err := full.CommitObject(h); err == nil {
		return full, h, nil
	}
	fullOpts := *opts
	fullOpts.Depth = 0
	fullOpts.RefSpecs = []config.RefSpec{
		"+refs/heads/*:refs/remotes/origin/*",
		"+refs/tags/*:refs/tags/*",
	}
	if err := fetchWithin(ctx, full, &fullOpts, filepath.Join(cache, fullRepoDir), limits); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, plumbing.ZeroHash, err
	}
	if _, err := full.CommitObject(h); err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("commit not found on any branch or tag: %w", err)
	}
	return full, h, nil
}

// openCache opens the bare clone at dir, creating it when missing and
// recreating it when it cannot be opened or, if it is disposable (shallow),
// when it has collected too many packfiles.
func (f *GitFetcher) openCache(dir, url string, disposable bool) (*git.Repository, error) {
	f.mu.Lock()
	repo, ok := f.repos[dir]
	f.mu.Unlock()
	if disposable && tooManyPacks(dir) {
		ok = false
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove cache clone %s: %w", dir, err)
		}
	}
	if ok {
		return repo, nil
	}
	repo, err := git.PlainOpen(dir)
	if err == nil {
		// Reopen with storage that streams large objects.
		repo, err = openStorage(dir)
	}
	if err != nil && !errors.Is(err, git.ErrRepositoryNotExists) {
		// A clone left broken (for example by a crash) is only a cache.
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			return nil, fmt.Errorf("remove broken cache clone %s: %w", dir, rmErr)
		}
	}
	if err != nil {
		if repo, err = initCache(dir, url); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.repos[dir] = repo
	f.mu.Unlock()
	return repo, nil
}

// tooManyPacks reports whether the clone at dir holds more than maxPacks
// packfiles.
func tooManyPacks(dir string) bool {
	packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	return len(packs) > maxPacks
}

// initCache creates an empty bare clone of url at dir.
func initCache(dir, url string) (*git.Repository, error) {
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return nil, fmt.Errorf("create cache clone %s: %w", dir, err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{url}})
	if err != nil {
		return nil, fmt.Errorf("configure cache clone %s: %w", dir, err)
	}
	if repo, err = openStorage(dir); err != nil {
		return nil, fmt.Errorf("open cache clone %s: %w", dir, err)
	}
	return repo, nil
}

// commitTree returns the commit's root tree.
func commitTree(c *object.Commit) (*object.Tree, error) {
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of commit %s: %w", c.Hash, err)
	}
	return t, nil
}
