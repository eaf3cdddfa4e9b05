package policy

import (
	"slices"
	"strings"
	"testing"
)

// libraryParams are the parameters the library tests run with.
func libraryParams() map[string]any {
	return map[string]any{"allowed_registries": []any{"ghcr.io/acme", "registry.example.com"}}
}

func TestLibraryListsEveryRule(t *testing.T) {
	rules, err := Library()
	if err != nil {
		t.Fatalf("Library: %v", err)
	}
	want := []string{
		"allowed_registries", "container_resources", "images_pinned", "no_host_network",
		"no_host_path", "no_host_pid", "no_plaintext_secrets", "no_privileged",
		"production_replicas", "readiness_probe", "required_labels", "run_as_non_root",
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Name)
		t.Run(r.Name, func(t *testing.T) {
			if r.Title == "" || r.Description == "" {
				t.Errorf("rule %s: title %q, description %q; want both set in the package METADATA", r.Name, r.Title, r.Description)
			}
			if r.Package() != "driftless.library."+r.Name {
				t.Errorf("Package() = %q", r.Package())
			}
		})
	}
	if !slices.Equal(got, want) {
		t.Errorf("Library() names = %v, want %v", got, want)
	}
}

func TestLibraryRegoUnitTests(t *testing.T) {
	report, err := RunTests(t.Context(), TestOptions{Library: true})
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	for _, f := range report.Failures() {
		t.Errorf("rego test failed: %s\n%s", f, f.Output)
	}
	if report.Skipped != 0 {
		t.Errorf("skipped = %d, want 0", report.Skipped)
	}
	rules, err := Library()
	if err != nil {
		t.Fatalf("Library: %v", err)
	}
	perPackage := map[string]int{}
	for _, r := range report.Results {
		perPackage[r.Package]++
	}
	for _, r := range rules {
		if n := perPackage[r.Package()+"_test"]; n < 2 {
			t.Errorf("rule %s has %d rego unit tests, want at least a passing and a failing case", r.Name, n)
		}
	}
	if perPackage["driftless.lib.kubernetes_test"] == 0 {
		t.Errorf("no rego unit tests for driftless.lib.kubernetes")
	}
}

func TestLibraryPassesCompliantManifests(t *testing.T) {
	e := loadEngine(t, Options{Parameters: libraryParams()})
	files := []string{"configmap.yaml", "sealedsecret.yaml"}
	for _, k := range workloadKinds() {
		files = append(files, k.file)
	}
	for _, env := range []string{"", "production"} {
		for _, f := range files {
			t.Run(f+"/"+env, func(t *testing.T) {
				res, err := e.Evaluate(t.Context(), manifest(t, f), EvalContext{Environment: env})
				if err != nil {
					t.Fatalf("Evaluate: %v", err)
				}
				if len(res.Violations) != 0 {
					t.Errorf("violations = %v, want none", res.Violations)
				}
			})
		}
	}
}

