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
// one, so a one-file commit in a large repository stays cheap. A file is known
// unchanged without reading it when prevEntries (the entries of the previous
// checkout's commit, when its objects are at hand) name the same blob at its
// path; otherwise its content is hashed and compared. Checkouts are never
// written to after they are complete, so sharing inodes is safe.
//
// The checkout stays within limits: a file's size is read from its Git
// object header before its content, files are copied and hashed as streams,
// and the walk stops at the first file over limits.MaxFileSize, or once the
// files or their total size pass limits.MaxFiles or limits.MaxRepositorySize.
func checkout(ctx context.Context, cache string, commit *object.Commit, limits Limits, prevEntries func(commit string) *Entries) (string, error) {
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
				if prevEntries != nil {
					from.entries = prevEntries(from.prev)
				}
			}
		}
		if err := export(ctx, commit, tmp, from, limits); err != nil {
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
	// entries are those of the previous checkout's commit; nil when unknown.
	entries *Entries
}

// linkSame makes name in the new checkout a hard link to the previous checkout's file when
// the previous commit had the same blob, with the same mode, at name. It returns the file's
// size and whether it did; on false the caller goes the long way.
func (r *reuse) linkSame(name string, entry object.TreeEntry) (int64, bool) {
	if r == nil || r.entries == nil {
		return 0, false
	}
	switch entry.Mode {
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
	default:
		return 0, false
	}
	if e, ok := r.entries.Lookup(name); !ok || e.Kind != EntryFile || e.ID != entry.Mode.String()+" "+entry.Hash.String() {
		return 0, false
	}
	old := path.Join(r.prev, name)
	info, err := r.checkouts.Lstat(old)
	if err != nil || !info.Mode().IsRegular() {
		return 0, false
	}
	return info.Size(), true
}

// link makes name in the new checkout a hard link to the previous checkout's
// file when that is a regular file with the entry's size, content and mode.
// The file is hashed as a stream, so memory does not grow with its size. It
// reports whether it did; on false the caller writes the file.
func (r *reuse) link(name string, entry object.TreeEntry, size int64) bool {
	if r == nil {
		return false
	}
	old := path.Join(r.prev, name)
	info, err := r.checkouts.Lstat(old)
	if err != nil || !info.Mode().IsRegular() || info.Size() != size || (info.Mode().Perm()&0o100 != 0) != (entry.Mode == filemode.Executable) {
		return false
	}
	f, err := r.checkouts.Open(old)
	if err != nil {
		return false
	}
	h := plumbing.NewHasher(plumbing.BlobObject, size)
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil || h.Sum() != entry.Hash {
		return false
	}
	return r.checkouts.Link(old, path.Join(r.next, name)) == nil
}

// tally counts a checkout against its limits.
type tally struct {
	limits Limits
	files  int64
	bytes  int64
}

// add counts the file name of size bytes and fails once a limit is passed.
func (t *tally) add(name string, size int64) error {
	t.files++
	t.bytes += size
	l := t.limits
	switch {
	case l.MaxFileSize > 0 && size > l.MaxFileSize:
		return &LimitError{Limit: "limits.maxFileSize", Msg: fmt.Sprintf("file %s is %s, over the source's limits.maxFileSize of %s", name, formatBytes(size), formatBytes(l.MaxFileSize))}
	case l.MaxFiles > 0 && t.files > l.MaxFiles:
		return &LimitError{Limit: "limits.maxFiles", Msg: fmt.Sprintf("more than %d files, over the source's limits.maxFiles of %d", l.MaxFiles, l.MaxFiles)}
	case l.MaxRepositorySize > 0 && t.bytes > l.MaxRepositorySize:
		return &LimitError{Limit: "limits.maxRepositorySize", Msg: fmt.Sprintf("files add up to more than %s, over the source's limits.maxRepositorySize of %s", formatBytes(l.MaxRepositorySize), formatBytes(l.MaxRepositorySize))}
	}
	return nil
}

// export writes commit's tree into the empty directory dir, linking files
// unchanged since the previous checkout (from, when not nil), within limits.
// Writes go through an [os.Root], so no tree entry or symlink can write
// outside dir. Submodules are skipped.
func export(ctx context.Context, commit *object.Commit, dir string, from *reuse, limits Limits) error {
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
	t := &tally{limits: limits}
	d := &dirCache{root: root}
	defer d.close()
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
		if err := writeEntry(d, tree, name, entry, from, t); err != nil {
			if errors.Is(err, ErrLimitExceeded) {
				return err
			}
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
}

// dirCache holds the directory of a checkout that files were last written to, open, so
// that writing the next file there costs one openat instead of one per path component
// (the tree walk visits a directory's files one after another).
type dirCache struct {
	root *os.Root
	name string
	dir  *os.Root
}

// get returns the directory name of the checkout, made if needed.
func (d *dirCache) get(name string) (*os.Root, error) {
	if name == "." {
		return d.root, nil
	}
	if d.dir != nil && d.name == name {
		return d.dir, nil
	}
	if err := d.root.MkdirAll(name, 0o755); err != nil {
		return nil, err
	}
	dir, err := d.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	d.close()
	d.name, d.dir = name, dir
	return dir, nil
}

func (d *dirCache) close() {
	if d.dir != nil {
		d.dir.Close()
		d.dir = nil
	}
}

func writeEntry(d *dirCache, tree *object.Tree, name string, entry object.TreeEntry, from *reuse, t *tally) error {
	root := d.root
	switch entry.Mode {
	case filemode.Dir:
		return root.MkdirAll(name, 0o755)
	case filemode.Submodule:
		return nil
	}
	if size, ok := from.linkSame(name, entry); ok {
		if err := t.add(name, size); err != nil {
			return err
		}
		if _, err := d.get(path.Dir(name)); err != nil {
			return err
		}
		if from.checkouts.Link(path.Join(from.prev, name), path.Join(from.next, name)) == nil {
			return nil
		}
		// Written below instead, and counted again there.
		t.files--
		t.bytes -= size
	}
	// The blob's size comes from its object header; its content is not read yet.
	f, err := tree.TreeEntryFile(&entry)
	if err != nil {
		return err
	}
	if err := t.add(name, f.Size); err != nil {
		return err
	}
	dir, err := d.get(path.Dir(name))
	if err != nil {
		return err
	}
	if entry.Mode != filemode.Symlink && from.link(name, entry, f.Size) {
		return nil
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
		out, err := dir.OpenFile(path.Base(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, io.LimitReader(r, f.Size)); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	default:
		return fmt.Errorf("unsupported file mode %s", entry.Mode)
	}
}
