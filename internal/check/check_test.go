package check_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/internal/check"
	"github.com/driftless-dev/driftless/policy/report"
	"github.com/driftless-dev/driftless/reconciler/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// sampleRepo is the example config repository, relative to this package.
var sampleRepo = filepath.Join("..", "..", "config", "samples", "config-repo")

// latestTagPolicy denies Deployments whose containers use a :latest image.
const latestTagPolicy = `package main

deny_latest_tag contains msg if {
	input.kind == "Deployment"
	some container in input.spec.template.spec.containers
	endswith(container.image, ":latest")
	msg := sprintf("container %s uses the latest tag", [container.name])
}
`

// runCheck runs a check and returns its report in format f and whether it passed; the check
// must be able to decide.
func runCheck(t *testing.T, o check.Options, f report.Format) (string, bool) {
	t.Helper()
	r, err := check.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	var b bytes.Buffer
	if err := report.Write(&b, f, r, "test"); err != nil {
		t.Fatalf("write %s report: %v", f, err)
	}
	return b.String(), r.Passed
}

// copySample copies the example config repository into a temporary Git work tree (a .git
// directory is all check looks for) and returns its root.
func copySample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(sampleRepo)); err != nil {
		t.Fatalf("copy sample repository: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatalf("mkdir .git: %v", err)
	}
	return dir
}

// edit replaces old with new in dir/name; old must occur, so a test cannot pass vacuously.
func edit(t *testing.T, dir, name, old, new string) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", p, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
}

// writeFile writes content to dir/name, creating directories, and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
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

// violatingSample is a copy of the sample whose production overlay breaks three rules: a
// :latest image, a privileged container (built-in library) and a production ConfigMap
// without an owner label (the sample's own policy), and warns: no revisionHistoryLimit.
func violatingSample(t *testing.T) string {
	t.Helper()
	dir := copySample(t)
	edit(t, dir, "base/deployment.yaml", "payment-gateway:1.8.2", "payment-gateway:latest")
	edit(t, dir, "base/deployment.yaml", "allowPrivilegeEscalation: false", "privileged: true")
	edit(t, dir, "base/deployment.yaml", "  revisionHistoryLimit: 5\n", "")
	edit(t, dir, "base/configmap.yaml", "    owner: team-payments\n", "")
	return dir
}

// checkGolden compares got with testdata/golden/name, after replacing dir with $REPO, or
// rewrites the file with -update.
func checkGolden(t *testing.T, name, got, dir string) {
	t.Helper()
	if dir != "" {
		got = strings.ReplaceAll(got, filepath.ToSlash(dir), "$REPO")
	}
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatalf("update golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// TestCheckGolden pins the text and json output of a failing and a passing check: the json
// output is the public CheckReport document.
func TestCheckGolden(t *testing.T) {
	dir := violatingSample(t)
	tests := []struct {
		golden string
		format report.Format
	}{
		{"violating.txt", report.FormatText},
		{"violating.json", report.FormatJSON},
		{"passing.txt", report.FormatText},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			paths := []string{dir + "/overlays/production", dir + "/overlays/staging"}
			wantPassed := false
			if tt.golden == "passing.txt" {
				paths, wantPassed = []string{filepath.Join(sampleRepo, "overlays", "production")}, true
			}
			got, passed := runCheck(t, check.Options{ConfigPath: filepath.Join(dir, "driftless.yaml"), Paths: paths}, tt.format)
			if passed != wantPassed {
				t.Fatalf("passed = %v, want %v:\n%s", passed, wantPassed, got)
			}
			checkGolden(t, tt.golden, got, dir)
		})
	}
}

