package policy

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// kindCorpus returns objects that break every built-in rule, in the shape
// of every workload kind, each also relabelled with every other kind name
// (and no kind, and a kind that is not a string), plus the test manifests.
func kindCorpus(t *testing.T) []map[string]any {
	t.Helper()
	wrong := everythingWrong(t)
	podSpec := wrong[0]["spec"].(map[string]any)["template"].(map[string]any)["spec"]
	labels := map[string]any{"team": "shop"}
	var shapes []map[string]any
	for _, k := range workloadKinds() {
		obj := setPath(t, manifest(t, k.file), k.podSpec, podSpec)
		obj = setPath(t, obj, "spec.replicas", 1)
		shapes = append(shapes, setPath(t, obj, "metadata.labels", labels))
	}
	shapes = append(shapes, wrong...)

	names := []any{"ConfigMap", "Service", "Secret", "SealedSecret", "Namespace", "deployment", ""}
	lib, err := Library()
	if err != nil {
		t.Fatalf("Library: %v", err)
	}
	for _, r := range lib {
		for _, k := range r.Kinds {
			if !slices.Contains(names, any(k)) {
				names = append(names, k)
			}
		}
	}
	names = append(names, 42, remove{})

	var corpus []map[string]any
	for _, shape := range shapes {
		for _, name := range names {
			corpus = append(corpus, setPath(t, shape, "kind", name))
		}
	}
	manifests, err := filepath.Glob(filepath.Join("testdata", "manifests", "*.yaml"))
	if err != nil {
		t.Fatalf("glob manifests: %v", err)
	}
	for _, m := range manifests {
		corpus = append(corpus, manifest(t, filepath.Base(m)))
	}
	return corpus
}

