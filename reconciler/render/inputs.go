package render

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Input is one path of the repository that a render depended on.
type Input struct {
	// Path is slash-separated and relative to the repository root, "." for the root.
	Path string
	// Listed is true when the render listed or walked the directory at Path, so that
	// everything under it counts. Otherwise only what Path is counts: absent, a directory,
	// or a file with its content.
	Listed bool
}

// Inputs is everything a render depended on: rendering the same paths with the same
// content and the same limits gives the same objects.
type Inputs struct {
	// Paths are the paths the render looked at, sorted, each once.
	Paths []Input
	// Complete is false when the render looked at something it cannot name by a path
	// under the root (such as a path outside the root that a symlink leads back into);
	// such a render must not be reused for other content.
	Complete bool
}

// recorder notes the paths a render looks at and, for a flat kustomization, what
// [Rendered.Update] needs. The zero value is not usable; a nil *recorder notes nothing.
type recorder struct {
	mu         sync.Mutex
	paths      map[string]bool
	incomplete bool
	flat       *flatKustomization
}

func newRecorder() *recorder { return &recorder{paths: map[string]bool{}} }

// note records the root-relative path rel; listed when its directory listing counts.
func (r *recorder) note(rel string, listed bool) {
	if r == nil {
		return
	}
	rel = path.Clean(filepath.ToSlash(rel))
	r.mu.Lock()
	defer r.mu.Unlock()
	if rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
		r.incomplete = true
		return
	}
	r.paths[rel] = r.paths[rel] || listed
}

// noteAbs records the absolute path abs, which must lie under root.
func (r *recorder) noteAbs(root, abs string, listed bool) {
	if r == nil {
		return
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
		r.mu.Lock()
		r.incomplete = true
		r.mu.Unlock()
		return
	}
	r.note(rel, listed)
}

// noteGlob records the directory a glob pattern (an absolute path) lists: its longest
// prefix without a pattern character.
func (r *recorder) noteGlob(root, pattern string) {
	dir := pattern
	for strings.ContainsAny(dir, `*?[\`) {
		dir = filepath.Dir(dir)
	}
	r.noteAbs(root, dir, true)
}

// inputs returns what was recorded.
func (r *recorder) inputs() Inputs {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := Inputs{Paths: make([]Input, 0, len(r.paths)), Complete: !r.incomplete}
	for p, listed := range r.paths {
		in.Paths = append(in.Paths, Input{Path: p, Listed: listed})
	}
	sort.Slice(in.Paths, func(i, j int) bool { return in.Paths[i].Path < in.Paths[j].Path })
	return in
}

// repoRoot is the repository root, confined by [os.Root], noting every path read through
// it.
type repoRoot struct {
	*os.Root
	rec *recorder
}

// Stat is [os.Root.Stat], noted.
func (r repoRoot) Stat(name string) (fs.FileInfo, error) {
	r.rec.note(name, false)
	return r.Root.Stat(name)
}

// Lstat is [os.Root.Lstat], noted.
func (r repoRoot) Lstat(name string) (fs.FileInfo, error) {
	r.rec.note(name, false)
	return r.Root.Lstat(name)
}

// ReadFile is [os.Root.ReadFile] of a regular file, noted.
func (r repoRoot) ReadFile(name string) ([]byte, error) {
	r.rec.note(name, false)
	return readRegular(func(flag int) (*os.File, error) { return r.Root.OpenFile(name, flag, 0) })
}

// walkDir is [fs.WalkDir] of dir, noted as listed.
func (r repoRoot) walkDir(dir string, fn fs.WalkDirFunc) error {
	r.rec.note(dir, true)
	return fs.WalkDir(r.Root.FS(), dir, fn)
}