// TestCheckFindsTheRepositoryRoot checks how files are named: relative to the enclosing
// repository (found by its .git), relative to --root, or joined to PATH outside a
// repository; and that plain YAML objects carry their line.
func TestCheckFindsTheRepositoryRoot(t *testing.T) {
	const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:latest
`
	const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n---\n"
	tests := []struct {
		name string
		// git, when set, is the directory under the temporary directory holding .git.
		git  string
		path string
		root string
		// want is the file:line the violation names, "$TMP" standing for the temporary
		// directory.
		want string
	}{
		{name: "repository root", git: ".", path: "apps/shop", want: "apps/shop/web.yaml:7"},
		{name: "file inside a repository", git: ".", path: "apps/shop/web.yaml", want: "apps/shop/web.yaml:7"},
		{name: "nested repository wins", git: "apps", path: "apps/shop", want: "shop/web.yaml:7"},
		{name: "--root", path: "apps/shop", root: "apps", want: "shop/web.yaml:7"},
		{name: "no repository: PATH itself", path: "apps/shop", want: "$TMP/apps/shop/web.yaml:7"},
		{name: "no repository: a file's directory", path: "apps/shop/web.yaml", want: "$TMP/apps/shop/web.yaml:7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			writeFile(t, tmp, "apps/shop/web.yaml", configMap+deployment)
			if tt.git != "" {
				if err := os.MkdirAll(filepath.Join(tmp, tt.git, ".git"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			policy := writeFile(t, t.TempDir(), "policy.rego", latestTagPolicy)
			o := check.Options{NoLibrary: true, PolicyPaths: []string{policy}, Paths: []string{filepath.Join(tmp, tt.path)}}
			if tt.root != "" {
				o.Root = filepath.Join(tmp, tt.root)
			}
			got, passed := runCheck(t, o, report.FormatText)
			if passed {
				t.Fatalf("the check passed:\n%s", got)
			}
			want := strings.ReplaceAll(tt.want, "$TMP", filepath.ToSlash(tmp)) + ": deny main.deny_latest_tag: Deployment shop/web: container web uses the latest tag\n"
			if !strings.Contains(got, want) {
				t.Errorf("text report does not contain %q:\n%s", want, got)
			}
		})
	}
}

// TestCheckRefusesSymlinksOutOfTheRepository: a PATH that is itself a symlink leading out of
// the repository (a pull request can add one; CI then checks the file it names) is refused
// like any symlink in the repository that leads out of it, and nothing of the file it leads
// to is read or reported, even when it leads into another repository. A symlink that stays
// inside is followed.
func TestCheckRefusesSymlinksOutOfTheRepository(t *testing.T) {
	const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: outside\nstringData:\n  password: hunter2\n"
	tests := []struct {
		name string
		// git, when set, is the directory under the temporary directory holding .git.
		git  string
		path string
		root string
		// inside is true when the symlink stays in the repository.
		inside bool
		// outsideGit makes the directory outside a repository of its own.
		outsideGit bool
	}{
		{name: "file symlink in a repository", git: ".", path: "apps/leak.yaml"},
		{name: "directory symlink in a repository", git: ".", path: "apps/leakdir"},
		{name: "file symlink under --root", path: "apps/leak.yaml", root: "apps"},
		{name: "file symlink, no repository", path: "apps/leak.yaml"},
		{name: "symlink inside the repository", git: ".", path: "apps/inside.yaml", inside: true},
		{name: "directory symlink to another repository", git: ".", path: "apps/leakdir", outsideGit: true},
		{name: "file through a symlink to another repository", git: ".", path: "apps/leakdir/secret.yaml", outsideGit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			outside := t.TempDir()
			writeFile(t, outside, "secret.yaml", secret)
			if tt.outsideGit {
				if err := os.MkdirAll(filepath.Join(outside, ".git"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tmp := t.TempDir()
			writeFile(t, tmp, "apps/shop/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")
			for link, target := range map[string]string{
				"apps/leak.yaml":   filepath.Join(outside, "secret.yaml"),
				"apps/leakdir":     outside,
				"apps/inside.yaml": "shop/cm.yaml",
			} {
				if err := os.Symlink(target, filepath.Join(tmp, link)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.git != "" {
				if err := os.MkdirAll(filepath.Join(tmp, tt.git, ".git"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			o := check.Options{Paths: []string{filepath.Join(tmp, tt.path)}}
			if tt.root != "" {
				o.Root = filepath.Join(tmp, tt.root)
			}
			if tt.inside {
				got, _ := runCheck(t, o, report.FormatText)
				if !strings.Contains(got, " in 1 object") {
					t.Fatalf("the symlink inside the repository was not followed:\n%s", got)
				}
				return
			}
			r, err := check.Run(t.Context(), o)
			if !errors.Is(err, render.ErrOutsideRoot) {
				t.Fatalf("check %s = %+v, %v; want it refused as %v", tt.path, r, err, render.ErrOutsideRoot)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), outside) {
				t.Fatalf("the error tells of the file outside: %v", err)
			}
		})
	}
}

// TestCheckTracesKustomizedObjects checks which file a kustomized object is reported at.
func TestCheckTracesKustomizedObjects(t *testing.T) {
	tests := []struct {
		name string
		// change edits the violating copy.
		change func(t *testing.T, dir string)
		want   []string
	}{
		{
			name: "resource file of the base",
			want: []string{"base/deployment.yaml:1: deny images_pinned: Deployment production/payment-gateway:"},
		},
		{
			name: "renamed by a name prefix",
			change: func(t *testing.T, dir string) {
				edit(t, dir, "overlays/production/kustomization.yaml", "namespace: production\n", "namespace: production\nnamePrefix: eu-\n")
				edit(t, dir, "overlays/production/kustomization.yaml", "  - name: payment-gateway\n", "  - name: eu-payment-gateway\n")
			},
			want: []string{"base/deployment.yaml:1: deny images_pinned: Deployment production/eu-payment-gateway:"},
		},
		{
			name: "origin annotations",
			change: func(t *testing.T, dir string) {
				edit(t, dir, "overlays/production/kustomization.yaml", "resources:\n", "buildMetadata: [originAnnotations]\nresources:\n")
			},
			want: []string{"base/deployment.yaml:1: deny images_pinned: Deployment production/payment-gateway:"},
		},
		{
			name: "second document of a resource file",
			change: func(t *testing.T, dir string) {
				b, err := os.ReadFile(filepath.Join(dir, "base", "deployment.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(dir, "base", "deployment.yaml")); err != nil {
					t.Fatal(err)
				}
				c, err := os.ReadFile(filepath.Join(dir, "base", "configmap.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "base/app.yaml", string(c)+"---\n"+string(b))
				edit(t, dir, "base/kustomization.yaml", "  - configmap.yaml\n  - deployment.yaml\n", "  - app.yaml\n")
			},
			want: []string{
				"base/app.yaml:1: deny main.deny: ConfigMap production/payment-gateway-config:",
				"base/app.yaml:11: deny images_pinned: Deployment production/payment-gateway:",
			},
		},
		{
			name: "generated objects are reported at the kustomization",
			change: func(t *testing.T, dir string) {
				edit(t, dir, "base/kustomization.yaml", "  - configmap.yaml\n", "")
				edit(t, dir, "base/kustomization.yaml", "resources:\n", "configMapGenerator:\n  - name: payment-gateway-config\n    literals: [POOL_SIZE=20]\nresources:\n")
				edit(t, dir, "overlays/production/kustomization.yaml", "patches:\n  - path: configmap-patch.yaml\n", "")
			},
			want: []string{"overlays/production/kustomization.yaml: deny main.deny: ConfigMap production/payment-gateway-config-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := violatingSample(t)
			if tt.change != nil {
				tt.change(t, dir)
			}
			got, passed := runCheck(t, check.Options{ConfigPath: filepath.Join(dir, "driftless.yaml"), Paths: []string{filepath.Join(dir, "overlays", "production")}}, report.FormatText)
			if passed {
				t.Fatalf("the check passed:\n%s", got)
			}
			for _, want := range tt.want {
				if !strings.Contains(got, want) {
					t.Errorf("text report does not contain %q:\n%s", want, got)
				}
			}
		})
	}
}
