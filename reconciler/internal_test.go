package reconciler

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// obj decodes a YAML object for a test.
func obj(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatalf("decode test object: %v", err)
	}
	return u
}

func TestTakeoverPatch(t *testing.T) {
	fields := func(s string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(s)} }
	entries := []metav1.ManagedFieldsEntry{
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: fields(`{"f:data":{"f:a":{}}}`)},
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: fields(`{"f:data":{"f:b":{}}}`)},
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: fields(`{"f:metadata":{"f:annotations":{"f:ctrl":{}}}}`)},
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Subresource: "status", FieldsType: "FieldsV1", FieldsV1: fields(`{"f:status":{"f:phase":{}}}`)},
		{Manager: "driftless-break-glass", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: fields(`{"f:metadata":{"f:annotations":{"f:driftless.dev/break-glass":{}}}}`)},
	}
	tk := takeover{prefixes: DefaultTakeoverManagers}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetResourceVersion("42")
	u.SetManagedFields(entries)
	if !tk.hasForeign(u) {
		t.Fatal("hasForeign = false, want true")
	}
	if got, want := tk.foreignManagers(u), []string{"kubectl-edit", "driftless-break-glass"}; !reflect.DeepEqual(got, want) {
		t.Errorf("foreignManagers = %v, want %v", got, want)
	}
	p, ok, err := tk.patch(u, time.Now())
	if err != nil || !ok {
		t.Fatalf("patch = %v, %v", ok, err)
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(p, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Op != "test" || ops[0].Path != "/metadata/resourceVersion" || string(ops[0].Value) != `"42"` || ops[1].Op != "replace" {
		t.Fatalf("patch = %s, want a resourceVersion test and a managedFields replace", p)
	}
	var kept []metav1.ManagedFieldsEntry
	if err := json.Unmarshal(ops[1].Value, &kept); err != nil {
		t.Fatal(err)
	}
	var managers []string
	for _, e := range kept {
		managers = append(managers, e.Manager+"/"+e.Subresource)
	}
	if want := []string{"driftless/", "kube-controller-manager/", "kubectl/status"}; !reflect.DeepEqual(managers, want) {
		t.Errorf("kept managers = %v, want %v", managers, want)
	}
	got, _ := fieldSet(kept[0])
	want, _ := fieldSet(metav1.ManagedFieldsEntry{FieldsV1: fields(`{"f:data":{"f:a":{},"f:b":{}},"f:metadata":{"f:annotations":{"f:driftless.dev/break-glass":{}}}}`)})
	if !got.Equals(want) {
		t.Errorf("driftless owns %s, want %s", got, want)
	}

	// Nothing foreign, nothing to do; and a manager only the prefixes name.
	u.SetManagedFields(entries[:1])
	if _, ok, _ := tk.patch(u, time.Now()); ok {
		t.Error("patch with only the reconciler's fields = true, want false")
	}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: fields(`{"f:data":{"f:c":{}}}`)}})
	if tk.hasForeign(u) {
		t.Error("helm's fields are foreign with the default prefixes")
	}
	if !(takeover{prefixes: []string{"helm"}}).hasForeign(u) {
		t.Error("helm's fields are not foreign with prefix helm")
	}
}

