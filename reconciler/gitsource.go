package reconciler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// inventoryFieldManager owns status.inventory of a GitSource; FieldManager owns the rest of
// its status. Two managers let the inventory be saved before an apply, and the report after
// it, each without rewriting the other.
const inventoryFieldManager = FieldManager + "-inventory"

// getGitSource reads a GitSource; found is false when it does not exist.
func getGitSource(ctx context.Context, client dynamic.Interface, namespace, name string) (*v1alpha1.GitSource, bool, error) {
	u, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read gitsource %s/%s: %w", namespace, name, err)
	}
	gs, err := decodeGitSource(u)
	if err != nil {
		return nil, true, err
	}
	return gs, true, nil
}

// decodeGitSource converts an unstructured GitSource.
func decodeGitSource(u *unstructured.Unstructured) (*v1alpha1.GitSource, error) {
	var gs v1alpha1.GitSource
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gs); err != nil {
		return nil, fmt.Errorf("decode gitsource %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &gs, nil
}

// applyGitSourceStatus writes the fields of status that are set as the status of the
// GitSource with server-side apply as manager: the fields manager set before and leaves out
// now are removed, the other manager's are kept. It fails when the GitSource does not exist.
func applyGitSourceStatus(ctx context.Context, client dynamic.Interface, namespace, name, manager string, status map[string]any) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.APIVersion,
		"kind":       v1alpha1.GitSourceKind,
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"status":     status,
	}}
	out, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).ApplyStatus(ctx, name, u, metav1.ApplyOptions{FieldManager: manager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("write status of gitsource %s/%s: %w", namespace, name, err)
	}
	return out, nil
}

// inventoryID is the Flux-style id of an inventory entry: namespace_name_group_kind. None of
// the four can contain an underscore.
func inventoryID(r ObjectRef) string {
	return r.Namespace + "_" + r.Name + "_" + r.Group + "_" + r.Kind
}

// toStatus returns the inventory as GitSource status entries.
func (inv *inventory) toStatus() *v1alpha1.Inventory {
	out := &v1alpha1.Inventory{Entries: make([]v1alpha1.InventoryEntry, 0, len(inv.refs))}
	for _, r := range inv.refs {
		out.Entries = append(out.Entries, v1alpha1.InventoryEntry{ID: inventoryID(r), Version: r.Version, Origin: string(inv.origin(r.key()))})
	}
	return out
}

// inventoryFromStatus reads a GitSource's status inventory. Every entry must name a name, a
// kind and a version.
func inventoryFromStatus(s *v1alpha1.Inventory) (*inventory, error) {
	inv := &inventory{refs: make([]ObjectRef, 0, len(s.Entries))}
	for i, e := range s.Entries {
		parts := strings.Split(e.ID, "_")
		if len(parts) != 4 || parts[1] == "" || parts[3] == "" || e.Version == "" {
			return nil, fmt.Errorf("inventory entry %d (%q %q): needs namespace_name_group_kind and a version", i, e.ID, e.Version)
		}
		o := origin(e.Origin)
		switch o {
		case originUnknown, originCreated, originAdopted:
		default:
			return nil, fmt.Errorf("inventory entry %d (%q): origin %q is neither %q nor %q", i, e.ID, e.Origin, originCreated, originAdopted)
		}
		ref := ObjectRef{Group: parts[2], Version: e.Version, Kind: parts[3], Namespace: parts[0], Name: parts[1]}
		inv.refs = append(inv.refs, ref)
		inv.setOrigin(ref.key(), o)
	}
	return inv, nil
}

// readInventoryOf reads the inventory of source name: from its GitSource's status, or from
// the ConfigMap of a version before sources were GitSources when the status has none yet.
// found is false when there is neither.
func readInventoryOf(ctx context.Context, client dynamic.Interface, namespace, name string) (inv *inventory, legacy, found bool, err error) {
	gs, ok, err := getGitSource(ctx, client, namespace, name)
	if err != nil {
		return nil, false, false, err
	}
	if ok && gs.Status.Inventory != nil {
		inv, err := inventoryFromStatus(gs.Status.Inventory)
		if err != nil {
			return nil, false, true, fmt.Errorf("gitsource %s/%s: %w", namespace, name, err)
		}
		return inv, false, true, nil
	}
	d, ok, err := readConfigMap(ctx, client, namespace, InventoryConfigMapName(name))
	if err != nil || !ok {
		return nil, false, false, err
	}
	inv, err = decodeInventory(d[inventoryKey])
	if err != nil {
		return nil, true, true, fmt.Errorf("configmap %s/%s: %w", namespace, InventoryConfigMapName(name), err)
	}
	return inv, true, true, nil
}

