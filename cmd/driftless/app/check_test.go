package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleRepo is the example config repository, relative to this package.
var sampleRepo = filepath.Join("..", "..", "..", "config", "samples", "config-repo")

// runResult is what one driftless invocation produced.
type runResult struct {
	code           int
	stdout, stderr string
}

// expect checks the exit code and that stdout and stderr contain (or, for notStdout, do not
// contain) the given strings.
func (got runResult) expect(t *testing.T, code int, wantStdout, notStdout, wantStderr []string) {
	t.Helper()
	if got.code != code {
		t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, code, got.stdout, got.stderr)
	}
	for _, want := range wantStdout {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, got.stdout)
		}
	}
	for _, not := range notStdout {
		if strings.Contains(got.stdout, not) {
			t.Errorf("stdout contains %q:\n%s", not, got.stdout)
		}
	}
	for _, want := range wantStderr {
		if !strings.Contains(got.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, got.stderr)
		}
	}
}

// runDriftless runs the command tree in-process, the way main does: an error goes to stderr
// as "driftless: <error>" and decides the exit code.
func runDriftless(t *testing.T, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := NewCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	code := 0
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		fmt.Fprintf(&stderr, "driftless: %v\n", err)
		code = ExitCode(err)
	}
	return runResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
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

// writeFile writes content to dir/name, creating directories.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
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