func TestLibraryRulesOnPodSpecs(t *testing.T) {
	e := loadEngine(t, Options{Parameters: libraryParams()})
	longRunning := []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"}
	tests := []struct {
		name  string
		edits map[string]any // pod spec path -> value
		kinds []string       // nil: every workload kind
		want  []string
	}{
		{name: "images_pinned/latest tag", edits: map[string]any{"containers.0.image": "ghcr.io/acme/shop:latest"}, want: []string{"images_pinned"}},
		{name: "images_pinned/no tag", edits: map[string]any{"containers.0.image": "ghcr.io/acme/shop"}, want: []string{"images_pinned"}},
		{name: "images_pinned/init container without tag", edits: map[string]any{"initContainers.0.image": "registry.example.com/migrate"}, want: []string{"images_pinned"}},
		{name: "images_pinned/immutable tag passes", edits: map[string]any{"containers.0.image": "ghcr.io/acme/shop:1.4.2"}},
		{name: "images_pinned/registry port is not a tag", edits: map[string]any{"containers.0.image": "registry.example.com:5000/shop"}, want: []string{"allowed_registries", "images_pinned"}},
		{name: "allowed_registries/docker hub image", edits: map[string]any{"containers.0.image": "nginx:1.25.3"}, want: []string{"allowed_registries"}},
		{name: "allowed_registries/init container from quay", edits: map[string]any{"initContainers.0.image": "quay.io/acme/migrate:1"}, want: []string{"allowed_registries"}},
		{name: "allowed_registries/lookalike prefix", edits: map[string]any{"containers.0.image": "ghcr.io/acme-evil/shop:1"}, want: []string{"allowed_registries"}},
		{name: "allowed_registries/allowed registry passes", edits: map[string]any{"containers.0.image": "registry.example.com/shop:2"}},
		{name: "container_resources/none", edits: map[string]any{"containers.0.resources": remove{}}, want: []string{"container_resources"}},
		{name: "container_resources/no cpu limit", edits: map[string]any{"containers.0.resources.limits.cpu": remove{}}, want: []string{"container_resources"}},
		{name: "container_resources/init container without requests", edits: map[string]any{"initContainers.0.resources.requests": remove{}}, want: []string{"container_resources"}},
		{name: "no_privileged/privileged container", edits: map[string]any{"containers.0.securityContext": map[string]any{"privileged": true}}, want: []string{"no_privileged"}},
		{name: "no_privileged/privileged init container", edits: map[string]any{"initContainers.0.securityContext": map[string]any{"privileged": true}}, want: []string{"no_privileged"}},
		{name: "no_privileged/explicitly unprivileged passes", edits: map[string]any{"containers.0.securityContext": map[string]any{"privileged": false}}},
		{name: "no_host_path/docker socket", edits: map[string]any{"volumes": []any{map[string]any{"name": "docker", "hostPath": map[string]any{"path": "/var/run/docker.sock"}}}}, want: []string{"no_host_path"}},
		{name: "no_host_path/emptyDir passes", edits: map[string]any{"volumes": []any{map[string]any{"name": "cache", "emptyDir": map[string]any{}}}}},
		{name: "no_host_network/host network", edits: map[string]any{"hostNetwork": true}, want: []string{"no_host_network"}},
		{name: "no_host_pid/host pid", edits: map[string]any{"hostPID": true}, want: []string{"no_host_pid"}},
		{name: "run_as_non_root/no security context", edits: map[string]any{"securityContext": remove{}}, want: []string{"run_as_non_root"}},
		{name: "run_as_non_root/container opts out", edits: map[string]any{"containers.0.securityContext": map[string]any{"runAsNonRoot": false}}, want: []string{"run_as_non_root"}},
		{name: "run_as_non_root/init container as uid 0", edits: map[string]any{"initContainers.0.securityContext": map[string]any{"runAsUser": 0}}, want: []string{"run_as_non_root"}},
		{name: "readiness_probe/missing", edits: map[string]any{"containers.0.readinessProbe": remove{}}, kinds: longRunning, want: []string{"readiness_probe"}},
		{name: "readiness_probe/jobs exempt", edits: map[string]any{"containers.0.readinessProbe": remove{}}, kinds: []string{"Job", "CronJob"}},
	}
	for _, tc := range tests {
		for _, k := range workloadKinds() {
			if tc.kinds != nil && !slices.Contains(tc.kinds, k.kind) {
				continue
			}
			t.Run(tc.name+"/"+k.kind, func(t *testing.T) {
				obj := manifest(t, k.file)
				for path, v := range tc.edits {
					obj = setPath(t, obj, k.podSpec+"."+path, v)
				}
				res, err := e.Evaluate(t.Context(), obj, EvalContext{})
				if err != nil {
					t.Fatalf("Evaluate: %v", err)
				}
				if got := firedRules(res); !slices.Equal(got, tc.want) {
					t.Errorf("fired rules = %v, want %v\nviolations: %v", got, tc.want, res.Violations)
				}
				for _, v := range res.Violations {
					if v.Severity != SeverityDeny || !strings.HasPrefix(v.Message, k.kind+"/") {
						t.Errorf("violation %v: want severity deny and a message naming %s/<name>", v, k.kind)
					}
				}
			})
		}
	}
}

