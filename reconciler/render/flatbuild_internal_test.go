package render

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestChunkedBuildEqualsKustomize: a flat kustomization built in chunks gives what
// kustomize's own build of it gives (the same objects in the same order, the same error,
// the same inputs) for every shape kustomize orders or refuses by rules of its own: kinds
// it applies first or last, cluster-scoped objects, custom resources, namespaces unset and
// "default", Lists, local-config objects, empty files, more files than one chunk holds,
// and the same object declared twice in different chunks.
func TestChunkedBuildEqualsKustomize(t *testing.T) {
	obj := func(apiVersion, kind, namespace, name string) string {
		s := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
		if namespace != "" {
			s += "  namespace: " + namespace + "\n"
		}
		return s
	}
	// many has more files than one chunk (f037.yaml is in the first, f080.yaml in the
	// third), each with objects of several kinds, so that
	// every chunk holds objects that sort before and after those of other chunks.
	many := func(extra map[string]string) map[string]string {
		files := map[string]string{}
		var list []string
		kinds := []struct{ apiVersion, kind string }{
			{"apps/v1", "Deployment"}, {"v1", "ConfigMap"}, {"v1", "Service"}, {"v1", "Secret"},
			{"example.com/v1", "Widget"}, {"networking.k8s.io/v1", "Ingress"},
		}
		for i := range 150 {
			name := fmt.Sprintf("f%03d.yaml", (i*37)%150)
			if i%3 == 0 {
				name = fmt.Sprintf("sub/d%d/%s", i%4, name)
			}
			var docs []string
			for j, k := range kinds[i%len(kinds):] {
				ns := []string{"team", "", "default", "a-team"}[(i+j)%4]
				docs = append(docs, obj(k.apiVersion, k.kind, ns, fmt.Sprintf("o%03d-%d", (i*53)%150, j)))
			}
			switch i {
			case 5:
				docs = append(docs, obj("v1", "Namespace", "", "team"), obj("v1", "Namespace", "", "a-team"))
			case 17:
				docs = append(docs, obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"))
			case 40:
				docs = append(docs, obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "guard"),
					obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", "defaults"))
			case 41:
				docs = append(docs, obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader"),
					obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "reader"))
			case 70:
				docs = append(docs, "apiVersion: v1\nkind: List\nitems:\n"+
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: listed-1, namespace: team}}\n"+
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: listed-0}}\n")
			case 90:
				docs = append(docs, obj("v1", "ConfigMap", "team", "local")+"  annotations:\n    config.kubernetes.io/local-config: \"true\"\n")
			case 100:
				docs = []string{"# nothing here\n"}
			case 120:
				docs = append(docs, obj("v1", "ServiceAccount", "team", "same-name"), obj("v1", "ServiceAccount", "a-team", "same-name"))
			}
			files["k/"+name] = strings.Join(docs, "---\n")
			list = append(list, name)
		}
		files["k/kustomization.yaml"] = "resources:\n- " + strings.Join(list, "\n- ") + "\n"
		for name, content := range extra {
			files[name] = content
		}
		return files
	}

	for _, c := range []struct {
		what    string
		files   map[string]string
		objects int
	}{
		{"many kinds over many chunks", many(nil), 534},
		{"one object declared in two chunks", many(map[string]string{
			"k/f037.yaml": obj("v1", "ConfigMap", "team", "twice"), "k/f080.yaml": obj("v1", "ConfigMap", "team", "twice"),
		}), 0},
		{"one object declared with namespace unset and default", many(map[string]string{
			"k/f037.yaml": obj("v1", "ConfigMap", "", "twice"), "k/f080.yaml": obj("v1", "ConfigMap", "default", "twice"),
		}), 0},
		{"a Namespace of another group", many(map[string]string{"k/f002.yaml": obj("example.com/v1", "Namespace", "", "odd")}), 531},
		{"a file listed twice", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n- a.yaml\n", "k/a.yaml": obj("v1", "ConfigMap", "team", "a"),
		}, 0},
		{"a file outside the kustomization", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n- ../b.yaml\n", "k/a.yaml": obj("v1", "ConfigMap", "team", "a"),
			"b.yaml": obj("v1", "ConfigMap", "team", "b"),
		}, 0},
		{"two kustomization files", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n", "k/kustomization.yml": "resources:\n- a.yaml\n",
			"k/a.yaml": obj("v1", "ConfigMap", "team", "a"),
		}, 0},
		{"a file kustomize cannot read as objects", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n- b.yaml\n", "k/a.yaml": obj("v1", "ConfigMap", "team", "a"),
			"k/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
		}, 0},
		{"an object without a name", map[string]string{
			"k/kustomization.yaml": "resources:\n- a.yaml\n", "k/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: team\n",
		}, 0},
	} {
		t.Run(c.what, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range c.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			build := func(chunked bool) (Rendered, error) {
				chunkedBuilds = chunked
				defer func() { chunkedBuilds = true }()
				return RenderWithInputs(t.Context(), root, "k", Limits{})
			}
			want, wantErr := build(false)
			got, gotErr := build(true)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("chunked build: error %v, kustomize's: %v", gotErr, wantErr)
			}
			if len(got.Objects) != len(want.Objects) {
				t.Fatalf("chunked build: %d objects, kustomize's: %d", len(got.Objects), len(want.Objects))
			}
			for i := range want.Objects {
				if !reflect.DeepEqual(got.Objects[i].Object, want.Objects[i].Object) {
					t.Fatalf("object %d: chunked build gave\n%v\nkustomize's\n%v", i, got.Objects[i].Object, want.Objects[i].Object)
				}
			}
			if !reflect.DeepEqual(got.Inputs, want.Inputs) {
				t.Errorf("chunked build read %v\nkustomize's %v", got.Inputs, want.Inputs)
			}
			// The chunked build ran, rather than falling back to kustomize's, exactly when
			// kustomize built the objects.
			or, err := os.OpenRoot(root)
			if err != nil {
				t.Fatal(err)
			}
			defer or.Close()
			r := repoRoot{Root: or}
			files, flat := flatResources(r, "k", soleKustomization(r, "k"))
			if flat {
				_, flat, err = buildFlat(t.Context(), r, "k", files)
			}
			if flat != (wantErr == nil) || err != nil {
				t.Errorf("chunked build used: %v (error %v), want %v", flat, err, wantErr == nil)
			}
			if len(want.Objects) != c.objects {
				t.Errorf("kustomize built %d objects (error %v), the case expects %d", len(want.Objects), wantErr, c.objects)
			}
		})
	}
}

// BenchmarkRenderFlatKustomization renders a kustomization that lists 1,000 ConfigMap files
// (the shape of the first-sync benchmark's repository), built in chunks and, for
// comparison, by kustomize in one run.
func BenchmarkRenderFlatKustomization(b *testing.B) {
	root := b.TempDir()
	dir := filepath.Join(root, "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var names []string
	for i := range 1000 {
		name := fmt.Sprintf("cm-%04d.yaml", i)
		data := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  namespace: team-%d\ndata:\n  index: \"%d\"\n  flags: alpha,beta,gamma\n", i, i%4, i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	k := "resources:\n- " + strings.Join(names, "\n- ") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, chunked := range []bool{true, false} {
		b.Run(map[bool]string{true: "chunked", false: "kustomize"}[chunked], func(b *testing.B) {
			chunkedBuilds = chunked
			defer func() { chunkedBuilds = true }()
			for range b.N {
				rd, err := RenderWithInputs(b.Context(), root, "apps", Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if len(rd.Objects) != 1000 {
					b.Fatalf("rendered %d objects, want 1000", len(rd.Objects))
				}
			}
		})
	}
}
