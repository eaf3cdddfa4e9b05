package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// FuzzEvaluate feeds arbitrary JSON objects through the whole built-in
// library and a conftest policy: evaluation must never panic, never fail on
// a well-formed JSON object, and always return sorted violations.
func FuzzEvaluate(f *testing.F) {
	manifests, err := filepath.Glob(filepath.Join("testdata", "manifests", "*.yaml"))
	if err != nil {
		f.Fatalf("glob manifests: %v", err)
	}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatalf("read %s: %v", m, err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			f.Fatalf("convert %s: %v", m, err)
		}
		f.Add(j)
	}
	for _, s := range []string{
		`{}`,
		`null`,
		`{"kind": 7, "metadata": "x", "spec": []}`,
		`{"kind": "Pod", "spec": {"containers": "app", "initContainers": {"a": {"image": 1}}, "volumes": [null, {"hostPath": null}]}}`,
		`{"kind": "Deployment", "spec": {"replicas": "3", "template": {"spec": {"containers": [{"image": ""}, {"image": "@"}, {"image": ":"}, {"image": "/"}, {"image": "a:b:c@d@e"}]}}}}`,
		`{"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"securityContext": {"runAsUser": 0}, "containers": [{"securityContext": {"runAsNonRoot": "yes"}}]}}}}}}`,
		`{"apiVersion": "v1", "kind": "Secret", "data": "not a map", "stringData": 5}`,
		`{"kind": "Deployment", "metadata": {"namespace": ["shop"], "labels": {"app.kubernetes.io/name": 1}}, "spec": {"replicas": 1e400}}`,
	} {
		f.Add([]byte(s))
	}

	e := loadEngine(f, Options{
		Parameters: map[string]any{
			"allowed_registries":    []any{"ghcr.io/acme", "registry.example.com"},
			"production_namespaces": []any{"shop"},
		},
		Paths: []string{filepath.Join("testdata", "conftest")},
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		var obj map[string]any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return
		}
		// A bound, not a timing assertion: a hung evaluation is a bug, and
		// failing turns the input into a reproducible corpus entry.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		res, err := e.Evaluate(ctx, obj, EvalContext{Environment: "production", Operation: "CREATE"})
		if err != nil {
			t.Fatalf("Evaluate(%s): %v", data, err)
		}
		sorted := slices.Clone(res.Violations)
		sortViolations(sorted)
		for i := range sorted {
			if sorted[i].Message != res.Violations[i].Message || sorted[i].Package != res.Violations[i].Package {
				t.Fatalf("violations not sorted: %v", res.Violations)
			}
		}
	})
}
