package gitserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// DefaultBranch is the branch HEAD points at in repositories made by
// [InitBare].
const DefaultBranch = "main"

// Repo is a bare Git repository on disk.
type Repo struct {
	// Path is the repository's directory.
	Path string
}

// InitBare creates an empty bare repository at dir whose HEAD points at
// [DefaultBranch]. Fetching a commit by its SHA is allowed
// (uploadpack.allowReachableSHA1InWant), as on the large Git hosts; turn it
// off with [Repo.SetConfig] to test a client's fallback.
func InitBare(t testing.TB, dir string) *Repo {
	t.Helper()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare: true,
		InitOptions: git.InitOptions{
			DefaultBranch: plumbing.NewBranchReferenceName(DefaultBranch),
		},
	})
	if err != nil {
		t.Fatalf("init bare repository %s: %v", dir, err)
	}
	cfg, err := r.Config()
	if err != nil {
		t.Fatalf("read config of %s: %v", dir, err)
	}
	cfg.Raw.Section("uploadpack").SetOption("allowReachableSHA1InWant", "true")
	if err := r.SetConfig(cfg); err != nil {
		t.Fatalf("write config of %s: %v", dir, err)
	}
	return &Repo{Path: dir}
}

// FileURL returns the repository's file:// URL.
func (r *Repo) FileURL() string { return "file://" + r.Path }

// Change describes one commit made by [Repo.Commit].
type Change struct {
	// Files maps slash-separated paths to their new content; files not
	// named keep their content from the parent commit.
	Files map[string]string
	// Delete lists paths to remove.
	Delete []string
	// Message is the commit message; "change" when empty.
	Message string
	// Author is the author, and the committer unless Committer is set; a
	// fixed test identity when Name is empty.
	Author object.Signature
	// Committer, when its Name is set, is the committer.
	Committer object.Signature
	// SignKey, when set, signs the commit with OpenPGP.
	SignKey *openpgp.Entity
}

// Commit adds a commit with change on top of branch (or as its first
// commit) and moves branch to it. It returns the new commit's SHA.
func (r *Repo) Commit(t testing.TB, branch string, change Change) string {
	t.Helper()
	h, err := r.commit(branch, change)
	if err != nil {
		t.Fatalf("commit to %s in %s: %v", branch, r.Path, err)
	}
	return h.String()
}

func (r *Repo) commit(branch string, change Change) (plumbing.Hash, error) {
	repo, err := git.PlainOpen(r.Path)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	files := map[string]plumbing.Hash{}
	modes := map[string]filemode.FileMode{}
	var parents []plumbing.Hash
	refName := plumbing.NewBranchReferenceName(branch)
	ref, err := repo.Reference(refName, true)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
	case err != nil:
		return plumbing.ZeroHash, err
	default:
		parent, err := repo.CommitObject(ref.Hash())
		if err != nil {
			return plumbing.ZeroHash, err
		}
		parents = []plumbing.Hash{parent.Hash}
		tree, err := parent.Tree()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		walker := object.NewTreeWalker(tree, true, nil)
		for {
			name, entry, err := walker.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				walker.Close()
				return plumbing.ZeroHash, err
			}
			if entry.Mode != filemode.Dir {
				files[name] = entry.Hash
				modes[name] = entry.Mode
			}
		}
		walker.Close()
	}
	for _, p := range change.Delete {
		delete(files, p)
	}
	for p, content := range change.Files {
		obj := repo.Storer.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := io.WriteString(w, content); err != nil {
			return plumbing.ZeroHash, err
		}
		if err := w.Close(); err != nil {
			return plumbing.ZeroHash, err
		}
		h, err := repo.Storer.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		files[p] = h
		modes[p] = filemode.Regular
	}
	treeHash, err := writeTree(repo, "", files, modes)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := change.Author
	if sig.Name == "" {
		sig = object.Signature{Name: "Driftless Test", Email: "test@driftless.dev"}
	}
	if sig.When.IsZero() {
		sig.When = time.Now().Truncate(time.Second)
	}
	msg := change.Message
	if msg == "" {
		msg = "change"
	}
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	committer := sig
	if change.Committer.Name != "" {
		committer = change.Committer
		if committer.When.IsZero() {
			committer.When = sig.When
		}
	}
	c := &object.Commit{
		Author:       sig,
		Committer:    committer,
		Message:      msg,
		TreeHash:     treeHash,
		ParentHashes: parents,
	}
	if change.SignKey != nil {
		unsigned := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(unsigned); err != nil {
			return plumbing.ZeroHash, err
		}
		rd, err := unsigned.Reader()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		var sigBuf bytes.Buffer
		if err := openpgp.ArmoredDetachSign(&sigBuf, change.SignKey, rd, nil); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("sign commit: %w", err)
		}
		c.PGPSignature = sigBuf.String()
	}
	obj := repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return h, repo.Storer.SetReference(plumbing.NewHashReference(refName, h))
}

