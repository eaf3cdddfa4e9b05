package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// seeded returns the seeded documents of a loaded engine, as "ref = value".
func seeded(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	set := e.current.Load()
	if set == nil {
		t.Fatal("no compiled set")
	}
	out := map[string]string{}
	var walk func(n *seedNode, path string)
	walk = func(n *seedNode, path string) {
		if n == nil {
			return
		}
		if n.value != nil {
			out[path] = n.value.String()
		}
		for k, c := range n.children {
			walk(c, path+"."+k)
		}
	}
	walk(set.seeds, "data")
	return out
}

func TestSeedsAreTheDocumentsThatDependOnlyOnParameters(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

xs := {x | some x in data.driftless.parameters.xs}
constant := {"a", "b"}
from_input := object.get(input, "kind", "none")
from_context := object.get(data.driftless.context, "environment", "none")
uses_input_helper := helper(1)
helper(n) := n + count(object.get(input, "spec", {}))
with_modifier := x if {
	x := xs with data.driftless.parameters as {"xs": ["y"]}
}

deny contains "x" if {
	input.kind in constant
	input.metadata.name in xs
}
`)
	writeFile(t, dir, "other.rego", `package other

whole_package := data.main
`)
	e := loadEngine(t, Options{Paths: []string{dir}, Parameters: map[string]any{"xs": []any{"x"}}})
	got := seeded(t, e)
	want := map[string]string{
		"data.main.xs":       `{"x"}`,
		"data.main.constant": `{"a", "b"}`,
		"data.driftless.library.allowed_registries.prefixes":      `set()`,
		"data.driftless.library.allowed_registries.registries":    `[]`,
		"data.driftless.library.container_resources.required":     `{{"name": "limits.cpu", "path": ["resources", "limits", "cpu"]}, {"name": "limits.memory", "path": ["resources", "limits", "memory"]}, {"name": "requests.cpu", "path": ["resources", "requests", "cpu"]}, {"name": "requests.memory", "path": ["resources", "requests", "memory"]}}`,
		"data.driftless.library.images_pinned.mutable_tags":       `{"latest"}`,
		"data.driftless.library.production_replicas.min_replicas": `2`,
		"data.driftless.library.required_labels.required":         `["app.kubernetes.io/name"]`,
		"data.driftless.lib.kubernetes.long_running_kinds":        `{"DaemonSet", "Deployment", "Pod", "ReplicaSet", "ReplicationController", "StatefulSet"}`,
		"data.driftless.lib.kubernetes.pod_template_kinds":        `{"DaemonSet", "Deployment", "Job", "ReplicaSet", "ReplicationController", "StatefulSet"}`,
		"data.driftless.lib.kubernetes.workload_kinds":            `{"CronJob", "DaemonSet", "Deployment", "Job", "Pod", "ReplicaSet", "ReplicationController", "StatefulSet"}`,
	}
	for ref, v := range want {
		if got[ref] != v {
			t.Errorf("seed %s = %q, want %q", ref, got[ref], v)
		}
	}
	for ref := range got {
		if _, ok := want[ref]; !ok {
			t.Errorf("seeded %s = %s, which depends on the evaluation or was not expected", ref, got[ref])
		}
	}
	res, err := e.Evaluate(t.Context(), map[string]any{"kind": "a", "metadata": map[string]any{"name": "x"}}, EvalContext{})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if !slices.Equal(messages(res), []string{"x"}) {
		t.Errorf("messages = %v, want [x]", messages(res))
	}
}

// TestSeedsFollowReloadedParameters checks that the documents computed at
// Load are computed again from the parameters of the next Load.
func TestSeedsFollowReloadedParameters(t *testing.T) {
	obj := setPath(t, manifest(t, "deployment.yaml"), "spec.template.spec.containers.0.image", "ghcr.io/acme/shop:main")
	e := New()
	for _, tc := range []struct {
		tags   []any
		denied bool
	}{
		{[]any{"latest"}, false},
		{[]any{"latest", "main"}, true},
		{[]any{"latest"}, false},
	} {
		if err := e.Load(t.Context(), Options{Parameters: map[string]any{"allowed_registries": []any{"ghcr.io/acme"}, "mutable_tags": tc.tags}}); err != nil {
			t.Fatalf("Load: %v", err)
		}
		res, err := e.Evaluate(t.Context(), obj, EvalContext{})
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		if got := slices.Contains(firedRules(res), "images_pinned"); got != tc.denied {
			t.Errorf("mutable_tags %v: images_pinned fired = %v, want %v (%v)", tc.tags, got, tc.denied, res.Violations)
		}
		var quoted []string
		for _, tag := range tc.tags {
			quoted = append(quoted, ast.StringTerm(tag.(string)).String())
		}
		slices.Sort(quoted)
		want := "{" + strings.Join(quoted, ", ") + "}"
		if got := seeded(t, e)["data.driftless.library.images_pinned.mutable_tags"]; got != want {
			t.Errorf("seeded mutable_tags = %s, want %s", got, want)
		}
	}
}

// TestSeedsHiddenUnderWith checks that a policy replacing the parameters
// with `with` sees documents computed from its replacement, not the seeds.
func TestSeedsHiddenUnderWith(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

import data.driftless.library.images_pinned

deny contains "replaced" if {
	images_pinned.mutable_tags == {"main"} with data.driftless.parameters as {"mutable_tags": ["main"]}
}

deny contains "loaded" if images_pinned.mutable_tags == {"latest"}
`)
	e := loadEngine(t, Options{Paths: []string{dir}})
	if _, ok := seeded(t, e)["data.driftless.library.images_pinned.mutable_tags"]; !ok {
		t.Fatal("mutable_tags not seeded: the test would prove nothing")
	}
	res, err := e.Evaluate(t.Context(), manifest(t, "configmap.yaml"), EvalContext{})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if got := messages(res); !slices.Equal(got, []string{"loaded", "replaced"}) {
		t.Errorf("messages = %v, want [loaded replaced]", got)
	}
}