func TestLibraryRulesOnObjects(t *testing.T) {
	production := EvalContext{Environment: "production"}
	tests := []struct {
		name   string
		obj    func(t *testing.T) map[string]any
		ec     EvalContext
		params map[string]any // nil: libraryParams()
		want   []string
	}{
		{
			name: "required_labels/Deployment without labels",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "deployment.yaml"), "metadata.labels", remove{})
			},
			want: []string{"required_labels"},
		},
		{
			name: "required_labels/CronJob with empty name label",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "cronjob.yaml"), "metadata.labels", map[string]any{"app.kubernetes.io/name": ""})
			},
			want: []string{"required_labels"},
		},
		{
			name: "required_labels/ConfigMap exempt",
			obj:  func(t *testing.T) map[string]any { return manifest(t, "configmap.yaml") },
		},
		{
			name: "required_labels/parameter adds a label",
			obj:  func(t *testing.T) map[string]any { return manifest(t, "pod.yaml") },
			params: map[string]any{
				"required_labels": []any{"app.kubernetes.io/name", "team"},
			},
			want: []string{"required_labels"},
		},
		{
			name: "production_replicas/one replica in production",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "deployment.yaml"), "spec.replicas", 1)
			},
			ec:   production,
			want: []string{"production_replicas"},
		},
		{
			name: "production_replicas/unset replicas in production",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "deployment.yaml"), "spec.replicas", remove{})
			},
			ec:   production,
			want: []string{"production_replicas"},
		},
		{
			name: "production_replicas/one replica in staging",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "deployment.yaml"), "spec.replicas", 1)
			},
			ec: EvalContext{Environment: "staging"},
		},
		{
			name: "production_replicas/production namespace parameter",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "deployment.yaml"), "spec.replicas", 1)
			},
			params: map[string]any{"production_namespaces": []any{"shop"}},
			want:   []string{"production_replicas"},
		},
		{
			name:   "production_replicas/min_replicas parameter",
			obj:    func(t *testing.T) map[string]any { return manifest(t, "deployment.yaml") },
			ec:     production,
			params: map[string]any{"min_replicas": 5},
			want:   []string{"production_replicas"},
		},
		{
			name: "production_replicas/StatefulSet exempt",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "statefulset.yaml"), "spec.replicas", 1)
			},
			ec: production,
		},
		{
			name: "no_plaintext_secrets/Secret with stringData",
			obj:  func(t *testing.T) map[string]any { return manifest(t, "secret.yaml") },
			want: []string{"no_plaintext_secrets"},
		},
		{
			name: "no_plaintext_secrets/Secret with data",
			obj: func(t *testing.T) map[string]any {
				s := setPath(t, manifest(t, "secret.yaml"), "stringData", remove{})
				return setPath(t, s, "data", map[string]any{"password": "aHVudGVyMg=="})
			},
			want: []string{"no_plaintext_secrets"},
		},
		{
			name: "no_plaintext_secrets/Secret without data",
			obj: func(t *testing.T) map[string]any {
				return setPath(t, manifest(t, "secret.yaml"), "stringData", remove{})
			},
		},
		{
			name: "no_plaintext_secrets/SealedSecret",
			obj:  func(t *testing.T) map[string]any { return manifest(t, "sealedsecret.yaml") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			if params == nil {
				params = libraryParams()
			}
			e := loadEngine(t, Options{Parameters: params})
			res, err := e.Evaluate(t.Context(), tc.obj(t), tc.ec)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := firedRules(res); !slices.Equal(got, tc.want) {
				t.Errorf("fired rules = %v, want %v\nviolations: %v", got, tc.want, res.Violations)
			}
		})
	}
}

// everythingWrong returns objects that, together, break every built-in rule.
func everythingWrong(t *testing.T) []map[string]any {
	t.Helper()
	d := manifest(t, "deployment.yaml")
	for path, v := range map[string]any{
		"metadata.labels":                                     remove{},
		"spec.replicas":                                       1,
		"spec.template.spec.hostNetwork":                      true,
		"spec.template.spec.hostPID":                          true,
		"spec.template.spec.securityContext":                  remove{},
		"spec.template.spec.volumes":                          []any{map[string]any{"name": "root", "hostPath": map[string]any{"path": "/"}}},
		"spec.template.spec.containers.0.image":               "nginx:latest",
		"spec.template.spec.containers.0.resources":           remove{},
		"spec.template.spec.containers.0.readinessProbe":      remove{},
		"spec.template.spec.containers.0.securityContext":     map[string]any{"privileged": true},
		"spec.template.spec.initContainers.0.image":           "busybox",
		"spec.template.spec.initContainers.0.resources":       remove{},
		"spec.template.spec.initContainers.0.securityContext": map[string]any{"runAsUser": 0},
	} {
		d = setPath(t, d, path, v)
	}
	return []map[string]any{d, manifest(t, "secret.yaml")}
}

func TestDisabledRules(t *testing.T) {
	lib, err := Library()
	if err != nil {
		t.Fatalf("Library: %v", err)
	}
	var all []string
	for _, r := range lib {
		all = append(all, r.Name)
	}
	objs := everythingWrong(t)
	fired := func(t *testing.T, e *Engine) []string {
		t.Helper()
		results, err := e.EvaluateAll(t.Context(), objs, EvalContext{Environment: "production"})
		if err != nil {
			t.Fatalf("EvaluateAll: %v", err)
		}
		var out []string
		for _, r := range results {
			out = append(out, firedRules(r)...)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}

	t.Run("none disabled", func(t *testing.T) {
		if got := fired(t, loadEngine(t, Options{Parameters: libraryParams()})); !slices.Equal(got, all) {
			t.Errorf("fired = %v, want every rule %v", got, all)
		}
	})
	for _, name := range all {
		t.Run(name, func(t *testing.T) {
			e := loadEngine(t, Options{Parameters: libraryParams(), DisabledRules: []string{name}})
			want := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == name })
			if got := fired(t, e); !slices.Equal(got, want) {
				t.Errorf("fired = %v, want %v", got, want)
			}
			rules, err := e.Rules()
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			for _, r := range rules {
				if r.Package == libraryPackagePrefix+name {
					t.Errorf("Rules() still lists %s", r)
				}
			}
		})
	}
	t.Run("library off", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "p.rego", "package main\n\ndeny contains \"always\" if true\n")
		got := fired(t, loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}}))
		if !slices.Equal(got, []string{"main.deny"}) {
			t.Errorf("fired = %v, want only main.deny", got)
		}
	})
}
