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

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// checkout returns the directory holding commit's files, writing it first
// if needed, makes it the cache's current revision and removes checkouts
// older than the previous current one.
//
// A checkout is written into a temporary directory and renamed into place
// only when complete, so a checkout directory is never seen half-written.
func checkout(ctx context.Context, cache string, commit *object.Commit) (string, error) {
	root := filepath.Join(cache, checkoutsDir)
	final := filepath.Join(root, commit.Hash.String())
	if _, err := os.Stat(final); errors.Is(err, fs.ErrNotExist) {
		tmp, err := os.MkdirTemp(root, ".tmp-"+commit.Hash.String()+"-")
		if err != nil {
			return "", fmt.Errorf("create checkout dir: %w", err)
		}
		if err := export(ctx, commit, tmp); err != nil {
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

	link := filepath.Join(cache, currentLink)
	prev, _ := os.Readlink(link)
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

// export writes commit's tree into the empty directory dir. Writes go
// through an [os.Root], so no tree entry or symlink can write outside dir.
// Submodules are skipped.
func export(ctx context.Context, commit *object.Commit, dir string) error {
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
		if err := writeEntry(root, tree, name, entry); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
}

func writeEntry(root *os.Root, tree *object.Tree, name string, entry object.TreeEntry) error {
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
