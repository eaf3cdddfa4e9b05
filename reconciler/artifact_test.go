package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/reconciler/source"
)

// dirSource is a source that is not Git: it yields a directory the test writes, as an OCI
// or Helm source would yield an unpacked artifact.
type dirSource struct {
	mu  sync.Mutex
	art source.Artifact
	err error
}

func (d *dirSource) Fetch(context.Context) (source.Artifact, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.art, d.err
}

func (d *dirSource) Location() source.Location {
	return source.Location{URL: "oci://registry.example/config", Ref: "tag v1"}
}

func (d *dirSource) set(art source.Artifact, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.art, d.err = art, err
}

// TestSourceThatIsNotGit drives a reconciler with a source of another kind: the objects carry
// the artifact's revision, the status its metadata and location, and a refusal for a
// signature is a VerificationFailed that keeps the applied revision.
func TestSourceThatIsNotGit(t *testing.T) {
	g := newRig(t, unique("artifact"), overFile)
	namespace(t, g.src.Name)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apps", "a.yaml"), []byte(configMap(g.src.Name, "a", map[string]string{"x": "artifact"}, nil)), 0o644); err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:4f2e0c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	art := source.Artifact{Revision: digest, Dir: dir, Metadata: source.Metadata{Author: "CI <ci@example.com>", Subject: "release 1", Created: created}}
	ds := &dirSource{art: art}
	r, err := reconciler.NewWithSource(g.src, ds, g.opts)
	if err != nil {
		t.Fatal(err)
	}
	g.sync(r)

	cm := getConfigMap(t, g.src.Name, "a")
	if cm.Data["x"] != "artifact" || cm.Annotations[v1alpha1.AnnotationRevision] != digest {
		t.Errorf("configmap a = %s, revision %q; want x=artifact at %s", dataOf(cm), cm.Annotations[v1alpha1.AnnotationRevision], digest)
	}
	st := g.status()
	if st.Revision != digest || st.Author != art.Metadata.Author || st.Subject != "release 1" || !st.CommitTime.Equal(created) ||
		st.URL != "oci://registry.example/config" || st.Ref != "tag v1" {
		t.Errorf("status = %+v, want the artifact's revision, metadata and location", st)
	}

	ds.set(source.Artifact{}, fmt.Errorf("verify %s: signed by an unknown key: %w", digest, source.ErrVerification))
	if _, err := r.Sync(testCtx(t)); err == nil {
		t.Fatal("sync of a refused artifact succeeded")
	}
	st = g.status()
	if st.Result != reconciler.ResultVerificationFailed || st.Revision != digest {
		t.Errorf("after a refused artifact: result %s, revision %s; want %s and the last good revision %s", st.Result, st.Revision, reconciler.ResultVerificationFailed, digest)
	}
}

// TestRenderIsReusedForTheSameRevision: a revision names its content, so a sync of the revision
// rendered last reuses that render (a no-op sync renders nothing); a new revision is rendered.
func TestRenderIsReusedForTheSameRevision(t *testing.T) {
	g := newRig(t, unique("rerender"), overFile)
	namespace(t, g.src.Name)
	dir := t.TempDir()
	write := func(value string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "apps"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "apps", "a.yaml"), []byte(configMap(g.src.Name, "a", map[string]string{"x": value}, nil)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	ds := &dirSource{art: source.Artifact{Revision: "sha256:" + strings.Repeat("1", 64), Dir: dir}}
	r, err := reconciler.NewWithSource(g.src, ds, g.opts)
	if err != nil {
		t.Fatal(err)
	}
	g.sync(r)
	if got := getConfigMap(t, g.src.Name, "a").Data["x"]; got != "one" {
		t.Fatalf("x = %q after the first sync, want one", got)
	}

	// The directory changes under the same revision: only a render would see it.
	write("two")
	g.sync(r)
	if got := getConfigMap(t, g.src.Name, "a").Data["x"]; got != "one" {
		t.Errorf("x = %q after a sync of the same revision: it was rendered again, want the last render (one)", got)
	}

	ds.set(source.Artifact{Revision: "sha256:" + strings.Repeat("2", 64), Dir: dir}, nil)
	g.sync(r)
	if got := getConfigMap(t, g.src.Name, "a").Data["x"]; got != "two" {
		t.Errorf("x = %q after a new revision, want two: the last render was reused for another revision", got)
	}
}
