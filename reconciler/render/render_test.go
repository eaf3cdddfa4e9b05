package render_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/reconciler/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden renders objects as YAML documents, each preceded by its origin.
func golden(t *testing.T, objs []render.Object) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object.Object)
		if err != nil {
			t.Fatalf("marshal %s: %v", o.Object.GetName(), err)
		}
		fmt.Fprintf(&b, "---\n# origin: %s (document %d)\n%s", o.Origin, o.Origin.Document, y)
	}
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		path string
		want int
	}{
		{name: "base", path: "apps/payment-gateway/base", want: 2},
		{name: "staging", path: "apps/payment-gateway/overlays/staging", want: 2},
		{name: "production", path: "apps/payment-gateway/overlays/production", want: 2},
		{name: "plain", path: "plain/payment-gateway", want: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.RenderWithOrigins(t.Context(), "testdata/repo", tc.path, render.Limits{})
			if err != nil {
				t.Fatalf("render %s: %v", tc.path, err)
			}
			if len(objs) != tc.want {
				t.Fatalf("rendered %d objects, want %d", len(objs), tc.want)
			}
			got := golden(t, objs)
			file := filepath.Join("testdata", "golden", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatalf("update golden file: %v", err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("render %s differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", tc.path, file, got, want)
			}
		})
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %d objects", kind, name, len(objs))
	return nil
}

func TestRenderOverlays(t *testing.T) {
	tests := []struct {
		path      string
		namespace string
		replicas  int64
		image     string
		logLevel  string
	}{
		{path: "apps/payment-gateway/base", namespace: "", replicas: 1, image: "registry.example.com/payment-gateway:1.4.2", logLevel: "info"},
		{path: "apps/payment-gateway/overlays/staging", namespace: "payments-staging", replicas: 2, image: "registry.example.com/payment-gateway:1.4.2", logLevel: "info"},
		{path: "apps/payment-gateway/overlays/production", namespace: "payments", replicas: 6, image: "registry.example.com/payment-gateway:1.4.1", logLevel: "warn"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			objs, err := render.Render(t.Context(), "testdata/repo", tc.path)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			d := find(t, objs, "Deployment", "payment-gateway")
			if d.GetNamespace() != tc.namespace {
				t.Errorf("namespace = %q, want %q", d.GetNamespace(), tc.namespace)
			}
			if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != tc.replicas {
				t.Errorf("replicas = %d, want %d", r, tc.replicas)
			}
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			if len(containers) != 1 || containers[0].(map[string]any)["image"] != tc.image {
				t.Errorf("containers = %v, want one with image %s", containers, tc.image)
			}
			if sel, _, _ := unstructured.NestedString(d.Object, "spec", "selector", "matchLabels", "app.kubernetes.io/name"); sel != "payment-gateway" {
				t.Errorf("selector label = %q, want payment-gateway", sel)
			}
			cm := find(t, objs, "ConfigMap", "payment-gateway")
			if got, _, _ := unstructured.NestedString(cm.Object, "data", "LOG_LEVEL"); got != tc.logLevel {
				t.Errorf("LOG_LEVEL = %q, want %q", got, tc.logLevel)
			}
			// Deep copy panics on any value that is not JSON-compatible.
			for _, o := range objs {
				_ = o.DeepCopy()
			}
		})
	}
}

