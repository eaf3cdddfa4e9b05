package render_test

import (
	"bytes"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// TestRenderFollowsSortOptionsQuietly: a kustomization's sortOptions order its objects, and
// kustomize prints nothing about it (it warned on every render that the order was set twice).
// Without sortOptions the objects keep the order of the resources.
func TestRenderFollowsSortOptionsQuietly(t *testing.T) {
	root := t.TempDir()
	const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: web:1}]}\n"
	const namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
	for _, dir := range []string{"sorted", "unsorted"} {
		writeFile(t, filepath.Join(root, dir, "deployment.yaml"), deployment)
		writeFile(t, filepath.Join(root, dir, "namespace.yaml"), namespace)
	}
	writeFile(t, filepath.Join(root, "sorted", "kustomization.yaml"), "resources: [deployment.yaml, namespace.yaml]\nsortOptions:\n  order: legacy\n")
	writeFile(t, filepath.Join(root, "unsorted", "kustomization.yaml"), "resources: [deployment.yaml, namespace.yaml]\n")

	var logged bytes.Buffer
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	for dir, want := range map[string]string{"sorted": "Namespace Deployment", "unsorted": "Deployment Namespace"} {
		objs, err := render.Render(t.Context(), root, dir)
		if err != nil {
			t.Fatalf("render %s: %v", dir, err)
		}
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.GetKind())
		}
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("render %s: kinds in order %s, want %s", dir, got, want)
		}
	}
	if logged.Len() > 0 {
		t.Errorf("the render logged:\n%s", logged.String())
	}
}
