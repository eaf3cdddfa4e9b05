package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// FieldManager is the field manager the reconciler applies with.
const FieldManager = "driftless"

// DefaultTakeoverManagers are the field managers whose fields the reconciler takes over, so
// that its next apply removes what Git does not declare. They are the names kubectl uses
// (kubectl, kubectl-client-side-apply, kubectl-edit, kubectl-patch, kubectl-create,
// kubectl-replace, kubectl-label, kubectl-annotate, kubectl-set ...) and the placeholder the
// API server gives fields written before anyone applied (before-first-apply). Kubernetes'
// own controllers and other operators use other names and are left alone.
var DefaultTakeoverManagers = []string{"kubectl", "before-first-apply"}

// breakGlassPaths are the field paths of the break-glass annotations.
var breakGlassPaths = []fieldpath.Path{
	fieldpath.MakePathOrDie("metadata", "annotations", v1alpha1.AnnotationBreakGlass),
	fieldpath.MakePathOrDie("metadata", "annotations", v1alpha1.AnnotationBreakGlassUntil),
	fieldpath.MakePathOrDie("metadata", "annotations", v1alpha1.AnnotationBreakGlassBy),
}

// takeover decides which field managers' fields the reconciler takes over.
type takeover struct {
	// prefixes are the manager name prefixes taken over.
	prefixes []string
}

// foreign reports whether the entry's fields are to be taken over: an entry for the main
// resource (never status or scale) written by a manager whose name starts with one of the
// prefixes, by the reconciler itself with an update rather than an apply, or by whoever set
// the break-glass annotations.
func (t takeover) foreign(e metav1.ManagedFieldsEntry) bool {
	if e.Subresource != "" {
		return false
	}
	if e.Manager == FieldManager {
		return e.Operation != metav1.ManagedFieldsOperationApply
	}
	for _, p := range t.prefixes {
		if strings.HasPrefix(e.Manager, p) {
			return true
		}
	}
	set, err := fieldSet(e)
	if err != nil {
		return false
	}
	for _, p := range breakGlassPaths {
		if set.Has(p) {
			return true
		}
	}
	return false
}

// hasForeign reports whether any field of u is owned by a manager to take over.
func (t takeover) hasForeign(u *unstructured.Unstructured) bool {
	for _, e := range u.GetManagedFields() {
		if t.foreign(e) {
			return true
		}
	}
	return false
}

// foreignManagers lists the names of the managers to take over, for messages.
func (t takeover) foreignManagers(u *unstructured.Unstructured) []string {
	var out []string
	for _, e := range u.GetManagedFields() {
		if t.foreign(e) && e.Manager != FieldManager {
			out = append(out, e.Manager)
		}
	}
	return out
}

// patch returns a JSON patch that moves every field owned by a foreign manager into the
// reconciler's apply entry, conditional on u's resource version, and whether there is
// anything to move. After it, the reconciler is the only owner of those fields, so its next
// apply removes every one of them that Git does not declare.
func (t takeover) patch(u *unstructured.Unstructured, now time.Time) ([]byte, bool, error) {
	entries := u.GetManagedFields()
	taken := &fieldpath.Set{}
	kept := make([]metav1.ManagedFieldsEntry, 0, len(entries))
	own := -1
	for _, e := range entries {
		if !t.foreign(e) {
			if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
				own = len(kept)
			}
			kept = append(kept, e)
			continue
		}
		set, err := fieldSet(e)
		if err != nil {
			return nil, false, fmt.Errorf("managed fields of %s: %w", e.Manager, err)
		}
		taken = taken.Union(set)
	}
	if len(kept) == len(entries) {
		return nil, false, nil
	}
	if own < 0 {
		kept = append(kept, metav1.ManagedFieldsEntry{
			Manager:    FieldManager,
			Operation:  metav1.ManagedFieldsOperationApply,
			APIVersion: u.GetAPIVersion(),
			Time:       &metav1.Time{Time: now.UTC().Truncate(time.Second)},
			FieldsType: "FieldsV1",
		})
		own = len(kept) - 1
	}
	mine, err := fieldSet(kept[own])
	if err != nil {
		return nil, false, fmt.Errorf("managed fields of %s: %w", FieldManager, err)
	}
	raw, err := mine.Union(taken).ToJSON()
	if err != nil {
		return nil, false, fmt.Errorf("encode managed fields: %w", err)
	}
	kept[own].FieldsV1 = &metav1.FieldsV1{Raw: raw}
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": u.GetResourceVersion()},
		{"op": "replace", "path": "/metadata/managedFields", "value": kept},
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, false, fmt.Errorf("encode managed fields patch: %w", err)
	}
	return b, true, nil
}

// fieldSet decodes the fields of a managed fields entry.
func fieldSet(e metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	s := &fieldpath.Set{}
	if e.FieldsV1 == nil || len(e.FieldsV1.Raw) == 0 {
		return s, nil
	}
	if err := s.FromJSON(bytes.NewReader(e.FieldsV1.Raw)); err != nil {
		return nil, err
	}
	return s, nil
}