func TestRenderPlainYAML(t *testing.T) {
	objs, err := render.RenderWithOrigins(t.Context(), "testdata/repo", "plain/payment-gateway", render.Limits{})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	tests := []struct {
		kind, name string
		origin     render.Origin
	}{
		{kind: "ConfigMap", name: "payment-gateway", origin: render.Origin{File: "plain/payment-gateway/config/configmap.yml", Document: 0, Line: 1, Source: "plain/payment-gateway/config/configmap.yml", SourceLine: 1}},
		{kind: "Deployment", name: "payment-gateway", origin: render.Origin{File: "plain/payment-gateway/deployment.yaml", Document: 0, Line: 3, Source: "plain/payment-gateway/deployment.yaml", SourceLine: 3}},
		{kind: "Service", name: "payment-gateway", origin: render.Origin{File: "plain/payment-gateway/deployment.yaml", Document: 1, Line: 27, Source: "plain/payment-gateway/deployment.yaml", SourceLine: 27}},
		{kind: "ConfigMap", name: "vendored", origin: render.Origin{File: "plain/payment-gateway/vendored/cm.yaml", Document: 0, Line: 1, Source: "plain/payment-gateway/vendored/cm.yaml", SourceLine: 1}},
	}
	if len(objs) != len(tests) {
		t.Fatalf("rendered %d objects, want %d (hidden directories and kustomization files must be skipped)", len(objs), len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			o := objs[i]
			if o.Object.GetKind() != tc.kind || o.Object.GetName() != tc.name {
				t.Fatalf("object %d is %s %s, want %s %s", i, o.Object.GetKind(), o.Object.GetName(), tc.kind, tc.name)
			}
			if o.Origin != tc.origin {
				t.Fatalf("origin = %+v, want %+v", o.Origin, tc.origin)
			}
		})
	}

	// Scalars keep Kubernetes' meaning: timestamps and "on" stay strings,
	// integers are int64, anchors and aliases are expanded.
	cm := objs[0].Object
	for key, want := range map[string]string{"SETTLEMENT_CUTOFF": "2024-01-01", "FEATURE_3DS": "on"} {
		if got, _, err := unstructured.NestedString(cm.Object, "data", key); err != nil || got != want {
			t.Errorf("data.%s = %q (%v), want %q", key, got, err, want)
		}
	}
	if port, ok := objs[3].Object.Object["data"].(map[string]any)["port"].(int64); !ok || port != 8080 {
		t.Errorf("data.port = %#v, want int64 8080", objs[3].Object.Object["data"].(map[string]any)["port"])
	}
	if sel, _, _ := unstructured.NestedString(objs[1].Object.Object, "spec", "selector", "matchLabels", "app.kubernetes.io/name"); sel != "payment-gateway" {
		t.Errorf("aliased selector = %q, want payment-gateway", sel)
	}
}

