package policy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConftestPolicyRunsUnchanged(t *testing.T) {
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{filepath.Join("testdata", "conftest")}})
	deployment := manifest(t, "deployment.yaml")
	tests := []struct {
		name string
		obj  map[string]any
		want []Violation
	}{
		{
			name: "compliant deployment",
			obj:  setPath(t, deployment, "spec.selector.matchLabels.app", "shop"),
		},
		{
			name: "deployment breaking every deny rule",
			obj: func() map[string]any {
				d := setPath(t, deployment, "spec.template.spec.securityContext", remove{})
				d = setPath(t, d, "spec.replicas", 12)
				return setPath(t, d, "spec.template.spec.containers.0.image", "nginx:latest")
			}(),
			want: []Violation{
				{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "Containers must not run as root"},
				{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "Containers must provide app label for pod selectors"},
				{Package: "main", Rule: "deny_latest_tag", Severity: SeverityDeny, Message: "container app uses the latest tag"},
				{Package: "main", Rule: "violation", Severity: SeverityDeny, Message: "too many replicas", Details: map[string]any{"details": map[string]any{"replicas": jsonNumber(12)}}},
			},
		},
		{
			name: "node port service warns",
			obj: map[string]any{
				"apiVersion": "v1", "kind": "Service",
				"metadata": map[string]any{"name": "shop"},
				"spec":     map[string]any{"type": "NodePort"},
			},
			want: []Violation{
				{Package: "main", Rule: "warn", Severity: SeverityWarn, Message: "Service shop is exposed on every node with type NodePort"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Evaluate(t.Context(), tc.obj, EvalContext{})
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if !reflect.DeepEqual(res.Violations, tc.want) {
				t.Errorf("violations =\n%#v\nwant\n%#v", res.Violations, tc.want)
			}
			if got, want := res.Denied(), len(tc.want) > 0 && tc.want[0].Severity == SeverityDeny; got != want {
				t.Errorf("Denied() = %v, want %v", got, want)
			}
		})
	}

	t.Run("runs beside the library", func(t *testing.T) {
		e := loadEngine(t, Options{Paths: []string{filepath.Join("testdata", "conftest")}, Parameters: libraryParams()})
		obj := setPath(t, deployment, "spec.template.spec.containers.0.image", "ghcr.io/acme/shop:latest")
		res, err := e.Evaluate(t.Context(), obj, EvalContext{})
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		want := []string{"images_pinned", "main.deny", "main.deny_latest_tag"}
		if got := firedRules(res); !slices.Equal(got, want) {
			t.Errorf("fired rules = %v, want %v", got, want)
		}
	})
}

// jsonNumber is how OPA hands numbers back in rule results.
func jsonNumber(n int) any {
	var v map[string]any
	if err := decodeJSONNumber(fmt.Sprintf(`{"n": %d}`, n), &v); err != nil {
		panic(err)
	}
	return v["n"]
}