// TestKindDispatchMatchesEveryRule checks that querying only the rules whose
// declared kinds include the object's kind (custom.kinds in each built-in
// rule's METADATA) reports exactly what querying every rule reports, with
// and without user policies.
func TestKindDispatchMatchesEveryRule(t *testing.T) {
	corpus := kindCorpus(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"library", Options{Parameters: libraryParams()}},
		{"library and user policies", Options{Parameters: libraryParams(), Paths: []string{filepath.Join("testdata", "conftest")}}},
		{"parameters", Options{Parameters: map[string]any{
			"allowed_registries": []any{"docker.io/library"}, "mutable_tags": []any{"latest", "main"},
			"required_resources": []any{"limits.memory"}, "min_replicas": 3,
			"production_namespaces": []any{"shop"}, "required_labels": []any{"team", "tier"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dispatched, err := compileSet(t.Context(), tc.opts, true)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			full, err := compileSet(t.Context(), tc.opts, false)
			if err != nil {
				t.Fatalf("compile without dispatch: %v", err)
			}
			fired := 0
			for _, env := range []string{"", "production"} {
				ctxTerm := EvalContext{Environment: env}.term()
				for i, obj := range corpus {
					want, err := full.evaluate(t.Context(), obj, ctxTerm, nil)
					if err != nil {
						t.Fatalf("object %d: evaluate every rule: %v", i, err)
					}
					got, err := dispatched.evaluate(t.Context(), obj, ctxTerm, nil)
					if err != nil {
						t.Fatalf("object %d: evaluate by kind: %v", i, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("object %d (kind %v, %s): by kind %v\nwant (every rule) %v", i, obj["kind"], env, got.Violations, want.Violations)
					}
					fired += len(want.Violations)
				}
			}
			if fired == 0 {
				t.Fatal("no violation in the corpus: the comparison proves nothing")
			}
		})
	}
}

// TestKindDispatchSkipsUnrestrictedKinds checks what the dispatch is for: a
// ConfigMap queries no built-in rule, a Deployment all but the Secret rule,
// and user rules are queried for every kind.
func TestKindDispatchSkipsUnrestrictedKinds(t *testing.T) {
	names := func(q *kindQuery) []string {
		var out []string
		for _, r := range q.rules {
			out = append(out, RuleID(r.Package, r.Rule))
		}
		return out
	}
	set, err := compile(t.Context(), Options{Parameters: libraryParams()})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if q := set.queryFor(manifest(t, "configmap.yaml")); len(q.rules) != 0 {
		t.Errorf("ConfigMap queries %v, want no rule", names(q))
	}
	q := set.queryFor(manifest(t, "deployment.yaml"))
	if got := names(q); len(got) != 11 || slices.Contains(got, "no_plaintext_secrets") || !q.libraryOnly {
		t.Errorf("Deployment queries %v (library only: %v), want the 11 rules other than no_plaintext_secrets, library only", got, q.libraryOnly)
	}
	if got := names(set.queryFor(manifest(t, "secret.yaml"))); !slices.Equal(got, []string{"no_plaintext_secrets"}) {
		t.Errorf("Secret queries %v, want [no_plaintext_secrets]", got)
	}

	set, err = compile(t.Context(), Options{Parameters: libraryParams(), Paths: []string{filepath.Join("testdata", "conftest")}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	q = set.queryFor(manifest(t, "configmap.yaml"))
	if got := names(q); !slices.Equal(got, []string{"main.deny", "main.deny_latest_tag", "main.violation", "main.warn"}) || q.libraryOnly {
		t.Errorf("ConfigMap with user policies queries %v (library only: %v), want the user rules only, not library only", got, q.libraryOnly)
	}
}

// TestLibraryKindsAnnotation checks that custom.kinds is read from the
// METADATA of each built-in rule.
func TestLibraryKindsAnnotation(t *testing.T) {
	lib, err := Library()
	if err != nil {
		t.Fatalf("Library: %v", err)
	}
	want := map[string][]string{
		"no_plaintext_secrets": {"Secret"},
		"production_replicas":  {"Deployment"},
		"readiness_probe":      {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"},
	}
	workloads := []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
	for _, r := range lib {
		w, ok := want[r.Name]
		if !ok {
			w = workloads
		}
		if !slices.Equal(r.Kinds, w) {
			t.Errorf("%s: kinds %v, want %v", r.Name, r.Kinds, w)
		}
	}
	for _, bad := range []map[string]any{
		{"kinds": "Pod"}, {"kinds": []any{}}, {"kinds": []any{"Pod", 3}}, {"kinds": []any{""}},
	} {
		if _, err := annotatedKinds(bad); err == nil || !strings.Contains(err.Error(), "custom.kinds") {
			t.Errorf("annotatedKinds(%v) = %v, want an error naming custom.kinds", bad, err)
		}
	}
}

// TestInputLeavesOutManagedFieldsAndStatus checks what policies see of an
// admitted object: never metadata.managedFields; status unless only
// built-in rules are queried; and the caller's object is left untouched.
func TestInputLeavesOutManagedFieldsAndStatus(t *testing.T) {
	obj := manifest(t, "deployment-admitted.yaml")
	before, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	for _, withoutStatus := range []bool{false, true} {
		v, err := inputValue(obj, withoutStatus)
		if err != nil {
			t.Fatalf("inputValue: %v", err)
		}
		s := v.String()
		if strings.Contains(s, "managedFields") || strings.Contains(s, "fieldsV1") {
			t.Errorf("withoutStatus=%v: input carries managedFields", withoutStatus)
		}
		if got := strings.Contains(s, `"observedGeneration"`); got == withoutStatus {
			t.Errorf("withoutStatus=%v: input carries status = %v", withoutStatus, got)
		}
		if !strings.Contains(s, `"payment-gateway"`) || !strings.Contains(s, `"readinessProbe"`) {
			t.Errorf("withoutStatus=%v: input lost the object's fields: %s", withoutStatus, s)
		}
	}
	after, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if string(before) != string(after) {
		t.Error("inputValue changed the caller's object")
	}

	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

deny contains "managedFields" if input.metadata.managedFields
deny contains "status" if input.status.replicas == 3
deny contains "spec" if input.spec.replicas == 3
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	res, err := e.Evaluate(t.Context(), obj, EvalContext{})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if got := messages(res); !slices.Equal(got, []string{"spec", "status"}) {
		t.Errorf("user policy saw %v, want [spec status]: status kept, managedFields left out", got)
	}
}

// TestInputOfAnyGoType checks that objects holding values other than JSON
// types are converted (or refused with an error), never panic in OPA's lazy
// conversion.
func TestInputOfAnyGoType(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

deny contains sprintf("%v", [input.spec.x]) if input.spec.x
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	for _, tc := range []struct {
		name    string
		x       any
		want    string
		wantErr bool
	}{
		{name: "json.Number", x: json.Number("12"), want: "12"},
		{name: "map[string]string", x: map[string]string{"a": "b"}, want: `{"a": "b"}`},
		{name: "[]string", x: []string{"a"}, want: `["a"]`},
		{name: "int32", x: int32(7), want: "7"},
		{name: "struct", x: struct{ A string }{"b"}, want: `{"A": "b"}`},
		{name: "channel", x: make(chan int), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{"kind": "Thing", "metadata": map[string]any{"name": "x"}, "spec": map[string]any{"x": tc.x}}
			res, err := e.Evaluate(t.Context(), obj, EvalContext{})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "convert Thing x to rego input") {
					t.Fatalf("Evaluate = %v, %v; want a conversion error naming the object", res, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := messages(res); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("messages = %v, want [%s]", got, tc.want)
			}
		})
	}
}