func TestRenderKustomizeOrigin(t *testing.T) {
	objs, err := render.RenderWithOrigins(t.Context(), "testdata/repo", "apps/payment-gateway/overlays/production/", render.Limits{})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for i, o := range objs {
		want := render.Origin{File: "apps/payment-gateway/overlays/production", Document: i, Kustomized: true,
			Source: "apps/payment-gateway/base/" + strings.ToLower(o.Object.GetKind()) + ".yaml", SourceLine: 1}
		if o.Origin != want {
			t.Errorf("origin of %s = %+v, want %+v", o.Object.GetName(), o.Origin, want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	root, err := filepath.Abs("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		wantIs   error
		contains []string
	}{
		{name: "malformed YAML", path: "malformed", contains: []string{"malformed/deploy.yaml:12: could not find expected ':'"}},
		{name: "missing name", path: "missing-name", contains: []string{"missing-name/configmap.yaml:6: ConfigMap is missing metadata.name"}},
		{name: "not a mapping", path: "not-a-mapping", contains: []string{"not-a-mapping/list.yaml:1: document is a sequence"}},
		{name: "single malformed file", path: "malformed/deploy.yaml", contains: []string{"malformed/deploy.yaml:12: could not find expected ':'"}},
		{name: "kustomize error", path: "kustomize-error", contains: []string{"kustomize build kustomize-error: ", "kustomize-error/deployment.yaml"}},
		{name: "invalid kustomization", path: "bad-kustomization", contains: []string{"bad-kustomization/kustomization.yaml: ", "resourcez"}},
		{name: "remote https resource", path: "remote-https", wantIs: render.ErrRemoteReference,
			contains: []string{`remote-https/kustomization.yaml: resources entry "https://raw.githubusercontent.com/example/payments/main/deploy.yaml"`}},
		{name: "remote git base", path: "remote-git", wantIs: render.ErrRemoteReference, contains: []string{"remote-git/kustomization.yaml: resources entry"}},
		{name: "remote ssh component", path: "remote-ssh", wantIs: render.ErrRemoteReference, contains: []string{"remote-ssh/kustomization.yaml: components entry"}},
		{name: "remote reference in a base", path: "nested-remote", wantIs: render.ErrRemoteReference, contains: []string{"kustomize build nested-remote: remote-https/kustomization.yaml"}},
		{name: "base outside root", path: "escape", wantIs: render.ErrOutsideRoot, contains: []string{`escape/kustomization.yaml: resources entry "../../outside-root"`}},
		{name: "patch outside root", path: "patch-escape", wantIs: render.ErrOutsideRoot, contains: []string{"patch-escape/kustomization.yaml: patches.path entry"}},
		{name: "absolute resource", path: "absolute", wantIs: render.ErrOutsideRoot, contains: []string{`"/etc/hostname"`}},
		{name: "helm", path: "helm", contains: []string{"helm charts are not supported"}},
		{name: "namespace field renames a Namespace", path: "namespace-rename/overlay", wantIs: render.ErrNamespaceRenamed,
			contains: []string{"namespace-rename/overlay/kustomization.yaml sets namespace: production", "Namespace team-data (namespace-rename/base/team-ns.yaml)"}},
		{name: "render path outside root", path: "../outside-root", wantIs: render.ErrOutsideRoot},
		{name: "absolute render path", path: "/etc", wantIs: render.ErrOutsideRoot},
		{name: "missing render path", path: "does-not-exist", wantIs: os.ErrNotExist, contains: []string{"render does-not-exist: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.Render(t.Context(), root, tc.path)
			if err == nil {
				t.Fatalf("render %s = %d objects, want error", tc.path, len(objs))
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("error %q shows the absolute repository root; want repository-relative paths", err)
			}
		})
	}
}

func TestRenderNamespaceDeclaredWithItsField(t *testing.T) {
	// The common layout: the overlay declares the Namespace its namespace field names.
	dir := t.TempDir()
	for name, content := range map[string]string{
		"overlay/kustomization.yaml": "namespace: production\nresources:\n- namespace.yaml\n- ../base\n",
		"overlay/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: production\n",
		"base/kustomization.yaml":    "resources:\n- app.yaml\n",
		"base/app.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
	} {
		writeFile(t, filepath.Join(dir, name), content)
	}
	objs, err := render.Render(t.Context(), dir, "overlay")
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if len(objs) != 2 || find(t, objs, "Namespace", "production") == nil {
		t.Errorf("rendered %d objects, want the Namespace production and the ConfigMap", len(objs))
	}
}

func TestRenderLimits(t *testing.T) {
	dir := t.TempDir()
	var many strings.Builder
	for i := range 5 {
		fmt.Fprintf(&many, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: a\ndata:\n  k: %q\n", i, strings.Repeat("x", 100))
	}
	writeFile(t, filepath.Join(dir, "plain/many.yaml"), many.String())
	writeFile(t, filepath.Join(dir, "kustomized/kustomization.yaml"), "resources:\n- many.yaml\n")
	writeFile(t, filepath.Join(dir, "kustomized/many.yaml"), many.String())
	tests := []struct {
		name, path string
		limits     render.Limits
		want       string
	}{
		{"plain objects", "plain", render.Limits{MaxObjects: 4}, "plain/many.yaml: more than 4 objects, over the source's limits.maxObjects of 4"},
		{"plain bytes", "plain", render.Limits{MaxBytes: 512}, "reading plain/many.yaml: more than 512 B rendered, over the source's limits.maxRenderedSize of 512 B"},
		{"kustomized objects", "kustomized", render.Limits{MaxObjects: 4}, "kustomize build kustomized: more than 4 objects, over the source's limits.maxObjects of 4"},
		{"kustomized bytes", "kustomized", render.Limits{MaxBytes: 512}, "kustomize build kustomized: more than 512 B rendered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render.RenderLimited(t.Context(), dir, tc.path, tc.limits)
			if !errors.Is(err, render.ErrLimitExceeded) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("error = %v, want ErrLimitExceeded containing %q", err, tc.want)
			}
		})
	}
	// At the limits, the render passes.
	for _, path := range []string{"plain", "kustomized"} {
		objs, err := render.RenderLimited(t.Context(), dir, path, render.Limits{MaxObjects: 5, MaxBytes: 4096})
		if err != nil || len(objs) != 5 {
			t.Errorf("render %s at the limits = %d objects, %v; want 5", path, len(objs), err)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 1024: "1 KiB", 16 << 20: "16 MiB", 300_000_000: "286.1 MiB", 5 << 30: "5 GiB"} {
		if got := render.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRenderSymlinks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "kustomization.yaml"), []byte("resources: [cm.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mustMkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustSymlink := func(target, link string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustMkdir("plain-leak")
	mustSymlink(filepath.Join(outside, "cm.yaml"), "plain-leak/leak.yaml")
	mustMkdir("kust-leak")
	mustSymlink(outside, "kust-leak/base")
	mustWrite("kust-leak/kustomization.yaml", "resources: [base]\n")
	mustMkdir("kust-file-leak")
	mustSymlink(filepath.Join(outside, "cm.yaml"), "kust-file-leak/cm.yaml")
	mustWrite("kust-file-leak/kustomization.yaml", "resources: [cm.yaml]\n")
	mustMkdir("inside/real")
	mustWrite("inside/real/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inside\n")
	mustSymlink("real/cm.yaml", "inside/link.yaml")
	mustSymlink(outside, "dir-link")

	tests := []struct {
		name   string
		path   string
		wantIs error
		want   int
	}{
		{name: "plain file symlink out of root", path: "plain-leak", wantIs: render.ErrOutsideRoot},
		{name: "kustomize base symlink out of root", path: "kust-leak", wantIs: render.ErrOutsideRoot},
		{name: "kustomize resource symlink out of root", path: "kust-file-leak", wantIs: render.ErrOutsideRoot},
		{name: "render path symlink out of root", path: "dir-link", wantIs: render.ErrOutsideRoot},
		{name: "symlink inside root", path: "inside", want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.Render(t.Context(), root, tc.path)
			if tc.wantIs != nil {
				if !errors.Is(err, tc.wantIs) {
					t.Fatalf("render %s = %d objects, %v; want %v", tc.path, len(objs), err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("render %s: %v", tc.path, err)
			}
			if len(objs) != tc.want {
				t.Fatalf("rendered %d objects, want %d", len(objs), tc.want)
			}
		})
	}
}

func TestRenderEmpty(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "only-docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"only-docs/README.md":   "# nothing here\n",
		"only-docs/empty.yaml":  "",
		"only-docs/blank.yaml":  "---\n# a comment\n---\n",
		"only-docs/notes.txt":   "apiVersion: v1\n",
		"only-docs/values.json": "{}",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"", ".", "only-docs"} {
		t.Run("path "+p, func(t *testing.T) {
			objs, err := render.Render(t.Context(), root, p)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if len(objs) != 0 {
				t.Fatalf("rendered %d objects, want 0", len(objs))
			}
		})
	}
}

func TestRenderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, p := range []string{"plain/payment-gateway", "apps/payment-gateway/overlays/production"} {
		t.Run(p, func(t *testing.T) {
			if _, err := render.Render(ctx, "testdata/repo", p); !errors.Is(err, context.Canceled) {
				t.Fatalf("render with canceled context = %v, want context.Canceled", err)
			}
		})
	}
}

// TestRenderConcurrent gives the race detector concurrent builds.
func TestRenderConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			p := "apps/payment-gateway/overlays/production"
			if i%2 == 1 {
				p = "apps/payment-gateway/overlays/staging"
			}
			if _, err := render.Render(t.Context(), "testdata/repo", p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent render: %v", err)
	}
}

// writeFile writes content to name, creating its directory.
func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