func TestRuleValueShapes(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		want    []Violation
		wantErr string
	}{
		{
			name:   "set of strings",
			policy: `deny contains "b" if true` + "\n" + `deny contains "a" if true`,
			want: []Violation{
				{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "a"},
				{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "b"},
			},
		},
		{
			name:   "objects keep their other fields",
			policy: `deny contains {"msg": "m", "details": {"k": "v"}, "code": "X1"} if true`,
			want: []Violation{{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "m",
				Details: map[string]any{"details": map[string]any{"k": "v"}, "code": "X1"}}},
		},
		{
			name:   "boolean rule",
			policy: `deny if input.kind == "Pod"`,
			want:   []Violation{{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "data.main.deny is true"}},
		},
		{
			name:   "false and undefined rules report nothing",
			policy: "default deny := false\nwarn if input.kind == \"Service\"\nviolation contains \"x\" if false",
		},
		{
			name:   "single message rule",
			policy: `deny := "whole object denied"`,
			want:   []Violation{{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "whole object denied"}},
		},
		{
			name: "prefixed rules and severities sorted deny first",
			policy: `warn_style contains "w" if true
violation_size contains "v" if true
deny_image contains "d" if true
deny contains "a" if true`,
			want: []Violation{
				{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "a"},
				{Package: "main", Rule: "deny_image", Severity: SeverityDeny, Message: "d"},
				{Package: "main", Rule: "violation_size", Severity: SeverityDeny, Message: "v"},
				{Package: "main", Rule: "warn_style", Severity: SeverityWarn, Message: "w"},
			},
		},
		{
			name: "other rule names are helpers",
			policy: `denied contains "x" if true
deny__x contains "x" if true
warning contains "x" if true
deny_ contains "x" if true
deny contains "only this" if true`,
			want: []Violation{{Package: "main", Rule: "deny", Severity: SeverityDeny, Message: "only this"}},
		},
		{
			name:    "object without msg is an error",
			policy:  `deny contains {"message": "m"} if true`,
			wantErr: "rule data.main.deny: result object has no string msg field",
		},
		{
			name:   "empty array and set rules report nothing",
			policy: "deny := []\nwarn := set()\nviolation contains \"x\" if false",
		},
		{
			name:    "empty object is an error",
			policy:  `deny := {}`,
			wantErr: "rule data.main.deny: result object has no string msg field",
		},
		{
			name:    "number is an error",
			policy:  `deny contains 7 if true`,
			wantErr: "neither a message string nor an object with msg",
		},
	}
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "policy.rego", "package main\n\n"+tc.policy+"\n")
			e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
			res, err := e.Evaluate(t.Context(), obj, EvalContext{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Evaluate error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if !reflect.DeepEqual(res.Violations, tc.want) {
				t.Errorf("violations =\n%#v\nwant\n%#v", res.Violations, tc.want)
			}
			if res.Object != (ObjectRef{APIVersion: "v1", Kind: "Pod", Name: "p"}) {
				t.Errorf("Object = %#v", res.Object)
			}
		})
	}
}