func TestCheck(t *testing.T) {
	sampleConfig := filepath.Join(sampleRepo, "driftless.yaml")
	production := filepath.Join(sampleRepo, "overlays", "production")
	libraryParams := []string{"--param", `allowed_registries=["registry.example.com"]`, "--environment", "production"}
	tests := []struct {
		name string
		// args are the check arguments; setup, if set, returns a directory that "$DIR"
		// in args stands for.
		args       []string
		setup      func(t *testing.T) string
		wantCode   int
		wantStdout []string
		wantStderr []string
		// notStdout must not appear on stdout.
		notStdout []string
	}{
		{
			name:       "sample production passes with its policy set",
			args:       []string{"--config", sampleConfig, "--policy-set", "production", production},
			wantStdout: []string{"0 denials, 0 warnings in 3 objects\n"},
		},
		{
			name:       "sample passes with flags instead of a config, every overlay and the base",
			args:       append(append([]string{"--policy", filepath.Join(sampleRepo, "policies")}, libraryParams...), production, filepath.Join(sampleRepo, "overlays", "staging"), filepath.Join(sampleRepo, "base")),
			wantStdout: []string{"0 denials, 0 warnings in 9 objects\n"},
		},
		{
			name:  "violations name file, object, rule and message",
			setup: violatingSample,
			args:  []string{"--config", "$DIR/driftless.yaml", "$DIR/overlays/production"},
			wantStdout: []string{
				`base/deployment.yaml:1: deny images_pinned: Deployment production/payment-gateway: Deployment/payment-gateway: container "gateway" uses image "registry.example.com/payments/payment-gateway:latest" with the mutable tag "latest"`,
				`base/deployment.yaml:1: deny no_privileged: Deployment production/payment-gateway: Deployment/payment-gateway: container "gateway" runs privileged`,
				"base/configmap.yaml:1: deny main.deny: ConfigMap production/payment-gateway-config: ConfigMap payment-gateway-config in production has no owner label",
				"base/deployment.yaml:1: warn main.warn: Deployment production/payment-gateway: Deployment payment-gateway does not set spec.revisionHistoryLimit",
				"3 denials, 1 warning in 3 objects\n",
			},
			wantCode:   1,
			wantStderr: []string{"driftless: policy check failed: 3 denials, 1 warning in 3 objects"},
		},
		{
			name:       "the staging overlay of the violating copy has no owner denial",
			setup:      violatingSample,
			args:       []string{"--config", "$DIR/driftless.yaml", "$DIR/overlays/staging"},
			wantStdout: []string{"images_pinned", "no_privileged", "2 denials, 1 warning in 3 objects\n"},
			notStdout:  []string{"main.deny"},
			wantCode:   1,
		},
		{
			name:       "--disable-rule leaves a built-in rule out",
			setup:      violatingSample,
			args:       []string{"--config", "$DIR/driftless.yaml", "--disable-rule", "images_pinned", "--disable-rule", "no_privileged", "$DIR/overlays/production"},
			wantStdout: []string{"main.deny", "1 denial, 1 warning in 3 objects\n"},
			notStdout:  []string{"images_pinned", "no_privileged"},
			wantCode:   1,
		},
		{
			name:       "--no-library keeps only the user policies",
			setup:      violatingSample,
			args:       []string{"--no-library", "--policy", "$DIR/policies", "$DIR/overlays/production"},
			wantStdout: []string{"main.deny", "1 denial, 1 warning in 3 objects\n"},
			wantCode:   1,
		},
		{
			name:       "JSON --param overrides the policy set's parameter",
			args:       []string{"--config", sampleConfig, "--param", `allowed_registries=["ghcr.io/acme"]`, production},
			wantStdout: []string{`deny allowed_registries: Deployment production/payment-gateway: Deployment/payment-gateway: container "gateway" uses image "registry.example.com/payments/payment-gateway:1.8.2" from a registry that is not allowed; use one of ghcr.io/acme`},
			wantCode:   1,
		},
		{
			name:       "number --param",
			args:       []string{"--config", sampleConfig, "--param", "min_replicas=5", production},
			wantStdout: []string{"deny production_replicas: Deployment production/payment-gateway: Deployment/payment-gateway: runs 3 replica(s) in production; set spec.replicas to at least 5"},
			wantCode:   1,
		},
		{
			name: "string --param and --environment reach the policy",
			args: []string{"--no-library", "--policy", "testdata/check/params", "--param", "team=shop", "--environment", "production", "--root", "testdata", "testdata/check/plain"},
			wantStdout: []string{
				"check/plain/objects.yaml:2: deny main.deny: ConfigMap shop/settings: ConfigMap settings: production objects name an on-call contact\n",
				`check/plain/objects.yaml:12: deny main.deny: ConfigMap shop/other: ConfigMap other: label team must be "shop"` + "\n",
				"3 denials, 0 warnings in 2 objects\n",
			},
			wantCode: 1,
		},
		{
			name:       "outside production the environment rule is quiet",
			args:       []string{"--no-library", "--policy", "testdata/check/params", "--param", "team=shop", "--environment", "staging", "--root", "testdata", "testdata/check/plain"},
			wantStdout: []string{"1 denial, 0 warnings in 2 objects\n"},
			notStdout:  []string{"on-call"},
			wantCode:   1,
		},
		{
			name: "conftest policy runs unchanged",
			args: []string{"--no-library", "--policy", "testdata/check/conftest", "--root", "testdata", "testdata/check/conftest"},
			wantStdout: []string{
				"check/conftest/manifests.yaml:1: deny main.deny: Deployment shop/web: Containers must not run as root\n",
				"check/conftest/manifests.yaml:1: deny main.deny_latest_tag: Deployment shop/web: container web uses the latest tag\n",
				"check/conftest/manifests.yaml:17: warn main.warn: Service shop/web: Service web is exposed on every node with type NodePort\n",
				"2 denials, 1 warning in 2 objects\n",
			},
			wantCode: 1,
		},
		{
			name:       "--package selects the user package",
			args:       []string{"--no-library", "--policy", "testdata/policytest/failing", "--package", "team.labels", "--root", "testdata", "testdata/check/plain"},
			wantStdout: []string{"check/plain/objects.yaml:12: deny team.labels.deny: ConfigMap shop/other: ConfigMap other has no team label\n", "1 denial, 0 warnings in 2 objects\n"},
			wantCode:   1,
		},
		{
			name:       "a package without rules is an error",
			args:       []string{"--no-library", "--policy", "testdata/policytest/failing", "testdata/check/plain"},
			wantStderr: []string{"no deny, violation or warn rules in packages main"},
			wantCode:   2,
		},
		{
			name: "an empty render fails, naming the path",
			setup: func(t *testing.T) string {
				return t.TempDir()
			},
			args:       []string{"$DIR"},
			wantStderr: []string{"driftless: $DIR rendered no objects: nothing to check (pass --allow-empty if that is expected)\n"},
			wantCode:   2,
		},
		{
			name: "an empty render among others fails",
			setup: func(t *testing.T) string {
				return t.TempDir()
			},
			args:       []string{production, "$DIR"},
			wantStderr: []string{"driftless: $DIR rendered no objects"},
			wantCode:   2,
		},
		{
			name:       "--max-objects bounds what a PATH renders, as a source's limit",
			args:       []string{"--no-library", "--policy", "testdata/check/params", "--max-objects", "1", "--root", "testdata", "testdata/check/plain"},
			wantStderr: []string{"driftless: render testdata/check/plain: ", "more than 1 objects, over the source's limits.maxObjects of 1 (the reconciler would refuse it too, unless the source's limits are raised; --max-objects and --max-rendered-size raise check's)"},
			wantCode:   2,
		},
		{
			name:       "--max-rendered-size bounds what a PATH renders",
			args:       []string{"--no-library", "--policy", "testdata/check/params", "--max-rendered-size", "100", "--root", "testdata", "testdata/check/plain"},
			wantStderr: []string{"driftless: render testdata/check/plain: reading check/plain/objects.yaml: more than 100 B rendered, over the source's limits.maxRenderedSize of 100 B"},
			wantCode:   2,
		},
		{
			name:       "0 leaves the bounds off",
			args:       []string{"--no-library", "--policy", "testdata/check/params", "--max-objects", "0", "--max-rendered-size", "0", "--param", "team=shop", "--root", "testdata", "testdata/check/plain"},
			wantStdout: []string{"1 denial, 0 warnings in 2 objects\n"},
			wantCode:   1,
		},
		{
			name:       "a bad --max-rendered-size is a usage error",
			args:       []string{"--max-rendered-size", "lots", production},
			wantStderr: []string{`driftless: --max-rendered-size "lots": want a size such as 64Mi, or 0 for no bound`},
			wantCode:   2,
		},
		{
			name:       "a negative --max-objects is a usage error",
			args:       []string{"--max-objects", "-1", production},
			wantStderr: []string{"driftless: --max-objects -1: want 0 (no bound) or more"},
			wantCode:   2,
		},
		{
			name: "--allow-empty passes an empty render with a warning",
			setup: func(t *testing.T) string {
				return t.TempDir()
			},
			args:       []string{"--allow-empty", "$DIR"},
			wantStdout: []string{"0 denials, 0 warnings in 0 objects\n"},
			wantStderr: []string{"driftless: warning: $DIR rendered no objects"},
		},
		{
			name:       "warnings alone pass",
			args:       []string{"--no-library", "--policy", "testdata/check/conftest", "testdata/check/warn-only/service.yaml"},
			wantStdout: []string{"warn main.warn: Service shop/web", "0 denials, 1 warning in 1 object\n"},
		},
		{
			name:       "--fail-on-warn fails on warnings",
			args:       []string{"--no-library", "--policy", "testdata/check/conftest", "--fail-on-warn", "testdata/check/warn-only/service.yaml"},
			wantStdout: []string{"warn main.warn: Service shop/web", "0 denials, 1 warning in 1 object\n"},
			wantStderr: []string{"policy check failed: 0 denials, 1 warning in 1 object"},
			wantCode:   1,
		},
		{
			name:       "malformed YAML names file and line",
			args:       []string{"--root", "testdata", "testdata/check/malformed"},
			wantStderr: []string{"driftless: render testdata/check/malformed: check/malformed/configmap.yaml:5: did not find expected key"},
			wantCode:   2,
		},
		{
			name:       "kustomize error",
			args:       []string{"--root", "testdata", "testdata/check/kustomize-error"},
			wantStderr: []string{"driftless: render testdata/check/kustomize-error: kustomize build check/kustomize-error: ", "deployment.yaml"},
			wantCode:   2,
		},
		{
			name:       "kustomization refers outside the root",
			args:       []string{"--root", filepath.Join(sampleRepo, "overlays"), production},
			wantStderr: []string{"driftless: render ", "outside the repository root"},
			wantCode:   2,
		},
		{
			name:       "Rego compile error names file:line:col",
			args:       []string{"--policy", "testdata/check/broken-policy", "testdata/check/plain"},
			wantStderr: []string{"driftless: compile policies: testdata/check/broken-policy/policy.rego:6:1: rego_parse_error: "},
			wantCode:   2,
		},
		{
			name:       "unknown built-in rule",
			args:       []string{"--disable-rule", "no_such_rule", production},
			wantStderr: []string{`disabled rule "no_such_rule": no such built-in rule`},
			wantCode:   2,
		},
		{
			name:       "unknown policy set",
			args:       []string{"--config", sampleConfig, "--policy-set", "staging", production},
			wantStderr: []string{`no policy set "staging" (have production)`},
			wantCode:   2,
		},
		{
			name:       "missing PATH",
			args:       []string{"testdata/check/no-such-dir"},
			wantStderr: []string{"driftless: check testdata/check/no-such-dir: no such file or directory"},
			wantCode:   2,
		},
		{name: "no PATH", args: nil, wantStderr: []string{"missing PATH"}, wantCode: 2},
		{name: "unknown flag", args: []string{"--frobnicate", production}, wantStderr: []string{"unknown flag: --frobnicate"}, wantCode: 2},
		{name: "unknown output format", args: []string{"--output", "xml", production}, wantStderr: []string{`--output "xml": want text, json, junit or sarif`}, wantCode: 2},
		{name: "--param without =", args: []string{"--param", "team", production}, wantStderr: []string{`--param "team": want key=value`}, wantCode: 2},
		{name: "--policy-set without --config", args: []string{"--policy-set", "production", production}, wantStderr: []string{"--policy-set needs --config"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, wantStderr := tt.args, tt.wantStderr
			if tt.setup != nil {
				dir := tt.setup(t)
				expand := func(in []string) []string {
					out := make([]string, len(in))
					for i, a := range in {
						out[i] = strings.ReplaceAll(a, "$DIR", dir)
					}
					return out
				}
				args, wantStderr = expand(tt.args), expand(tt.wantStderr)
			}
			got := runDriftless(t, append([]string{"check"}, args...)...)
			got.expect(t, tt.wantCode, tt.wantStdout, tt.notStdout, wantStderr)
			if tt.wantCode == 2 && got.stdout != "" {
				t.Errorf("stdout = %q, want nothing when the check cannot decide", got.stdout)
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		name    string
		flags   []string
		want    map[string]any
		wantErr string
	}{
		{name: "none", flags: nil, want: nil},
		{
			name:  "JSON values and strings",
			flags: []string{`allowed_registries=["registry.example.com"]`, "min_replicas=3", "team=payments", "strict=true", `quoted="3"`, "empty=", "eq=a=b", `obj={"a": 1}`},
			want: map[string]any{
				"allowed_registries": []any{"registry.example.com"},
				"min_replicas":       json.Number("3"),
				"team":               "payments",
				"strict":             true,
				"quoted":             "3",
				"empty":              "",
				"eq":                 "a=b",
				"obj":                map[string]any{"a": json.Number("1")},
			},
		},
		{name: "invalid JSON is a string", flags: []string{`list=["a",`}, want: map[string]any{"list": `["a",`}},
		{name: "later wins", flags: []string{"team=a", "team=b"}, want: map[string]any{"team": "b"}},
		{name: "no equals", flags: []string{"team"}, wantErr: `--param "team": want key=value`},
		{name: "empty key", flags: []string{"=x"}, wantErr: `--param "=x": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseParams(tt.flags)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseParams() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseParams() error = %v", err)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("parseParams() = %#v, want %#v", got, tt.want)
			}
		})
	}
}