// deleteLegacyConfigMaps deletes the status and inventory ConfigMaps of a version before
// sources were GitSources, once their content lives in the GitSource's status.
func deleteLegacyConfigMaps(ctx context.Context, client dynamic.Interface, namespace, name string) error {
	for _, cm := range []string{InventoryConfigMapName(name), StatusConfigMapName(name)} {
		err := client.Resource(configMapsGVR).Namespace(namespace).Delete(ctx, cm, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete configmap %s/%s: %w", namespace, cm, err)
		}
	}
	return nil
}

// maxConditionMessage bounds a condition's message; the rest is in the log and Events.
const maxConditionMessage = 4096

// maxHistoryMessage bounds the message of one history record.
const maxHistoryMessage = 512

// truncate shortens s to at most n bytes, on a rune boundary, saying so.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = " ... (truncated)"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// mtime converts a time for the status; nil when zero.
func mtime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t)
	return &m
}

// addHistory records a sync in the history, newest first: a sync of the same revision with
// the same result that changed nothing updates the newest record instead of pushing the older
// ones out.
func addHistory(h []v1alpha1.RevisionRecord, rec v1alpha1.RevisionRecord) []v1alpha1.RevisionRecord {
	if len(h) > 0 && h[0].Revision == rec.Revision && h[0].Result == rec.Result && rec.Created+rec.Changed+rec.Pruned == 0 {
		h[0].Time, h[0].Message = rec.Time, rec.Message
		h[0].Count++
		return h
	}
	rec.Count = 1
	out := append([]v1alpha1.RevisionRecord{rec}, h...)
	if len(out) > v1alpha1.MaxHistory {
		out = out[:v1alpha1.MaxHistory]
	}
	return out
}

// conditions computes the Ready, Reconciling and Stalled conditions of st at now.
func (e *env) conditions(st *Status, now time.Time) []metav1.Condition {
	conds := append([]metav1.Condition(nil), st.Conditions...)
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&conds, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: truncate(msg, maxConditionMessage),
			ObservedGeneration: e.run.Generation, LastTransitionTime: metav1.NewTime(now),
		})
	}
	stalledReason, stalledMsg := "", ""
	switch {
	case e.run.Stalled != "":
		stalledReason, stalledMsg = v1alpha1.ReasonInvalidSpec, e.run.Stalled
	case e.run.SuspendProblem != "":
		stalledReason, stalledMsg = v1alpha1.ReasonInvalidSuspend, "suspend annotations ignored: "+e.run.SuspendProblem
	}
	switch {
	case e.run.Stalled != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, e.run.Stalled)
		set(v1alpha1.ConditionReconciling, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "not syncing: "+e.run.Stalled)
	case e.run.Suspension != nil:
		msg := suspensionMessage(e.run.Suspension)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSuspended, msg)
		set(v1alpha1.ConditionReconciling, metav1.ConditionFalse, v1alpha1.ReasonSuspended, msg)
	case st.Result == "":
		set(v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonProgressing, "the first sync is running")
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonProgressing, "the first sync is running")
	case st.Result == ResultApplied:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, st.Message)
		set(v1alpha1.ConditionReconciling, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "synced "+short(st.Revision))
	default:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, string(st.Result), st.Message)
		set(v1alpha1.ConditionReconciling, metav1.ConditionFalse, string(st.Result), "the last sync failed; retrying with backoff")
	}
	if stalledReason != "" {
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue, stalledReason, stalledMsg)
	} else {
		set(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonSucceeded, "not stalled")
	}
	sort.Slice(conds, func(i, j int) bool { return conds[i].Type < conds[j].Type })
	return conds
}

// suspensionMessage says who suspended a source, why and until when.
func suspensionMessage(s *v1alpha1.SuspensionStatus) string {
	msg := "suspended: syncing and self-heal are off"
	if s.By != "" {
		msg += "; by " + s.By
	}
	if s.Until != nil {
		msg += "; until " + s.Until.UTC().Format(time.RFC3339)
	}
	return msg + "; reason: " + s.Reason
}

