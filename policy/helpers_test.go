package policy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// workloadKind is a workload kind the library covers, its compliant
// manifest under testdata/manifests and the path of its pod spec.
type workloadKind struct {
	kind, file, podSpec string
}

func workloadKinds() []workloadKind {
	return []workloadKind{
		{"Pod", "pod.yaml", "spec"},
		{"Deployment", "deployment.yaml", "spec.template.spec"},
		{"StatefulSet", "statefulset.yaml", "spec.template.spec"},
		{"DaemonSet", "daemonset.yaml", "spec.template.spec"},
		{"ReplicaSet", "replicaset.yaml", "spec.template.spec"},
		{"ReplicationController", "replicationcontroller.yaml", "spec.template.spec"},
		{"Job", "job.yaml", "spec.template.spec"},
		{"CronJob", "cronjob.yaml", "spec.jobTemplate.spec.template.spec"},
	}
}

// manifest reads testdata/manifests/<name> as one object.
func manifest(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "manifests", name))
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	return decodeYAML(t, b)
}

func decodeYAML(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return obj
}

// remove is a value for setPath that deletes the field instead.
type remove struct{}

// setPath sets a dotted path ("spec.template.spec.containers.0.image") in a
// deep copy of obj and returns the copy. Numeric segments index lists.
func setPath(t testing.TB, obj map[string]any, path string, value any) map[string]any {
	t.Helper()
	out := deepCopy(t, obj)
	segs := strings.Split(path, ".")
	var cur any = out
	for i, seg := range segs {
		last := i == len(segs)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if _, ok := value.(remove); ok {
					delete(c, seg)
				} else {
					c[seg] = value
				}
				return out
			}
			next, ok := c[seg]
			if !ok {
				next = map[string]any{}
				c[seg] = next
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx >= len(c) {
				t.Fatalf("set %s: bad index %q", path, seg)
			}
			if last {
				c[idx] = value
				return out
			}
			cur = c[idx]
		default:
			t.Fatalf("set %s: %q is not a map or list", path, seg)
		}
	}
	return out
}

func deepCopy(t testing.TB, obj map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("copy object: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("copy object: %v", err)
	}
	return out
}

// writeFile writes content to dir/name, creating parent directories.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// loadEngine returns an Engine loaded with opts or fails the test.
func loadEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e := New()
	if err := e.Load(context.Background(), opts); err != nil {
		t.Fatalf("load: %v", err)
	}
	return e
}

// firedRules returns the sorted, distinct built-in rule names (or
// "package.rule" for other packages) of a result's violations.
func firedRules(r Result) []string {
	var out []string
	for _, v := range r.Violations {
		name, ok := strings.CutPrefix(v.Package, libraryPackagePrefix)
		if !ok {
			name = v.Package + "." + v.Rule
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// messages returns the messages of a result's violations in order.
func messages(r Result) []string {
	out := make([]string, len(r.Violations))
	for i, v := range r.Violations {
		out[i] = v.Message
	}
	return out
}

// decodeJSONNumber decodes s keeping numbers as json.Number, as OPA does.
func decodeJSONNumber(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}