func TestNamespaces(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "main.rego", "package main\n\ndeny contains \"from main\" if true\n")
	writeFile(t, dir, "k8s/admission.rego", "package kubernetes.admission\n\ndeny contains \"from admission\" if true\n")
	writeFile(t, dir, "k8s/quoted.rego", "package team[\"a-b\"]\n\nwarn contains \"from quoted\" if true\n")
	tests := []struct {
		namespaces []string
		want       []string
	}{
		{nil, []string{"from main"}},
		{[]string{"kubernetes.admission"}, []string{"from admission"}},
		{[]string{"main", "kubernetes.admission"}, []string{"from admission", "from main"}},
		{[]string{`team["a-b"]`}, []string{"from quoted"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.namespaces, ","), func(t *testing.T) {
			e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}, Namespaces: tc.namespaces})
			res, err := e.Evaluate(t.Context(), map[string]any{"kind": "Pod"}, EvalContext{})
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := messages(res); !slices.Equal(got, tc.want) {
				t.Errorf("messages = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContextAndParametersReachPolicies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ctx.rego", `package main

deny contains msg if {
	ctx := data.driftless.context
	msg := sprintf("%s|%s|%s|%s|%v|%v", [ctx.source, ctx.environment, ctx.operation, ctx.user.username, ctx.user.groups, data.driftless.parameters.team])
}
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}, Parameters: map[string]any{"team": "payments"}})
	tests := []struct {
		name string
		ec   EvalContext
		want string
	}{
		{"empty context in CI", EvalContext{}, `||||[]|payments`},
		{"reconciler", EvalContext{Source: "prod-apps", Environment: "production"}, `prod-apps|production|||[]|payments`},
		{"admission", EvalContext{Source: "prod-apps", Environment: "production", Operation: "UPDATE",
			User: User{Username: "alice", Groups: []string{"oncall", "dev"}}}, `prod-apps|production|UPDATE|alice|["oncall", "dev"]|payments`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Evaluate(t.Context(), map[string]any{"kind": "Pod"}, tc.ec)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := messages(res); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("messages = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opts  func(dir string) Options
		// wantProblems are "file:line:col" prefixes (file relative to dir)
		// the *CompileError must name, in order.
		wantProblems []string
		wantErr      string
	}{
		{
			name:         "parse error",
			files:        map[string]string{"broken.rego": "package main\n\ndeny contains msg if {\n\tmsg := \n}\n"},
			wantProblems: []string{"broken.rego:5:1"},
			wantErr:      "rego_parse_error",
		},
		{
			name: "every broken file is reported",
			files: map[string]string{
				"a.rego": "package main\n\ndeny contains msg if {\n",
				"b.rego": "package main\n\ndeny contains x if { x := }\n",
			},
			wantProblems: []string{"a.rego:4:", "b.rego:3:"},
		},
		{
			name:         "undefined function",
			files:        map[string]string{"p.rego": "package main\n\ndeny contains x if {\n\tx := undefined_function(1)\n}\n"},
			wantProblems: []string{"p.rego:4:7"},
			wantErr:      "undefined function undefined_function",
		},
		{
			name:         "network access is refused",
			files:        map[string]string{"p.rego": "package main\n\ndeny contains x if {\n\tr := http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1\"})\n\tx := r.body\n}\n"},
			wantProblems: []string{"p.rego:4:"},
			wantErr:      "http.send is not allowed in policies",
		},
		{
			name:         "environment access is refused",
			files:        map[string]string{"p.rego": "package main\n\ndeny contains x if {\n\tx := opa.runtime().env.HOME\n}\n"},
			wantProblems: []string{"p.rego:4:"},
			wantErr:      "opa.runtime is not allowed in policies",
		},
		{
			name:         "the clock is refused",
			files:        map[string]string{"p.rego": "package main\n\ndeny contains \"late\" if {\n\ttime.now_ns() > 0\n}\n"},
			wantProblems: []string{"p.rego:4:2"},
			wantErr:      "time.now_ns is not allowed in policies",
		},
		{
			name: "randomness is refused, every call reported",
			files: map[string]string{
				"a.rego": "package main\n\ndeny contains x if {\n\tx := uuid.rfc4122(\"k\")\n}\n",
				"b.rego": "package main\n\ndeny contains \"x\" if {\n\trand.intn(\"k\", 10, n)\n\tn > 5\n}\n",
			},
			wantProblems: []string{"a.rego:4:7", "b.rego:4:2"},
			wantErr:      "uuid.rfc4122 is not allowed in policies",
		},
		{
			name:         "DNS is refused",
			files:        map[string]string{"p.rego": "package main\n\ndeny contains \"x\" if {\n\tcount(net.lookup_ip_addr(\"example.com\")) > 0\n}\n"},
			wantProblems: []string{"p.rego:4:8"},
			wantErr:      "net.lookup_ip_addr is not allowed in policies",
		},
		{
			name:         "reserved package",
			files:        map[string]string{"p.rego": "package driftless.library.mine\n\ndeny contains \"x\" if true\n"},
			wantProblems: []string{"p.rego:1:1"},
			wantErr:      "package driftless.library.mine is reserved",
		},
		{
			name:         "rego v0 syntax",
			files:        map[string]string{"p.rego": "package main\n\ndeny[msg] {\n\tmsg := \"x\"\n}\n"},
			wantProblems: []string{"p.rego:3:1", "p.rego:3:1"},
			wantErr:      "`if` keyword is required before rule body",
		},
		{
			name:    "missing path",
			opts:    func(dir string) Options { return Options{Paths: []string{filepath.Join(dir, "nope")}} },
			wantErr: "read policy path",
		},
		{
			name:  "file that is not rego",
			files: map[string]string{"p.yaml": "a: b\n"},
			opts: func(dir string) Options {
				return Options{Paths: []string{filepath.Join(dir, "p.yaml")}}
			},
			wantErr: "not a .rego file or a directory",
		},
		{
			name:    "unknown disabled rule",
			opts:    func(string) Options { return Options{DisabledRules: []string{"images_pinned", "no_such_rule"}} },
			wantErr: `disabled rule "no_such_rule": no such built-in rule`,
		},
		{
			name:    "bad namespace",
			opts:    func(string) Options { return Options{Namespaces: []string{"not a package"}} },
			wantErr: `namespace "not a package": not a Rego package name`,
		},
		{
			name:    "reserved namespace",
			opts:    func(string) Options { return Options{Namespaces: []string{"driftless.lib.kubernetes"}} },
			wantErr: "reserved for the built-in library",
		},
		{
			name:    "no rules at all",
			opts:    func(string) Options { return Options{DisableLibrary: true} },
			wantErr: "no deny, violation or warn rules in packages main",
		},
		{
			name:  "namespace without rules",
			files: map[string]string{"p.rego": "package k8s\n\ndeny contains \"x\" if true\n"},
			opts: func(dir string) Options {
				return Options{Paths: []string{dir}}
			},
			wantErr: "namespace main: no deny, violation or warn rules in",
		},
		{
			name:    "parameters that are not JSON",
			opts:    func(string) Options { return Options{Parameters: map[string]any{"f": func() {}}} },
			wantErr: "parameters: json: unsupported type",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			opts := Options{DisableLibrary: true, Paths: []string{dir}}
			if tc.opts != nil {
				opts = tc.opts(dir)
			}
			e := New()
			err := e.Load(t.Context(), opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if len(tc.wantProblems) > 0 {
				var ce *CompileError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v (%T) is not a *CompileError", err, err)
				}
				if len(ce.Problems) != len(tc.wantProblems) {
					t.Fatalf("problems = %v, want %d", ce.Problems, len(tc.wantProblems))
				}
				for i, want := range tc.wantProblems {
					if got := ce.Problems[i].String(); !strings.HasPrefix(got, filepath.Join(dir, want)) {
						t.Errorf("problem %d = %q, want prefix %q", i, got, filepath.Join(dir, want))
					}
					if !strings.Contains(err.Error(), filepath.Join(dir, want)) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
			}
			if _, err := e.Evaluate(t.Context(), map[string]any{}, EvalContext{}); !errors.Is(err, ErrNoPolicy) {
				t.Errorf("Evaluate after failed first load: %v, want ErrNoPolicy", err)
			}
		})
	}
}

func TestLoadIgnoresTestFilesAndHiddenDirectories(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", "package main\n\ndeny contains \"x\" if true\n")
	writeFile(t, dir, "p_test.rego", "package main\n\nthis is not rego\n")
	writeFile(t, dir, ".git/hooks/x.rego", "neither is this\n")
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	mods, err := e.Modules()
	if err != nil {
		t.Fatalf("Modules: %v", err)
	}
	var user []string
	for _, m := range mods {
		if !strings.HasPrefix(m, builtinPrefix) {
			user = append(user, m)
		}
	}
	if want := []string{filepath.Join(dir, "p.rego")}; !slices.Equal(user, want) {
		t.Errorf("user modules = %v, want %v", user, want)
	}
}

func TestNoPolicy(t *testing.T) {
	e := New()
	if _, err := e.Evaluate(t.Context(), map[string]any{"kind": "Pod"}, EvalContext{}); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Evaluate: %v, want ErrNoPolicy", err)
	}
	if _, err := e.EvaluateAll(t.Context(), []map[string]any{{"kind": "Pod"}}, EvalContext{}); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("EvaluateAll: %v, want ErrNoPolicy", err)
	}
	if _, err := e.Rules(); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Rules: %v, want ErrNoPolicy", err)
	}
	if _, err := e.Modules(); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Modules: %v, want ErrNoPolicy", err)
	}
}

func TestReloadKeepsLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "p.rego", "package main\n\ndeny contains \"version 1\" if true\n")
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	obj := map[string]any{"kind": "Pod"}
	check := func(t *testing.T, want string) {
		t.Helper()
		res, err := e.Evaluate(t.Context(), obj, EvalContext{})
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		if got := messages(res); !slices.Equal(got, []string{want}) {
			t.Errorf("messages = %v, want [%s]", got, want)
		}
	}
	check(t, "version 1")

	writeFile(t, dir, "p.rego", "package main\n\ndeny contains \"version 2\" if {\n\tinput.kind ==\n}\n")
	err := e.Load(t.Context(), Options{DisableLibrary: true, Paths: []string{dir}})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("Load of a broken file: %v, want a *CompileError", err)
	}
	if !strings.Contains(err.Error(), file+":5:1: rego_parse_error") {
		t.Errorf("error %q does not name %s:5:1", err, file)
	}
	check(t, "version 1")

	writeFile(t, dir, "p.rego", "package main\n\ndeny contains \"version 3\" if {\n\tinput.kind == \"Pod\"\n}\n")
	if err := e.Load(t.Context(), Options{DisableLibrary: true, Paths: []string{dir}}); err != nil {
		t.Fatalf("Load of the fixed file: %v", err)
	}
	check(t, "version 3")

	if err := e.Load(t.Context(), Options{DisableLibrary: true, Paths: []string{filepath.Join(dir, "gone")}}); err == nil {
		t.Fatal("Load of a missing path succeeded")
	}
	check(t, "version 3")
}

func TestEvaluateHonoursCancellation(t *testing.T) {
	dir := t.TempDir()
	// About 10^12 iterations: only cancellation ends it.
	writeFile(t, dir, "slow.rego", `package main

deny contains "never" if {
	some i in numbers.range(1, 1000000)
	some j in numbers.range(1, 1000000)
	i * j == -1
}
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	obj := map[string]any{"kind": "Pod"}
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{
			name: "cancelled before",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "deadline during evaluation",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			name: "cancelled during evaluation",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				go func() {
					time.Sleep(20 * time.Millisecond)
					cancel()
				}()
				t.Cleanup(cancel)
				return ctx
			},
			want: context.Canceled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Evaluate(tc.ctx(t), obj, EvalContext{})
			if !errors.Is(err, tc.want) {
				t.Errorf("Evaluate: %v, want %v", err, tc.want)
			}
			_, err = e.EvaluateAll(tc.ctx(t), []map[string]any{obj, obj, obj}, EvalContext{})
			if !errors.Is(err, tc.want) {
				t.Errorf("EvaluateAll: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEvaluateAll(t *testing.T) {
	e := loadEngine(t, Options{Parameters: libraryParams(), Paths: []string{filepath.Join("testdata", "conftest")}})
	var objs []map[string]any
	for _, k := range workloadKinds() {
		objs = append(objs, manifest(t, k.file))
	}
	objs = append(objs, everythingWrong(t)...)
	objs = append(objs, manifest(t, "configmap.yaml"))

	ec := EvalContext{Environment: "production"}
	results, err := e.EvaluateAll(t.Context(), objs, ec)
	if err != nil {
		t.Fatalf("EvaluateAll: %v", err)
	}
	if len(results) != len(objs) {
		t.Fatalf("got %d results for %d objects", len(results), len(objs))
	}
	for i, obj := range objs {
		want, err := e.Evaluate(t.Context(), obj, ec)
		if err != nil {
			t.Fatalf("Evaluate %d: %v", i, err)
		}
		if !reflect.DeepEqual(results[i], want) {
			t.Errorf("result %d = %v, want %v", i, results[i], want)
		}
	}
	if results[len(objs)-1].Object.Kind != "ConfigMap" {
		t.Errorf("results out of order: last is %v", results[len(objs)-1].Object)
	}

	t.Run("empty revision", func(t *testing.T) {
		got, err := e.EvaluateAll(t.Context(), nil, ec)
		if err != nil || len(got) != 0 {
			t.Errorf("EvaluateAll(nil) = %v, %v; want no results and no error", got, err)
		}
	})

	t.Run("error names the object", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "p.rego", "package main\n\ndeny contains {\"no\": \"msg\"} if input.kind == \"Secret\"\n")
		e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
		_, err := e.EvaluateAll(t.Context(), objs, ec)
		if err == nil || !strings.Contains(err.Error(), ": evaluate Secret shop/shop-db: rule data.main.deny") {
			t.Errorf("EvaluateAll: %v, want an error naming Secret shop/shop-db", err)
		}
	})
}

func TestEvaluateConvertsGoValues(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

deny contains sprintf("%d %s", [input.spec.replicas, input.spec.names[1]]) if true
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	tests := []struct {
		name    string
		obj     map[string]any
		want    []string
		wantErr string
	}{
		{"typed values", map[string]any{"spec": map[string]any{"replicas": int64(3), "names": []string{"a", "b"}}}, []string{"3 b"}, ""},
		{"unconvertible value", map[string]any{"spec": map[string]any{"ch": make(chan int)}}, nil, "convert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Evaluate(t.Context(), tc.obj, EvalContext{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Evaluate: %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := messages(res); !slices.Equal(got, tc.want) {
				t.Errorf("messages = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConcurrentEvaluateAndLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(version int) {
		writeFile(t, dir, "p.rego", fmt.Sprintf("package main\n\ndeny contains \"v%d\" if true\nwarn contains \"w%d\" if true\n", version, version))
	}
	write(0)
	opts := Options{Paths: []string{dir}, Parameters: libraryParams()}
	e := loadEngine(t, opts)
	objs := []map[string]any{manifest(t, "deployment.yaml"), manifest(t, "pod.yaml")}

	// A result must come from one whole compiled set: the deny and warn
	// messages always carry the same version.
	consistent := func(r Result) error {
		var d, w string
		for _, v := range r.Violations {
			switch v.Rule {
			case "deny":
				d = strings.TrimPrefix(v.Message, "v")
			case "warn":
				w = strings.TrimPrefix(v.Message, "w")
			}
		}
		if d == "" || d != w {
			return fmt.Errorf("mixed or missing versions in %v", r.Violations)
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Go(func() {
			for range 25 {
				if g%2 == 0 {
					r, err := e.Evaluate(t.Context(), objs[0], EvalContext{Environment: "production"})
					if err == nil {
						err = consistent(r)
					}
					if err != nil {
						errs <- err
						return
					}
					continue
				}
				rs, err := e.EvaluateAll(t.Context(), objs, EvalContext{})
				if err != nil {
					errs <- err
					return
				}
				for _, r := range rs {
					if err := consistent(r); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	// Writes and loads stay on this goroutine: only the engine is shared.
	for v := 1; v <= 10; v++ {
		write(v)
		if err := e.Load(t.Context(), opts); err != nil {
			t.Fatalf("Load %d: %v", v, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSetRules checks which rules the query reads directly: those defined
// only by `contains` rules of one name, whose value is a set even when no
// definition matches.
func TestSetRules(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "policy.rego", `package main

deny contains "a" if input.kind == "Pod"
deny contains "b" if false
violation contains "v" if false
warn := "whole object"
deny_partly.set contains "x" if true
warn_object[k] := 1 if some k in ["a"]
`)
	writeFile(t, dir, "more.rego", `package main

violation contains "w" if input.kind == "Pod"
`)
	set, err := compile(t.Context(), Options{DisableLibrary: true, Paths: []string{dir}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	srcs, err := readPaths([]string{dir})
	if err != nil {
		t.Fatalf("readPaths: %v", err)
	}
	modules, err := parseSources(srcs)
	if err != nil {
		t.Fatalf("parseSources: %v", err)
	}
	compiler, err := compileModules(modules)
	if err != nil {
		t.Fatalf("compileModules: %v", err)
	}
	var got []string
	for r := range setRules(compiler, set.rules) {
		got = append(got, r.Rule)
	}
	slices.Sort(got)
	if want := []string{"deny", "violation"}; !slices.Equal(got, want) {
		t.Errorf("set rules = %v, want %v", got, want)
	}
}