// gitSourceStatus returns the status fields the status writer owns, for st at now.
func (e *env) gitSourceStatus(st *Status, now time.Time) (map[string]any, error) {
	gs := v1alpha1.GitSourceStatus{
		ObservedGeneration:     e.run.Generation,
		Conditions:             e.conditions(st, now),
		URL:                    st.URL,
		Ref:                    st.Ref,
		LastAppliedRevision:    st.Revision,
		LastAppliedTime:        mtime(st.LastApplied),
		LastAttemptedRevision:  st.AttemptedRevision,
		LastSyncTime:           mtime(st.LastAttempt),
		LastSyncResult:         string(st.Result),
		LastHandledReconcileAt: st.LastHandledReconcileAt,
		LastChange:             truncate(st.LastChange, maxConditionMessage),
		LastChangeTime:         mtime(st.LastChangeTime),
		ObjectsManaged:         st.ObjectsManaged,
		ObjectsApplied:         st.ObjectsApplied,
		ObjectsPruned:          st.ObjectsPruned,
		DriftReverts:           st.DriftReverts,
		Suspension:             e.run.Suspension,
		History:                st.History,
	}
	if st.Revision != "" {
		gs.LastAppliedCommit = &v1alpha1.CommitInfo{Author: st.Author, Subject: st.Subject, CommitTime: mtime(st.CommitTime), SignedBy: st.SignedBy}
	}
	for _, v := range st.Violations {
		gs.Violations = append(gs.Violations, v1alpha1.PolicyViolation{Object: v.Object, Rule: v.Rule, Message: truncate(v.Message, maxHistoryMessage)})
	}
	for _, b := range st.BreakGlass {
		bs := v1alpha1.BreakGlassStatus{Object: b.Object, By: b.By, Group: b.Group, Managers: b.Managers, Reason: b.Reason, Since: mtime(b.Since), Until: metav1.NewTime(b.Until), Patch: b.Patch}
		for _, c := range b.Conflicts {
			bs.Conflicts = append(bs.Conflicts, v1alpha1.BreakGlassConflictStatus{Field: c.Field, Yours: c.Yours, Git: c.Git})
		}
		gs.BreakGlass = append(gs.BreakGlass, bs)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&gs)
	if err != nil {
		return nil, fmt.Errorf("encode status of gitsource %s: %w", e.src.Name, err)
	}
	return m, nil
}

// statusFromGitSource reads the status of a source from its GitSource.
func statusFromGitSource(gs *v1alpha1.GitSource) Status {
	s := gs.Status
	st := Status{
		Source: gs.Name, URL: s.URL, Ref: s.Ref, Path: gs.Spec.Path,
		Revision:               s.LastAppliedRevision,
		AttemptedRevision:      s.LastAttemptedRevision,
		Result:                 SyncResult(s.LastSyncResult),
		LastChange:             s.LastChange,
		ObjectsManaged:         s.ObjectsManaged,
		ObjectsApplied:         s.ObjectsApplied,
		ObjectsPruned:          s.ObjectsPruned,
		DriftReverts:           s.DriftReverts,
		ObservedGeneration:     s.ObservedGeneration,
		LastHandledReconcileAt: s.LastHandledReconcileAt,
		Conditions:             s.Conditions,
		History:                s.History,
		Suspension:             s.Suspension,
	}
	if st.URL == "" {
		st.URL = v1alpha1.RedactURL(gs.Spec.URL)
	}
	if st.Path == "" {
		st.Path = "."
	}
	t := func(m *metav1.Time) time.Time {
		if m == nil {
			return time.Time{}
		}
		return m.Time
	}
	st.LastApplied, st.LastAttempt, st.LastChangeTime = t(s.LastAppliedTime), t(s.LastSyncTime), t(s.LastChangeTime)
	if c := s.LastAppliedCommit; c != nil {
		st.Author, st.Subject, st.CommitTime, st.SignedBy = c.Author, c.Subject, t(c.CommitTime), c.SignedBy
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil {
		st.Message = c.Message
	}
	for _, v := range s.Violations {
		st.Violations = append(st.Violations, Violation{Object: v.Object, Rule: v.Rule, Message: v.Message})
	}
	for _, b := range s.BreakGlass {
		bo := BreakGlassObject{Object: b.Object, By: b.By, Group: b.Group, Managers: b.Managers, Reason: b.Reason, Since: t(b.Since), Until: b.Until.Time, Patch: b.Patch}
		for _, c := range b.Conflicts {
			bo.Conflicts = append(bo.Conflicts, BreakGlassConflict{Field: c.Field, Yours: c.Yours, Git: c.Git})
		}
		st.BreakGlass = append(st.BreakGlass, bo)
	}
	return st
}
