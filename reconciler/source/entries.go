package source

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// EntryKind says what a path of an artifact is.
type EntryKind uint8

// Kinds of entries.
const (
	// EntryAbsent: nothing is at the path.
	EntryAbsent EntryKind = iota
	// EntryFile: a regular file.
	EntryFile
	// EntryDir: a directory.
	EntryDir
)

// String names the kind.
func (k EntryKind) String() string {
	switch k {
	case EntryFile:
		return "file"
	case EntryDir:
		return "dir"
	}
	return "absent"
}

// Entry is what one path of an artifact holds.
type Entry struct {
	// Kind says whether the path is a file, a directory or absent.
	Kind EntryKind
	// ID names the content: for Git the file mode and the blob hash of a file, or the tree
	// hash of a directory, which covers everything under it. Empty when absent.
	ID string
}

// Entries names the content of every path of an artifact without reading it, so that a
// cache can tell whether the files something read are the same in another revision. Make
// one with [TreeEntries]. A nil *Entries knows no path.
type Entries struct {
	paths map[string]Entry
	root  Entry
}

// Lookup returns what the slash-separated, root-relative path p ("." for the root) holds.
// It returns false when that cannot be told from names alone: p is, or lies under, a
// symbolic link or a submodule, or p leaves the root.
func (e *Entries) Lookup(p string) (Entry, bool) {
	if e == nil {
		return Entry{}, false
	}
	p = path.Clean(p)
	if p == "." {
		return e.root, true
	}
	if path.IsAbs(p) || p == ".." || len(p) > 2 && p[:3] == "../" {
		return Entry{}, false
	}
	if en, ok := e.paths[p]; ok {
		return en, en.Kind != entryOpaque
	}
	// Absent, unless it lies under a link: the nearest ancestor that exists decides.
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if en, ok := e.paths[d]; ok {
			return Entry{Kind: EntryAbsent}, en.Kind != entryOpaque
		}
	}
	return Entry{Kind: EntryAbsent}, true
}

// entryOpaque marks symbolic links and submodules, whose content is not theirs to name.
const entryOpaque EntryKind = 255

// TreeEntries lists the entries of commit's tree, reading tree objects only (no file
// content).
func TreeEntries(commit *object.Commit) (*Entries, error) {
	tree, err := commitTree(commit)
	if err != nil {
		return nil, err
	}
	e := &Entries{paths: map[string]Entry{}, root: Entry{Kind: EntryDir, ID: tree.Hash.String()}}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			return e, nil
		}
		if err != nil {
			return nil, fmt.Errorf("walk tree of commit %s: %w", commit.Hash, err)
		}
		switch entry.Mode {
		case filemode.Dir:
			e.paths[name] = Entry{Kind: EntryDir, ID: entry.Hash.String()}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			e.paths[name] = Entry{Kind: EntryFile, ID: entry.Mode.String() + " " + entry.Hash.String()}
		default:
			e.paths[name] = Entry{Kind: entryOpaque}
		}
	}
}
