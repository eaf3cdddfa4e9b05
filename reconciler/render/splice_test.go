package render_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// TestUpdateEqualsFullRender: updating the render of a kustomization that only lists
// resource files, after some of them changed, gives exactly the objects a full render of the
// new files gives; where an update could not (a file's objects change ids, a file gains an
// object, the kustomization changes, or it is not flat) Update declines.
func TestUpdateEqualsFullRender(t *testing.T) {
	files := map[string]string{
		"k/kustomization.yaml": "resources:\n  - ns.yaml\n  - a.yaml\n  - b.yaml\n  - shared/role.yaml\n",
		"k/ns.yaml":            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
		"k/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: team\ndata:\n  x: \"1\"\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  namespace: team\nspec:\n  ports:\n    - port: 80\n",
		"k/b.yaml":                     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: team\ndata:\n  y: \"1\"\n",
		"k/shared/role.yaml":           "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n",
		"nonflat/kustomization.yaml":   "namePrefix: p-\nresources:\n  - b.yaml\n",
		"annotated/kustomization.yaml": "commonAnnotations:\n  owner: team\nresources:\n  - c.yaml\n",
		"annotated/c.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
		"nonflat/b.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  y: \"1\"\n",
	}
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		write(name, content)
	}
	full := func(path string) render.Rendered {
		t.Helper()
		rd, err := render.RenderWithInputs(t.Context(), root, path, render.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	objects := func(objs []*unstructured.Unstructured) []map[string]any {
		out := make([]map[string]any, len(objs))
		for i, o := range objs {
			out[i] = o.Object
		}
		return out
	}

	last := full("k")
	for _, c := range []struct {
		what    string
		changed map[string]string
		update  bool
	}{
		{"a file's data and labels", map[string]string{"k/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: team\n  labels:\n    tier: web\ndata:\n  x: \"2\"\n  z: \"3\"\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  namespace: team\nspec:\n  ports:\n    - port: 8080\n"}, true},
		{"two files, one in a subdirectory", map[string]string{
			"k/b.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: team\ndata:\n  y: \"2\"\n",
			"k/shared/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get]\n",
		}, true},
		{"a renamed object", map[string]string{"k/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b2\n  namespace: team\ndata:\n  y: \"2\"\n"}, false},
		{"an object moved to another namespace", map[string]string{"k/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b2\n  namespace: other\n"}, false},
		{"an added object", map[string]string{"k/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team2\n"}, false},
		{"the kustomization", map[string]string{"k/kustomization.yaml": "resources:\n  - ns.yaml\n  - a.yaml\n  - b.yaml\n  - shared/role.yaml\ncommonLabels:\n  app: x\n"}, false},
	} {
		var changed []string
		for name, content := range c.changed {
			write(name, content)
			changed = append(changed, name)
		}
		want := full("k")
		got, ok, err := last.Update(t.Context(), root, changed, render.Limits{})
		if err != nil {
			t.Fatalf("%s: update: %v", c.what, err)
		}
		if ok != c.update {
			t.Errorf("%s: update = %t, want %t", c.what, ok, c.update)
		}
		if ok && !reflect.DeepEqual(objects(got.Objects), objects(want.Objects)) {
			t.Errorf("%s: updated render differs from the full render:\n got %v\nwant %v", c.what, objects(got.Objects), objects(want.Objects))
		}
		if ok && reflect.DeepEqual(objects(got.Objects), objects(last.Objects)) {
			t.Errorf("%s: the update changed nothing", c.what)
		}
		last = want
	}

	// A kustomization with any other field is built in full.
	nonflat := full("nonflat")
	write("nonflat/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  y: \"3\"\n")
	if _, ok, _ := nonflat.Update(t.Context(), root, []string{"nonflat/b.yaml"}, render.Limits{}); ok {
		t.Error("a kustomization with namePrefix was updated file by file")
	}

	// So is one whose other fields keep the objects' ids.
	annotated := full("annotated")
	write("annotated/c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  y: \"3\"\n")
	if _, ok, _ := annotated.Update(t.Context(), root, []string{"annotated/c.yaml"}, render.Limits{}); ok {
		t.Error("a kustomization with commonAnnotations was updated file by file")
	}

	// Other limits, or a file that is no resource of the kustomization, decline; an update
	// over the rendered-size limit fails as the render would.
	write("k/kustomization.yaml", files["k/kustomization.yaml"])
	write("k/b.yaml", files["k/b.yaml"])
	last = full("k")
	if _, ok, _ := last.Update(t.Context(), root, []string{"k/b.yaml"}, render.Limits{MaxObjects: 10}); ok {
		t.Error("an update with other limits was made")
	}
	if _, ok, _ := last.Update(t.Context(), root, []string{"k/unlisted.yaml"}, render.Limits{}); ok {
		t.Error("an update for a file the kustomization does not list was made")
	}
	limits := render.Limits{MaxBytes: 1200}
	small, err := render.RenderWithInputs(t.Context(), root, "k", limits)
	if err != nil {
		t.Fatalf("render within %d bytes: %v", limits.MaxBytes, err)
	}
	write("k/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: team\ndata:\n  y: \""+strings.Repeat("x", 2000)+"\"\n")
	if _, _, err := small.Update(t.Context(), root, []string{"k/b.yaml"}, limits); !errors.Is(err, render.ErrLimitExceeded) {
		t.Errorf("update over limits.maxRenderedSize: error %v, want %v", err, render.ErrLimitExceeded)
	}
}
