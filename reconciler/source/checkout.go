package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// checkout returns the directory holding commit's files, writing it first
// if needed, makes it the cache's current revision and removes checkouts
// older than the previous current one.
//
// A checkout is written into a temporary directory and renamed into place
// only when complete, so a checkout directory is never seen half-written.
// Files whose content is unchanged since the current checkout are hard links
// to it rather than new files: creating a file costs far more than linking
// one, so a one-file commit in a large repository stays cheap. Checkouts are
// never written to after they are complete, so sharing inodes is safe.
func checkout(ctx context.Context, cache string, commit *object.Commit) (string, error) {
	root := filepath.Join(cache, checkoutsDir)
	final := filepath.Join(root, commit.Hash.String())
	link := filepath.Join(cache, currentLink)
	prev, _ := os.Readlink(link)
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
		tmp, err := os.MkdirTemp(root, ".tmp-"+commit.Hash.String()+"-")
		if err != nil {
			return "", fmt.Errorf("create checkout dir: %w", err)
		}
		var from *reuse
		if prev != "" {
			if checkouts, err := os.OpenRoot(root); err == nil {
				defer checkouts.Close()
				from = &reuse{checkouts: checkouts, prev: filepath.Base(prev), next: filepath.Base(tmp)}
			}
		}
		if err := export(ctx, commit, tmp, from); err != nil {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("check out commit %s: %w", commit.Hash, err)
		}
		if err := os.Rename(tmp, final); err != nil {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("move checkout of commit %s into place: %w", commit.Hash, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("stat checkout of commit %s: %w", commit.Hash, err)
	}

	target := filepath.Join(checkoutsDir, commit.Hash.String())
	if prev != target {
		tmpLink := link + ".tmp"
		_ = os.Remove(tmpLink)
		if err := os.Symlink(target, tmpLink); err != nil {
			return "", fmt.Errorf("point %s at commit %s: %w", link, commit.Hash, err)
		}
		if err := os.Rename(tmpLink, link); err != nil {
			return "", fmt.Errorf("point %s at commit %s: %w", link, commit.Hash, err)
		}
	}
	prune(root, filepath.Base(final), filepath.Base(prev))
	return final, nil
}

// prune removes checkouts and leftover temporary directories other than
// the named ones. Failures are ignored: old checkouts only cost disk.
func prune(root string, keep ...string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		kept := false
		for _, k := range keep {
			if name == k {
				kept = true
			}
		}
		if !kept {
			_ = os.RemoveAll(filepath.Join(root, name))
		}
	}
}

// reuse links files of a new checkout to identical files of the previous one.
// Both checkouts are directories of checkouts, which the root confines.
type reuse struct {
	checkouts *os.Root
	prev      string
	next      string
}

// link makes name in the new checkout a hard link to the previous checkout's
// file when that is a regular file with the entry's content and mode. It
// reports whether it did; on false the caller writes the file.
func (r *reuse) link(name string, entry object.TreeEntry) bool {
	if r == nil {
		return false
	}
	old := path.Join(r.prev, name)
	info, err := r.checkouts.Lstat(old)
	if err != nil || !info.Mode().IsRegular() || (info.Mode().Perm()&0o100 != 0) != (entry.Mode == filemode.Executable) {
		return false
	}
	data, err := r.checkouts.ReadFile(old)
	if err != nil || plumbing.ComputeHash(plumbing.BlobObject, data) != entry.Hash {
		return false
	}
	return r.checkouts.Link(old, path.Join(r.next, name)) == nil
}

// export writes commit's tree into the empty directory dir, linking files
// unchanged since the previous checkout (from, when not nil). Writes go
// through an [os.Root], so no tree entry or symlink can write outside dir.
// Submodules are skipped.
func export(ctx context.Context, commit *object.Commit, dir string, from *reuse) error {
	tree, err := commitTree(commit)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(root, tree, name, entry, from); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
}

func writeEntry(root *os.Root, tree *object.Tree, name string, entry object.TreeEntry, from *reuse) error {
	switch entry.Mode {
	case filemode.Dir:
		return root.MkdirAll(name, 0o755)
	case filemode.Submodule:
		return nil
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if entry.Mode != filemode.Symlink && from.link(name, entry) {
		return nil
	}
	f, err := tree.TreeEntryFile(&entry)
	if err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	switch entry.Mode {
	case filemode.Symlink:
		b, err := io.ReadAll(io.LimitReader(r, 4096))
		if err != nil {
			return err
		}
		return root.Symlink(string(b), name)
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
		perm := fs.FileMode(0o644)
		if entry.Mode == filemode.Executable {
			perm = 0o755
		}
		out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, r); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	default:
		return fmt.Errorf("unsupported file mode %s", entry.Mode)
	}
}
