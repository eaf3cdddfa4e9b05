package app

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// TestPolicySetsGate runs the reconciler's gate on the real engine and built-in library, as
// driftless run wires it.
func TestPolicySetsGate(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(`apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard: {policySet: production}
policySets:
  - name: production
    environment: production
`))
	if err != nil {
		t.Fatal(err)
	}
	sets := newPolicySets()
	if err := sets.load(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	deployment := func(image string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "production", "labels": map[string]any{"app.kubernetes.io/name": "web"}},
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

	violations, err := sets.Check(t.Context(), "production", []*unstructured.Unstructured{deployment("registry.example.com/web:1.2.3"), deployment("registry.example.com/web:latest")})
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) != 1 || violations[0].Object != "Deployment production/web" || violations[0].Rule != "images_pinned" {
		t.Fatalf("violations = %+v, want one images_pinned on Deployment production/web", violations)
	}
	if _, err := sets.Check(t.Context(), "staging", nil); err == nil || !strings.Contains(err.Error(), `policy set "staging" is not configured`) {
		t.Errorf("unknown set: err = %v", err)
	}

	// The guard's evaluator serves guard.policySet.
	res, err := sets.Evaluate(t.Context(), deployment("registry.example.com/web:latest").Object, policy.EvalContext{})
	if err != nil || !res.Denied() {
		t.Errorf("guard evaluation: denied=%v err=%v, want a denial", res.Denied(), err)
	}
	// A set that was never loaded fails closed.
	empty := newPolicySets()
	if _, err := empty.Evaluate(t.Context(), map[string]any{}, policy.EvalContext{}); err == nil {
		t.Error("evaluation without any policy set succeeded")
	}
}
