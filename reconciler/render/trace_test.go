package render_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// TestRenderTracesKustomizedObjects checks which file and line RenderWithOrigins names as the
// declaration of each object a kustomization builds.
func TestRenderTracesKustomizedObjects(t *testing.T) {
	const (
		deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
		configMap  = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"
		base       = "resources:\n  - configmap.yaml\n  - deployment.yaml\n"
	)
	type want struct{ kind, source string }
	tests := []struct {
		name    string
		files   map[string]string
		want    map[want]int
		wantDir string
	}{
		{
			name: "resource files of a base",
			files: map[string]string{
				"base/kustomization.yaml": base, "base/configmap.yaml": configMap, "base/deployment.yaml": deployment,
				"overlay/kustomization.yaml": "namespace: prod\nresources:\n  - ../base\n",
			},
			want: map[want]int{{"ConfigMap", "base/configmap.yaml"}: 1, {"Deployment", "base/deployment.yaml"}: 1},
		},
		{
			name: "a name prefix and the second document of a file",
			files: map[string]string{
				"base/kustomization.yaml": "resources:\n  - app.yaml\n", "base/app.yaml": configMap + "---\n" + deployment,
				"overlay/kustomization.yaml": "namePrefix: eu-\nresources:\n  - ../base\n",
			},
			want: map[want]int{{"ConfigMap", "base/app.yaml"}: 1, {"Deployment", "base/app.yaml"}: 8},
		},
		{
			name: "origin annotations",
			files: map[string]string{
				"base/kustomization.yaml": base, "base/configmap.yaml": configMap, "base/deployment.yaml": "# a comment\n" + deployment,
				"overlay/kustomization.yaml": "buildMetadata: [originAnnotations]\nresources:\n  - ../base\n",
			},
			want: map[want]int{{"ConfigMap", "base/configmap.yaml"}: 1, {"Deployment", "base/deployment.yaml"}: 2},
		},
		{
			name: "generated objects are declared by the kustomization file",
			files: map[string]string{
				"base/kustomization.yaml": "resources:\n  - deployment.yaml\n", "base/deployment.yaml": deployment,
				"overlay/kustomization.yaml": "resources:\n  - ../base\nconfigMapGenerator:\n  - name: settings\n    literals: [a=b]\n",
			},
			want: map[want]int{{"ConfigMap", "overlay/kustomization.yaml"}: 0, {"Deployment", "base/deployment.yaml"}: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := render.RenderWithOrigins(t.Context(), root, "overlay", render.Limits{})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if len(objs) != len(tt.want) {
				t.Fatalf("rendered %d objects, want %d", len(objs), len(tt.want))
			}
			for _, o := range objs {
				if !o.Origin.Kustomized || o.Origin.File != "overlay" {
					t.Errorf("%s: origin %+v, want the kustomization overlay", o.Object.GetKind(), o.Origin)
				}
				line, ok := tt.want[want{o.Object.GetKind(), o.Origin.Source}]
				if !ok || o.Origin.SourceLine != line {
					t.Errorf("%s %s: traced to %s:%d, want one of %v", o.Object.GetKind(), o.Object.GetName(), o.Origin.Source, o.Origin.SourceLine, tt.want)
				}
			}
		})
	}
}

// TestRenderPlainYAMLIsItsOwnSource: plain YAML objects are declared where they are read.
func TestRenderPlainYAMLIsItsOwnSource(t *testing.T) {
	objs, err := render.RenderWithOrigins(t.Context(), "testdata/repo", "plain/payment-gateway/deployment.yaml", render.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Origin.Source != o.Origin.File || o.Origin.SourceLine != o.Origin.Line {
			t.Errorf("plain YAML origin %+v: Source and SourceLine must be File and Line", o.Origin)
		}
	}
}