func TestPrepare(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	mapper.Add(schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}, meta.RESTScopeRoot)
	src := &v1alpha1.Source{Name: "platform", TargetNamespace: "prod"}
	rendered := []*unstructured.Unstructured{
		obj(t, "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: hook}\n"),
		obj(t, "apiVersion: example.dev/v1\nkind: Widget\nmetadata: {name: w}\n"),
		obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: other}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, labels: {app: web}}\n"),
		obj(t, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.dev}\nspec: {group: example.dev, scope: Namespaced, names: {kind: Widget, plural: widgets}}\n"),
		obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, namespace: ignored}\n"),
	}
	objs, err := prepare(rendered, mapper, src, "abc")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	var order []string
	for _, o := range objs {
		order = append(order, o.ref.String()+" "+o.gvr.Resource)
		if o.obj.GetLabels()[v1alpha1.LabelSource] != "platform" || o.obj.GetAnnotations()[v1alpha1.AnnotationRevision] != "abc" {
			t.Errorf("%s: labels %v annotations %v, want the source label and revision", o.ref, o.obj.GetLabels(), o.obj.GetAnnotations())
		}
	}
	want := []string{
		"Namespace prod namespaces",
		"CustomResourceDefinition.apiextensions.k8s.io widgets.example.dev customresourcedefinitions",
		"ConfigMap prod/cfg configmaps",
		"Deployment.apps other/web deployments",
		"Widget.example.dev prod/w widgets",
		"ValidatingWebhookConfiguration.admissionregistration.k8s.io hook validatingwebhookconfigurations",
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("prepared:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	if objs[2].obj.GetLabels()["app"] != "web" {
		t.Error("prepare dropped the object's own labels")
	}
	if rendered[3].GetNamespace() != "" {
		t.Error("prepare changed the rendered object")
	}

	errTests := []struct {
		name string
		src  *v1alpha1.Source
		objs []string
		want string
	}{
		{"no namespace", &v1alpha1.Source{Name: "s"}, []string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"}, "ConfigMap cfg: namespaced object has no namespace"},
		{"duplicate", src, []string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: prod}\n"}, "ConfigMap prod/cfg: declared twice"},
		{"unknown kind", src, []string{"apiVersion: example.dev/v1\nkind: Gadget\nmetadata: {name: g}\n"}, "Gadget"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			var in []*unstructured.Unstructured
			for _, y := range tc.objs {
				in = append(in, obj(t, y))
			}
			_, err := prepare(in, mapper, tc.src, "abc")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPruneCandidatesInReverseApplyOrder(t *testing.T) {
	inv := &inventory{refs: []ObjectRef{
		{Version: "v1", Kind: "Namespace", Name: "prod"},
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "widgets.example.dev"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "prod", Name: "a"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "prod", Name: "kept"},
		{Version: "v1", Kind: "PersistentVolumeClaim", Namespace: "prod", Name: "data"},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"},
		{Group: "example.dev", Version: "v1", Kind: "Widget", Namespace: "prod", Name: "w"},
	}}
	desired := map[objKey]*object{{Kind: "ConfigMap", Namespace: "prod", Name: "kept"}: {}}
	var got []string
	for _, r := range pruneCandidates(inv, desired) {
		got = append(got, r.String())
	}
	want := []string{"Widget.example.dev prod/w", "Deployment.apps prod/web", "ConfigMap prod/a", "PersistentVolumeClaim prod/data", "CustomResourceDefinition.apiextensions.k8s.io widgets.example.dev", "Namespace prod"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %v, want %v", got, want)
	}
}

func TestInventoryRoundTrip(t *testing.T) {
	inv := &inventory{refs: []ObjectRef{
		{Version: "v1", Kind: "Namespace", Name: "prod"},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"},
	}}
	text := inv.encode()
	if want := "[\n{\"v\":\"v1\",\"k\":\"Namespace\",\"n\":\"prod\"},\n{\"v\":\"apps/v1\",\"k\":\"Deployment\",\"ns\":\"prod\",\"n\":\"web\"}\n]\n"; text != want {
		t.Errorf("encode = %q, want %q", text, want)
	}
	got, err := decodeInventory(text)
	if err != nil || !reflect.DeepEqual(got, inv) {
		t.Errorf("decode(encode) = %+v, %v; want %+v", got, err, inv)
	}
	// Origins round-trip too; the format before origins decodes with none.
	inv.setOrigin(inv.refs[0].key(), originAdopted)
	inv.setOrigin(inv.refs[1].key(), originCreated)
	text = inv.encode()
	if want := "[\n{\"v\":\"v1\",\"k\":\"Namespace\",\"n\":\"prod\",\"o\":\"a\"},\n{\"v\":\"apps/v1\",\"k\":\"Deployment\",\"ns\":\"prod\",\"n\":\"web\",\"o\":\"c\"}\n]\n"; text != want {
		t.Errorf("encode with origins = %q, want %q", text, want)
	}
	if got, err := decodeInventory(text); err != nil || !reflect.DeepEqual(got, inv) {
		t.Errorf("decode(encode) with origins = %+v, %v; want %+v", got, err, inv)
	}
	old, err := decodeInventory(`[{"v":"v1","k":"Namespace","n":"prod"}]`)
	if err != nil || old.origin(objKey{Kind: "Namespace", Name: "prod"}) != originUnknown || old.origins != nil {
		t.Errorf("decode of the format before origins = %+v, %v; want one object of unknown origin", old, err)
	}
	for _, bad := range []string{"", "{}", `[{"v":"v1","k":"ConfigMap"}]`, `[{"v":"","k":"ConfigMap","n":"a"}]`, `[{"v":"a/b/c","k":"K","n":"a"}]`, `[{"v":"v1","k":"K","n":"a","x":1}]`, `[{"v":"v1","k":"K","n":"a","o":"x"}]`} {
		if _, err := decodeInventory(bad); err == nil {
			t.Errorf("decode(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzDecodeInventory(f *testing.F) {
	f.Add((&inventory{refs: []ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"}}}).encode())
	f.Add("[]")
	f.Add(`[{"v":"v1","k":"Namespace","n":"prod"}]`)
	f.Add(`[{"v":"v1","k":"Namespace","n":"prod","o":"a"},{"v":"v1","k":"ConfigMap","ns":"prod","n":"a","o":"c"}]`)
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := decodeInventory(s)
		if err != nil {
			return
		}
		again, err := decodeInventory(inv.encode())
		if err != nil {
			t.Fatalf("decode of an encoded inventory: %v", err)
		}
		if !reflect.DeepEqual(again, inv) {
			t.Fatalf("round trip changed the inventory: %+v != %+v", again, inv)
		}
	})
}

func TestStatusRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := Status{
		Source: "platform", URL: "https://git.example.com/config.git", Ref: "branch main", Path: "prod",
		Revision: "abc", Author: "A <a@example.com>", CommitTime: at, Subject: "Scale web",
		LastApplied: at, LastAttempt: at.Add(time.Minute), AttemptedRevision: "def",
		Result: ResultPolicyDenied, Message: "denied",
		Violations:     []Violation{{Object: "Deployment.apps prod/web", Rule: "replicas", Message: "too few"}},
		ObjectsManaged: 3, ObjectsApplied: 1, ObjectsPruned: 2, DriftReverts: 7,
		BreakGlass: []BreakGlassObject{{Object: "ConfigMap prod/app", By: "alice", Managers: "kubectl-edit", Reason: "INC-1", Until: at.Add(time.Hour), Patch: "data:\n  a: b\n"}},
	}
	d, err := encodeStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	if d[keyResult] != "PolicyDenied" || d[keyReverts] != "7" || d[keyLastAttempt] != "2026-03-01T12:01:00Z" {
		t.Errorf("encoded = %v", d)
	}
	got, err := decodeStatus(d)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("decode(encode) = %+v, %v\nwant %+v", got, err, st)
	}
	if _, err := decodeStatus(map[string]string{keyReverts: "many"}); err == nil || !strings.Contains(err.Error(), keyReverts) {
		t.Errorf("decode of a bad count: %v, want an error naming %s", err, keyReverts)
	}
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add("Applied", "2026-03-01T12:00:00Z", "3", "- object: a\n  rule: r\n  message: m\n", "- object: o\n  until: 2026-03-01T12:00:00Z\n")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, result, attempt, reverts, violations, breakGlass string) {
		st, err := decodeStatus(map[string]string{keyResult: result, keyLastAttempt: attempt, keyReverts: reverts, keyViolations: violations, keyBreakGlass: breakGlass})
		if err != nil {
			return
		}
		d, err := encodeStatus(st)
		if err != nil {
			t.Fatalf("encode of a decoded status: %v", err)
		}
		again, err := decodeStatus(d)
		if err != nil {
			t.Fatalf("decode of an encoded status: %v", err)
		}
		d2, err := encodeStatus(again)
		if err != nil || !reflect.DeepEqual(d, d2) {
			t.Fatalf("encoding is not stable: %v\n%v\n%v", err, d, d2)
		}
	})
}

func TestOverlayPatchAndForeignFields(t *testing.T) {
	dry := obj(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: prod
  resourceVersion: "9"
  annotations:
    driftless.dev/revision: abc
    driftless.dev/break-glass: INC-1
  managedFields:
  - manager: driftless
    operation: Apply
    apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1: {"f:data": {"f:color": {}}, "f:metadata": {"f:annotations": {"f:driftless.dev/revision": {}}}}
  - manager: kubectl-patch
    operation: Update
    apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1: {"f:data": {"f:extra": {}, "f:color": {}}, "f:metadata": {"f:annotations": {"f:driftless.dev/break-glass": {}}}}
data:
  color: blue
  extra: added
`)
	git := withoutForeignFields(dry, takeover{prefixes: DefaultTakeoverManagers})
	if _, found, _ := unstructured.NestedString(git.Object, "data", "extra"); found {
		t.Error("the field only kubectl-patch owns is still there")
	}
	if c, _, _ := unstructured.NestedString(git.Object, "data", "color"); c != "blue" {
		t.Error("the field the reconciler also owns was removed")
	}
	if _, ok := git.GetAnnotations()[v1alpha1.AnnotationBreakGlass]; ok {
		t.Error("the break-glass annotation is still there")
	}
	live := dry.DeepCopy()
	_ = unstructured.SetNestedField(live.Object, "red", "data", "color")
	patch, err := overlayPatch(git, live)
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\ndata:\n  color: red\n  extra: added\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: prod\n"
	if patch != want {
		t.Errorf("patch =\n%s\nwant\n%s", patch, want)
	}
	if p, _ := overlayPatch(live, live); p != "" {
		t.Errorf("patch between equal objects = %q, want empty", p)
	}
}

func TestBackoff(t *testing.T) {
	w := &statusWriter{env: &env{src: v1alpha1.Source{Interval: metav1.Duration{Duration: 10 * time.Second}}}, st: &state{}}
	var got []time.Duration
	for w.st.failures = 1; w.st.failures <= 6; w.st.failures++ {
		got = append(got, w.backoff())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backoffs = %v, want %v", got, want)
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"4f2e0c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "4f2e0c1d9a8b"},
		{"sha256:4f2e0c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "sha256:4f2e0c1d9a8b"},
		{"abc", "abc"},
	} {
		if got := short(tc.in); got != tc.want {
			t.Errorf("short(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
