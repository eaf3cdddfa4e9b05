package server

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// TestGate runs the reconciler's gate on the real engine and built-in library, as driftless
// run wires it.
func TestGate(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(`apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
policySets:
  - name: production
    environment: production
`))
	if err != nil {
		t.Fatal(err)
	}
	sets := policy.NewSets()
	if err := sets.Load(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	object := func(kind, namespace, image string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": kind,
			"metadata": map[string]any{"name": "web", "namespace": namespace, "labels": map[string]any{"app.kubernetes.io/name": "web"}},
			"spec": map[string]any{"replicas": int64(3), "template": map[string]any{"spec": map[string]any{
				"securityContext": map[string]any{"runAsNonRoot": true},
				"containers": []any{map[string]any{
					"name": "web", "image": image,
					"resources":      map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}, "limits": map[string]any{"cpu": "1", "memory": "128Mi"}},
					"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/", "port": int64(80)}},
				}},
			}}},
		}}
	}
	gate := Gate(sets)
	violations, err := gate.Check(t.Context(), "production", []*unstructured.Unstructured{
		object("Deployment", "production", "registry.example.com/web:1.2.3"),
		object("Deployment", "production", "registry.example.com/web:latest"),
		object("DaemonSet", "", "registry.example.com/web:latest"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Deployment production/web: images_pinned: ", "DaemonSet web: images_pinned: "}
	if len(violations) != len(want) {
		t.Fatalf("violations = %+v, want %d", violations, len(want))
	}
	for i, v := range violations {
		if !strings.HasPrefix(v.String(), want[i]) {
			t.Errorf("violation %d = %q, want prefix %q", i, v.String(), want[i])
		}
	}
	if _, err := gate.Check(t.Context(), "staging", nil); err == nil || !strings.Contains(err.Error(), `policy set "staging" is not configured`) {
		t.Errorf("unknown set: err = %v", err)
	}
}
