package source_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// TestCheckoutStaysInItsDirectory fetches commits whose trees try to write outside the
// checkout: a symlink to a directory elsewhere followed by a directory of the same name
// (a tree git itself would refuse, so a hostile one), and a symlink that climbs out with
// "..", with a file under it. The fetch is refused, naming the path, and nothing is
// written outside.
func TestCheckoutStaysInItsDirectory(t *testing.T) {
	outside := t.TempDir()
	repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "hostile.git"))
	r, err := git.PlainOpen(repo.Path)
	if err != nil {
		t.Fatal(err)
	}
	store := func(o interface {
		Encode(plumbing.EncodedObject) error
	}) plumbing.Hash {
		t.Helper()
		obj := r.Storer.NewEncodedObject()
		if err := o.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := r.Storer.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blob := func(content string) plumbing.Hash {
		t.Helper()
		obj := r.Storer.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		h, err := r.Storer.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	file := blob("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	inner := store(&object.Tree{Entries: []object.TreeEntry{{Name: "x.yaml", Mode: filemode.Regular, Hash: file}}})
	sig := object.Signature{Name: "Attacker", Email: "attacker@example.com", When: time.Now()}

	for _, c := range []struct {
		what    string
		entries []object.TreeEntry
	}{
		{"a symlink elsewhere, then a directory of its name", []object.TreeEntry{
			{Name: "evil", Mode: filemode.Symlink, Hash: blob(outside)},
			{Name: "evil", Mode: filemode.Dir, Hash: inner},
		}},
		{"a symlink that climbs out, then a directory of its name", []object.TreeEntry{
			{Name: "up", Mode: filemode.Symlink, Hash: blob("../../../../../../../../../../../../.." + outside)},
			{Name: "up", Mode: filemode.Dir, Hash: inner},
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			apps := store(&object.Tree{Entries: c.entries})
			root := store(&object.Tree{Entries: []object.TreeEntry{{Name: "apps", Mode: filemode.Dir, Hash: apps}}})
			commit := store(&object.Commit{Author: sig, Committer: sig, Message: c.what, TreeHash: root})
			if err := r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), commit)); err != nil {
				t.Fatal(err)
			}
			spec := source.Spec{URL: repo.FileURL(), Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}
			_, err := source.NewGitFetcher().Fetch(t.Context(), spec)
			if err == nil || !strings.Contains(err.Error(), "write apps/") {
				t.Errorf("fetch: %v, want it refused naming the path", err)
			}
			entries, rerr := os.ReadDir(outside)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(entries) != 0 {
				t.Errorf("the checkout wrote %d entries outside its directory, such as %s", len(entries), entries[0].Name())
			}
		})
	}
}
