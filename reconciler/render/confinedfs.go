package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned by every write to a confinedFS.
var errReadOnly = errors.New("read-only file system")

// confinedFS is kustomize's on-disk file system limited to one directory
// tree: every path, after resolving symlinks, must lie under root, and
// nothing may be written.
type confinedFS struct {
	disk filesys.FileSystem
	root string
	// rec, when not nil, notes every path looked at.
	rec *recorder
}

var _ filesys.FileSystem = confinedFS{}

// newConfinedFS returns a file system confined to root, an absolute path
// with symlinks already resolved.
func newConfinedFS(root string) confinedFS {
	return confinedFS{disk: filesys.MakeFsOnDisk(), root: root}
}

// confine returns p as an absolute path, or an error wrapping
// ErrOutsideRoot when it, or the target of a symlink on it, lies outside
// the root.
func (c confinedFS) confine(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	resolved := resolveExisting(abs)
	rel, err := filepath.Rel(c.root, resolved)
	if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
		return "", fmt.Errorf("%s: %w", p, ErrOutsideRoot)
	}
	return abs, nil
}

// resolveExisting resolves symlinks in the longest existing prefix of the
// absolute path p and appends the rest unchanged.
func resolveExisting(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p
	}
	return filepath.Join(resolveExisting(parent), filepath.Base(p))
}

// Create refuses: the file system is read-only.
func (c confinedFS) Create(p string) (filesys.File, error) {
	return nil, fmt.Errorf("create %s: %w", p, errReadOnly)
}

// Mkdir refuses: the file system is read-only.
func (c confinedFS) Mkdir(p string) error { return fmt.Errorf("mkdir %s: %w", p, errReadOnly) }

// MkdirAll refuses: the file system is read-only.
func (c confinedFS) MkdirAll(p string) error { return fmt.Errorf("mkdir %s: %w", p, errReadOnly) }

// RemoveAll refuses: the file system is read-only.
func (c confinedFS) RemoveAll(p string) error { return fmt.Errorf("remove %s: %w", p, errReadOnly) }

// WriteFile refuses: the file system is read-only.
func (c confinedFS) WriteFile(p string, _ []byte) error {
	return fmt.Errorf("write %s: %w", p, errReadOnly)
}

// Open opens a file under the root for reading.
func (c confinedFS) Open(p string) (filesys.File, error) {
	abs, err := c.confine(p)
	if err != nil {
		return nil, err
	}
	c.rec.noteAbs(c.root, abs, false)
	f, _, err := openRegular(func(flag int) (*os.File, error) { return os.OpenFile(abs, flag, 0) })
	if err != nil {
		// Not a nil *os.File in a non-nil filesys.File.
		return nil, err
	}
	return f, nil
}

// IsDir reports whether p is a directory under the root.
func (c confinedFS) IsDir(p string) bool {
	abs, err := c.confine(p)
	if err == nil {
		c.rec.noteAbs(c.root, abs, false)
	}
	return err == nil && c.disk.IsDir(abs)
}

// ReadDir lists a directory under the root.
func (c confinedFS) ReadDir(p string) ([]string, error) {
	abs, err := c.confine(p)
	if err != nil {
		return nil, err
	}
	c.rec.noteAbs(c.root, abs, true)
	return c.disk.ReadDir(abs)
}

// CleanedAbs is filesys.FileSystem's CleanedAbs for paths under the root.
func (c confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	abs, err := c.confine(p)
	if err != nil {
		return "", "", err
	}
	c.rec.noteAbs(c.root, abs, false)
	if _, err := filepath.EvalSymlinks(abs); err != nil {
		// The on-disk implementation exits the process on some missing
		// paths; report them instead.
		return "", "", fmt.Errorf("%s: %w", p, err)
	}
	return c.disk.CleanedAbs(abs)
}

// Exists reports whether p exists under the root.
func (c confinedFS) Exists(p string) bool {
	abs, err := c.confine(p)
	if err == nil {
		c.rec.noteAbs(c.root, abs, false)
	}
	return err == nil && c.disk.Exists(abs)
}

// Glob returns the matches of pattern that lie under the root.
func (c confinedFS) Glob(pattern string) ([]string, error) {
	if abs, err := filepath.Abs(pattern); err == nil {
		c.rec.noteGlob(c.root, abs)
	}
	matches, err := c.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		if _, err := c.confine(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ReadFile reads a file under the root.
func (c confinedFS) ReadFile(p string) ([]byte, error) {
	abs, err := c.confine(p)
	if err != nil {
		return nil, err
	}
	c.rec.noteAbs(c.root, abs, false)
	return readRegular(func(flag int) (*os.File, error) { return os.OpenFile(abs, flag, 0) })
}

// Walk walks a tree under the root, skipping entries that resolve outside
// it.
func (c confinedFS) Walk(p string, walkFn filepath.WalkFunc) error {
	abs, err := c.confine(p)
	if err != nil {
		return err
	}
	c.rec.noteAbs(c.root, abs, true)
	return c.disk.Walk(abs, walkFn)
}
