package policy

import (
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// deployment is a Deployment that passes the built-in library but for its image.
func gateDeployment(image string) map[string]any {
	return map[string]any{
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
	}
}

// TestSets runs the policy sets on the real engine and built-in library, as driftless run
// wires them: the reconciler's gate evaluates a named set, the guard its guard.policySet.
func TestSets(t *testing.T) {
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
	sets := NewSets()
	if err := sets.Load(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}

	results, err := sets.EvaluateAll(t.Context(), "production", []map[string]any{gateDeployment("registry.example.com/web:1.2.3"), gateDeployment("registry.example.com/web:latest")})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Denied() {
		t.Fatalf("results = %+v, want two, the first allowed", results)
	}
	if d := results[1].Denials(); len(d) != 1 || d[0].RuleID() != "images_pinned" || results[1].Object.String() != "Deployment production/web" {
		t.Fatalf("second result = %+v, want one images_pinned on Deployment production/web", results[1])
	}
	if _, err := sets.EvaluateAll(t.Context(), "staging", nil); err == nil || !strings.Contains(err.Error(), `policy set "staging" is not configured`) {
		t.Errorf("unknown set: err = %v", err)
	}

	// The guard's evaluator serves guard.policySet.
	res, err := sets.Evaluate(t.Context(), gateDeployment("registry.example.com/web:latest"), EvalContext{})
	if err != nil || !res.Denied() {
		t.Errorf("guard evaluation: denied=%v err=%v, want a denial", res.Denied(), err)
	}
	// A set that was never loaded fails closed.
	if _, err := NewSets().Evaluate(t.Context(), map[string]any{}, EvalContext{}); err == nil {
		t.Error("evaluation without any policy set succeeded")
	}
}

// TestSetsKeepTheLastGoodSet: a reload whose policy does not compile names the set and leaves
// the compiled set serving.
func TestSetsKeepTheLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	cfg := func(path string) *v1alpha1.DriftlessConfig {
		t.Helper()
		c, err := v1alpha1.Decode([]byte("apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\nguard: {policySet: prod}\npolicySets:\n  - name: prod\n    paths: [" + path + "]\n"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := writeFile(t, dir, "good.rego", "package main\n\ndeny contains \"no\" if { input.kind == \"Secret\" }\n")
	bad := writeFile(t, dir, "bad.rego", "package main\n\ndeny contains \"no\" if {\n")
	sets := NewSets()
	if err := sets.Load(t.Context(), cfg(good)); err != nil {
		t.Fatal(err)
	}
	err := sets.Load(t.Context(), cfg(bad))
	if err == nil || !strings.Contains(err.Error(), `load policy set "prod"`) {
		t.Fatalf("broken reload: err = %v, want one naming the set", err)
	}
	res, err := sets.Evaluate(t.Context(), map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}}, EvalContext{})
	if err != nil || !res.Denied() {
		t.Errorf("after a broken reload: denied=%v err=%v, want the last good set to deny", res.Denied(), err)
	}
}