// TestSeedsSkipFailingDocuments checks that a document that fails to
// evaluate neither fails the load nor stops the others from being seeded;
// evaluations report its error as before.
func TestSeedsSkipFailingDocuments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

conflict := 1 if true
conflict := 2 if true

deny contains "conflict" if conflict == 1
`)
	e := loadEngine(t, Options{Paths: []string{dir}})
	got := seeded(t, e)
	if _, ok := got["data.main.conflict"]; ok {
		t.Error("a failing document was seeded")
	}
	if _, ok := got["data.driftless.library.images_pinned.mutable_tags"]; !ok {
		t.Error("a failing document stopped the others from being seeded")
	}
	_, err := e.Evaluate(t.Context(), manifest(t, "configmap.yaml"), EvalContext{})
	if err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Errorf("Evaluate = %v, want the conflict error", err)
	}
}

// TestEvaluationCacheKeepsOPAsContract checks the flat virtual-document cache
// against the contract of OPA's: values and undefined results per ref,
// frames that hide what outer frames cached, refs with equal hashes kept
// apart, and keys copied out of the slice OPA reuses.
func TestEvaluationCacheKeepsOPAsContract(t *testing.T) {
	seeds := &seedNode{}
	seeds.put(ast.MustParseRef("data.lib.kinds"), ast.StringTerm("seeded"))
	c := newSeededCache(seeds)
	get := func(ref string) string {
		t.Helper()
		v, undefined := c.Get(ast.MustParseRef(ref))
		switch {
		case undefined && v != nil:
			t.Fatalf("Get(%s) = %v and undefined", ref, v)
		case undefined:
			return "undefined"
		case v == nil:
			return "missing"
		}
		return v.String()
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		for ref, w := range want {
			if got := get(ref); got != w {
				t.Errorf("%s: Get(%s) = %s, want %s", step, ref, got, w)
			}
		}
	}

	c.Put(ast.MustParseRef("data.a.b"), ast.IntNumberTerm(1))
	c.Put(ast.MustParseRef("data.a.c"), nil)
	// data.a.b and data.b.a hash alike under an order-blind sum; the cache
	// must still tell them apart.
	c.Put(ast.MustParseRef("data.b.a"), ast.IntNumberTerm(2))
	key := ast.MustParseRef(`data.f[{"x": 1}]`)
	c.Put(key, ast.IntNumberTerm(3))
	key[1] = ast.StringTerm("g") // OPA reuses its key slices
	check("outer frame", map[string]string{
		"data.a.b": "1", "data.a.c": "undefined", "data.b.a": "2", "data.a": "missing", "data.a.b.c": "missing",
		`data.f[{"x": 1}]`: "3", `data.g[{"x": 1}]`: "missing", `data.f[{"x": 2}]`: "missing",
		"data.lib.kinds": `"seeded"`,
	})

	c.Push()
	check("inner frame", map[string]string{"data.a.b": "missing", "data.a.c": "missing", "data.lib.kinds": "missing"})
	c.Put(ast.MustParseRef("data.a.b"), ast.IntNumberTerm(10))
	check("inner frame after Put", map[string]string{"data.a.b": "10"})
	c.Pop()
	check("outer frame after Pop", map[string]string{"data.a.b": "1", "data.b.a": "2", "data.lib.kinds": `"seeded"`})

	c.Put(ast.MustParseRef("data.a.b"), ast.IntNumberTerm(4))
	c.Put(ast.MustParseRef("data.b.a"), nil)
	check("replaced", map[string]string{"data.a.b": "4", "data.b.a": "undefined"})

	var keys []string
	for _, k := range c.Keys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	if want := []string{"data.a.b", "data.b.a", `data.f[{"x": 1}]`}; !slices.Equal(keys, want) {
		t.Errorf("Keys() = %v, want %v", keys, want)
	}
}

// TestEvaluationCacheResetForgetsEverything checks that a cache emptied for
// reuse keeps its seeds and nothing the last evaluation cached, and that
// one left inside a frame or grown too large is not reused.
func TestEvaluationCacheResetForgetsEverything(t *testing.T) {
	seeds := &seedNode{}
	seeds.put(ast.MustParseRef("data.lib.kinds"), ast.StringTerm("seeded"))
	c := newSeededCache(seeds)
	c.Put(ast.MustParseRef("data.lib.containers"), ast.StringTerm("first object's"))
	c.Put(ast.MustParseRef("data.lib.gone"), nil)
	if !c.reset() {
		t.Fatal("reset refused an ordinary cache")
	}
	for _, ref := range []string{"data.lib.containers", "data.lib.gone"} {
		if v, undefined := c.Get(ast.MustParseRef(ref)); v != nil || undefined {
			t.Errorf("after reset Get(%s) = %v, %v; want nothing cached", ref, v, undefined)
		}
	}
	if v, _ := c.Get(ast.MustParseRef("data.lib.kinds")); v == nil || v.String() != `"seeded"` {
		t.Errorf("after reset seed = %v, want \"seeded\"", v)
	}
	if len(c.Keys()) != 0 {
		t.Errorf("after reset Keys() = %v", c.Keys())
	}

	c.Push()
	if c.reset() {
		t.Error("reset accepted a cache with an open frame")
	}
	big := newSeededCache(nil)
	for i := range maxReusedEntries + 1 {
		big.Put(ast.Ref{ast.DefaultRootDocument, ast.IntNumberTerm(i)}, ast.IntNumberTerm(i))
	}
	if big.reset() {
		t.Error("reset accepted a cache past maxReusedEntries")
	}
}

// TestEvaluationsShareNoDocuments evaluates different objects one after
// another on one engine, whose evaluation caches are reused, and checks each
// result against an engine that evaluates only that object.
func TestEvaluationsShareNoDocuments(t *testing.T) {
	objs := []map[string]any{
		manifest(t, "deployment.yaml"),
		everythingWrong(t)[0],
		setPath(t, manifest(t, "pod.yaml"), "spec.containers.0.image", "nginx:latest"),
		manifest(t, "cronjob.yaml"),
		setPath(t, manifest(t, "deployment.yaml"), "spec.template.spec.containers.0.securityContext", map[string]any{"runAsUser": 0}),
		manifest(t, "secret.yaml"),
	}
	opts := Options{Parameters: libraryParams()}
	ec := EvalContext{Environment: "production"}
	want := make([]Result, len(objs))
	for i, obj := range objs {
		res, err := loadEngine(t, opts).Evaluate(t.Context(), obj, ec)
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		want[i] = res
	}
	shared := loadEngine(t, opts)
	for round := range 3 {
		for i, obj := range objs {
			got, err := shared.Evaluate(t.Context(), obj, ec)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("round %d, object %d: got %v, want %v", round, i, got.Violations, want[i].Violations)
			}
		}
	}
}
