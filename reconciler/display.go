package reconciler

import (
	"encoding/json"
	"fmt"
	"maps"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// lastAppliedAnnotation is where client-side kubectl apply keeps its last applied object.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// displayObject returns what a person compares between Git and the cluster: u without the
// fields the API server maintains, without status, and without the annotations that record
// how it was applied (revision, break-glass, kubectl's last applied configuration).
func displayObject(u *unstructured.Unstructured) map[string]any {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	ann := c.GetAnnotations()
	delete(ann, v1alpha1.AnnotationRevision)
	delete(ann, lastAppliedAnnotation)
	for _, a := range v1alpha1.BreakGlassAnnotations {
		delete(ann, a)
	}
	if len(ann) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	} else {
		c.SetAnnotations(ann)
	}
	return c.Object
}

// overlayPatch returns a patch that turns from (Git's version of an object) into to (the
// live version), as YAML a person can paste into a kustomize overlay: the object's
// apiVersion, kind, name and namespace with a JSON merge patch of the differences (a removed
// field is null). It is empty when the two do not differ.
func overlayPatch(from, to *unstructured.Unstructured) (string, error) {
	a, err := json.Marshal(displayObject(from))
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", describe(from), err)
	}
	b, err := json.Marshal(displayObject(to))
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", describe(to), err)
	}
	p, err := jsonpatch.CreateMergePatch(a, b)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", describe(to), err)
	}
	var patch map[string]any
	if err := json.Unmarshal(p, &patch); err != nil {
		return "", fmt.Errorf("diff %s: %w", describe(to), err)
	}
	return overlayYAML(patch, to)
}

// overlayYAML returns a JSON merge patch of u as YAML to paste into a kustomize overlay: with
// u's apiVersion, kind, name and namespace added. It is empty when the patch is.
func overlayYAML(patch map[string]any, to *unstructured.Unstructured) (string, error) {
	if len(patch) == 0 {
		return "", nil
	}
	patch = maps.Clone(patch)
	patch["apiVersion"] = to.GetAPIVersion()
	patch["kind"] = to.GetKind()
	md, _ := patch["metadata"].(map[string]any)
	md = maps.Clone(md)
	if md == nil {
		md = map[string]any{}
	}
	md["name"] = to.GetName()
	if ns := to.GetNamespace(); ns != "" {
		md["namespace"] = ns
	}
	patch["metadata"] = md
	out, err := yaml.Marshal(patch)
	if err != nil {
		return "", fmt.Errorf("encode patch of %s: %w", describe(to), err)
	}
	return string(out), nil
}

// unifiedDiff returns a unified diff of the YAML of from and to (either may be nil), as
// compared by [displayObject], with the given file labels. It is empty when they do not
// differ.
func unifiedDiff(from, to *unstructured.Unstructured, fromLabel, toLabel string) (string, error) {
	text := func(u *unstructured.Unstructured) (string, error) {
		if u == nil {
			return "", nil
		}
		b, err := yaml.Marshal(displayObject(u))
		return string(b), err
	}
	a, err := text(from)
	if err != nil {
		return "", err
	}
	b, err := text(to)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: fromLabel, ToFile: toLabel, Context: 3,
	})
}

// withoutForeignFields predicts the result of taking over dryRun's foreign fields and
// applying again: dryRun, the result of a dry-run apply, without the fields only foreign
// managers own. Only fields reached through object keys are removed (such as a ConfigMap's
// data key or an annotation); a field inside a list item is kept, since without the schema
// the list's keys are unknown.
func withoutForeignFields(dryRun *unstructured.Unstructured, t takeover) *unstructured.Unstructured {
	foreign, others := &fieldpath.Set{}, &fieldpath.Set{}
	since := t.sessionStart(dryRun)
	for _, e := range dryRun.GetManagedFields() {
		set, err := fieldSet(e)
		if err != nil {
			continue
		}
		if t.foreign(e, since) {
			foreign = foreign.Union(set.Difference(keptFromTakeover))
		} else {
			others = others.Union(set)
		}
	}
	remove := &fieldpath.Set{}
	for p := range foreign.Difference(others).Leaves().All() {
		if fieldNamesOnly(p) {
			remove.Insert(p)
		}
	}
	if remove.Empty() {
		return dryRun
	}
	tv, err := typed.DeducedParseableType.FromUnstructured(dryRun.Object)
	if err != nil {
		return dryRun
	}
	m, ok := tv.RemoveItems(remove).AsValue().Unstructured().(map[string]any)
	if !ok {
		return dryRun
	}
	return &unstructured.Unstructured{Object: m}
}

// fieldNamesOnly reports whether every element of p is a field name.
func fieldNamesOnly(p fieldpath.Path) bool {
	for _, pe := range p {
		if pe.FieldName == nil {
			return false
		}
	}
	return true
}