// writeTree stores the tree for the files under dir (a slash-separated
// prefix, "" for the root) and returns its hash.
func writeTree(repo *git.Repository, dir string, files map[string]plumbing.Hash, modes map[string]filemode.FileMode) (plumbing.Hash, error) {
	prefix := dir
	if prefix != "" {
		prefix += "/"
	}
	entries := map[string]object.TreeEntry{}
	subdirs := map[string]bool{}
	for p, h := range files {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		if first, _, nested := strings.Cut(rest, "/"); nested {
			subdirs[first] = true
			continue
		}
		entries[rest] = object.TreeEntry{Name: rest, Mode: modes[p], Hash: h}
	}
	for sub := range subdirs {
		h, err := writeTree(repo, path.Join(dir, sub), files, modes)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries[sub] = object.TreeEntry{Name: sub, Mode: filemode.Dir, Hash: h}
	}
	tree := &object.Tree{}
	for _, e := range entries {
		tree.Entries = append(tree.Entries, e)
	}
	// Git orders tree entries by name, with directories compared as if
	// their name ended in "/".
	sortKey := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(tree.Entries, func(i, j int) bool {
		return sortKey(tree.Entries[i]) < sortKey(tree.Entries[j])
	})
	obj := repo.Storer.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return repo.Storer.SetEncodedObject(obj)
}

// Head returns the SHA that branch points at.
func (r *Repo) Head(t testing.TB, branch string) string {
	t.Helper()
	repo, err := git.PlainOpen(r.Path)
	if err != nil {
		t.Fatalf("open %s: %v", r.Path, err)
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		t.Fatalf("resolve branch %s in %s: %v", branch, r.Path, err)
	}
	return ref.Hash().String()
}

// Tag creates or moves the lightweight tag name to the commit target.
func (r *Repo) Tag(t testing.TB, name, target string) {
	t.Helper()
	repo, err := git.PlainOpen(r.Path)
	if err != nil {
		t.Fatalf("open %s: %v", r.Path, err)
	}
	ref := plumbing.NewHashReference(plumbing.NewTagReferenceName(name), plumbing.NewHash(target))
	if err := repo.Storer.SetReference(ref); err != nil {
		t.Fatalf("tag %s as %s in %s: %v", target, name, r.Path, err)
	}
}

// AnnotatedTag creates the annotated tag name pointing at the commit
// target, with message.
func (r *Repo) AnnotatedTag(t testing.TB, name, target, message string) {
	t.Helper()
	repo, err := git.PlainOpen(r.Path)
	if err != nil {
		t.Fatalf("open %s: %v", r.Path, err)
	}
	_, err = repo.CreateTag(name, plumbing.NewHash(target), &git.CreateTagOptions{
		Tagger:  &object.Signature{Name: "Driftless Test", Email: "test@driftless.dev", When: time.Now()},
		Message: message,
	})
	if err != nil {
		t.Fatalf("annotated tag %s as %s in %s: %v", target, name, r.Path, err)
	}
}

// SetConfig sets a key in the repository's Git configuration, for example
// SetConfig(t, "uploadpack.allowReachableSHA1InWant", "false").
func (r *Repo) SetConfig(t testing.TB, key, value string) {
	t.Helper()
	r.Git(t, nil, "config", key, value)
}

// Git runs the git command line in the repository with stdin as standard
// input (may be nil) and returns its standard output. Global and system Git
// configuration are ignored.
func (r *Repo) Git(t testing.TB, stdin io.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(),
		"GIT_DIR="+r.Path,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
	)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v: %s", strings.Join(args, " "), r.Path, err, stderr.String())
	}
	return stdout.String()
}
