package render_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// writeObjects writes 1,000 Deployments and ConfigMaps as 100 files of 10
// documents each under dir, and returns the file names.
func writeObjects(b *testing.B, dir string) []string {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var names []string
	for f := range 100 {
		var s strings.Builder
		for d := range 10 {
			n := f*10 + d
			if d%2 == 0 {
				fmt.Fprintf(&s, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%04d\n  labels:\n    app: app-%04d\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: app-%04d\n  template:\n    metadata:\n      labels:\n        app: app-%04d\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app:%d\n          ports:\n            - containerPort: 8080\n", n, n, n, n, n)
			} else {
				fmt.Fprintf(&s, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-%04d\ndata:\n  LOG_LEVEL: info\n  INDEX: \"%d\"\n", n, n)
			}
		}
		name := fmt.Sprintf("objects-%03d.yaml", f)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// BenchmarkRenderPlainYAML renders 1,000 objects from 100 plain YAML files.
func BenchmarkRenderPlainYAML(b *testing.B) {
	root := b.TempDir()
	writeObjects(b, filepath.Join(root, "plain"))
	b.ResetTimer()
	for range b.N {
		objs, err := render.Render(b.Context(), root, "plain")
		if err != nil {
			b.Fatal(err)
		}
		if len(objs) != 1000 {
			b.Fatalf("rendered %d objects, want 1000", len(objs))
		}
	}
}

// BenchmarkRenderKustomize renders 1,000 objects through a kustomization
// that sets a namespace, a label and an image tag on all of them.
func BenchmarkRenderKustomize(b *testing.B) {
	root := b.TempDir()
	names := writeObjects(b, filepath.Join(root, "kust"))
	k := "namespace: bench\nlabels:\n  - pairs:\n      team: payments\nimages:\n  - name: registry.example.com/app\n    newTag: v2\nresources:\n  - " + strings.Join(names, "\n  - ") + "\n"
	if err := os.WriteFile(filepath.Join(root, "kust", "kustomization.yaml"), []byte(k), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		objs, err := render.Render(b.Context(), root, "kust")
		if err != nil {
			b.Fatal(err)
		}
		if len(objs) != 1000 {
			b.Fatalf("rendered %d objects, want 1000", len(objs))
		}
	}
}
