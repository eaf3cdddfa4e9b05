package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
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

// isController reports whether manager names a controller rather than a person's tool: its
// fields, written during a break-glass session, are not taken over at expiry (the guard
// refuses break-glass writes under such names).
func isController(manager string) bool { return v1alpha1.IsControllerFieldManager(manager) }

// takeover decides which field managers' fields the reconciler takes over.
type takeover struct {
	// prefixes are the manager name prefixes taken over.
	prefixes []string
	// sessions knows when the recorded break-glass sessions began; nil knows none.
	sessions *sessionStarts
}

// sessionStarts holds when the open break-glass session on each object began. It has its own
// lock because applies run in parallel and diffs without the reconciler's lock.
type sessionStarts struct {
	mu    sync.Mutex
	start map[objKey]time.Time
}

// set records the start of k's session; a zero start forgets it.
func (s *sessionStarts) set(k objKey, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if start.IsZero() {
		delete(s.start, k)
		return
	}
	if s.start == nil {
		s.start = map[objKey]time.Time{}
	}
	s.start[k] = start
}

// get returns the start of k's session; zero when none is open.
func (s *sessionStarts) get(k objKey) time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start[k]
}

// sessionStart returns when the break-glass session on u began: the recorded start of its
// open session, or, when u carries break-glass annotations, the earliest time of the managed
// fields entries that own them. It is zero when u is under no break-glass session.
func (t takeover) sessionStart(u *unstructured.Unstructured) time.Time {
	if s := t.sessions.get(keyOf(u)); !s.IsZero() {
		return s
	}
	return breakGlassWritten(u)
}

// breakGlassWritten returns the earliest time of u's managed fields entries that own a
// break-glass annotation; zero when none does.
func breakGlassWritten(u *unstructured.Unstructured) time.Time {
	var first time.Time
	if !v1alpha1.HasBreakGlass(u.GetAnnotations()) {
		return first
	}
	for _, e := range u.GetManagedFields() {
		if e.Time == nil || !ownsBreakGlass(e) {
			continue
		}
		if first.IsZero() || e.Time.Time.Before(first) {
			first = e.Time.Time
		}
	}
	return first
}

// ownsBreakGlass reports whether the entry owns a break-glass annotation.
func ownsBreakGlass(e metav1.ManagedFieldsEntry) bool {
	set, err := fieldSet(e)
	if err != nil {
		return false
	}
	for _, a := range v1alpha1.BreakGlassAnnotations {
		if set.Has(fieldpath.MakePathOrDie("metadata", "annotations", a)) {
			return true
		}
	}
	return false
}

// foreign reports whether the entry's fields are to be taken over, on an object under a
// break-glass session that began at since (zero when none): an entry for the main resource
// (never status or scale) written by a manager whose name starts with one of the prefixes, by
// the reconciler itself with an update rather than an apply, by whoever set the break-glass
// annotations, or, during a session, by any manager but a controller (see [isController])
// at or after its start, so that everything written under a break-glass goes back to Git at
// its end.
func (t takeover) foreign(e metav1.ManagedFieldsEntry, since time.Time) bool {
	if e.Subresource != "" || ownsOnlyKept(e) {
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
	if !since.IsZero() && e.Time != nil && !e.Time.Time.Before(since.Truncate(time.Second)) && !isController(e.Manager) {
		return true
	}
	return ownsBreakGlass(e)
}

// hasForeign reports whether any field of u is owned by a manager to take over.
func (t takeover) hasForeign(u *unstructured.Unstructured) bool {
	since := t.sessionStart(u)
	for _, e := range u.GetManagedFields() {
		if t.foreign(e, since) {
			return true
		}
	}
	return false
}

// foreignManagers lists the names of the managers to take over, for messages.
func (t takeover) foreignManagers(u *unstructured.Unstructured) []string {
	since := t.sessionStart(u)
	var out []string
	for _, e := range u.GetManagedFields() {
		if t.foreign(e, since) && e.Manager != FieldManager {
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
	since := t.sessionStart(u)
	taken := &fieldpath.Set{}
	kept := make([]metav1.ManagedFieldsEntry, 0, len(entries))
	own := -1
	for _, e := range entries {
		if !t.foreign(e, since) {
			if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
				own = len(kept)
			}
			kept = append(kept, e)
			continue
		}
		set, err := takenFields(e)
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
