package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
)

// statusWriter is the one place a source's status is written: it records the outcome of
// every sync and the changes heals make in the state's status, and writes it, with the
// break-glass record, to the cluster. Its callers hold the state's lock.
type statusWriter struct {
	*env
	st *state
}

// record reports the outcome of a sync in the status, Events, metrics and the log, and
// returns when to sync next.
func (w *statusWriter) record(ctx context.Context, start time.Time, out outcome) Result {
	log := logr.FromContextOrDiscard(ctx)
	now := w.clock.Now()
	st := &w.st.status
	st.LastAttempt = now
	st.AttemptedRevision = ""
	if out.art != nil {
		st.AttemptedRevision = out.art.Revision
	}
	st.Result = out.result
	st.Violations = out.violations
	st.ObjectsApplied, st.ObjectsPruned = out.applied, out.pruned
	st.ObjectsManaged = len(w.st.inv.refs)
	var msg string
	if out.err == nil {
		art := out.art
		md := art.Metadata
		w.ledger.RevisionApplied(now, w.src.Name, st.Revision, ledger.Revision{
			Commit: art.Revision, Author: md.Author, Committer: md.Committer, SignedBy: md.SignedBy, Subject: md.Subject, CommitTime: md.Created,
		})
		st.Revision, st.Author, st.CommitTime, st.Subject, st.SignedBy = art.Revision, md.Author, md.Created, md.Subject, md.SignedBy
		st.LastApplied = now
		msg = fmt.Sprintf("applied %s: %d objects created or changed, %d pruned, %d unchanged", short(art.Revision), out.applied, out.pruned, out.unchanged)
		if len(out.orphaned) > 0 {
			msg += fmt.Sprintf("; %d orphaned (left Git, not deleted, no longer managed): %s", len(out.orphaned), strings.Join(out.orphaned, "; "))
		}
		if out.applied > 0 || out.pruned > 0 || len(out.orphaned) > 0 {
			w.noteChange(now, msg)
		}
		msg += heldBack(sortedBreakGlass(w.st.bg))
		w.st.failures = 0
	} else {
		msg = out.err.Error()
		w.st.failures++
	}
	st.Message = msg
	if out.request != "" {
		st.LastHandledReconcileAt = out.request
	}
	st.ObservedGeneration = w.run.Generation
	rec := v1alpha1.RevisionRecord{
		Revision: st.AttemptedRevision, Time: metav1.NewTime(now), Result: string(out.result),
		Message: truncate(msg, maxHistoryMessage), Created: out.created, Changed: out.applied - out.created, Pruned: out.pruned,
	}
	if out.art != nil {
		md := out.art.Metadata
		rec.Author, rec.Subject, rec.SignedBy = md.Author, md.Subject, md.SignedBy
	}
	st.History = addHistory(st.History, rec)
	cm := w.write(ctx)
	w.metrics.observeSync(w.src.Name, out.result, w.clock.Since(start), out.applied, out.pruned)

	if out.err != nil {
		log.Error(out.err, "sync failed", "result", out.result, "failures", w.st.failures)
		w.event(cm, corev1.EventTypeWarning, string(out.result), "Sync", msg)
		return Result{RequeueAfter: w.backoff()}
	}
	log.Info("synced", "revision", out.art.Revision, "signedBy", out.art.Metadata.SignedBy, "applied", out.applied, "pruned", out.pruned, "unchanged", out.unchanged, "orphaned", len(out.orphaned))
	if out.applied > 0 || out.pruned > 0 || len(out.orphaned) > 0 {
		w.event(cm, corev1.EventTypeNormal, string(ResultApplied), "Sync", msg)
	}
	next := w.src.Interval.Duration
	for _, b := range w.st.bg {
		if d := b.Until.Sub(now); d < next {
			// Never sooner than the first backoff: an expiry that passed but whose revert
			// failed must not make the loop spin.
			next = max(d, min(minBackoff, next))
		}
	}
	return Result{RequeueAfter: next}
}

// heldBack says which objects a sync left alone under break-glass, and why; empty when none.
func heldBack(bgs []BreakGlassObject) string {
	if len(bgs) == 0 {
		return ""
	}
	const show = 3
	parts := make([]string, 0, show+1)
	for i, b := range bgs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(bgs)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s by %s until %s, reason %q", b.Object, whoBrokeGlass(b), b.Until.UTC().Format(time.RFC3339), b.Reason))
	}
	return fmt.Sprintf("; %d held back under break-glass: %s", len(bgs), strings.Join(parts, "; "))
}

// backoff is the wait after the latest of w.st.failures consecutive failed syncs.
func (w *statusWriter) backoff() time.Duration {
	d := minBackoff
	for i := 1; i < w.st.failures && d < w.src.Interval.Duration; i++ {
		d *= 2
	}
	return min(d, w.src.Interval.Duration)
}

// write writes the status of the source's GitSource, the one place the source's status is
// written, and returns the GitSource for Events to refer to. A failure is logged: the status
// is a report, and the sync's result does not depend on it. After the first write, the
// ConfigMaps of a version before sources were GitSources are deleted.
func (w *statusWriter) write(ctx context.Context) *unstructured.Unstructured {
	w.saveSessions(ctx)
	st := &w.st.status
	st.BreakGlass = sortedBreakGlass(w.st.bg)
	w.metrics.setBreakGlass(w.src.Name, st.BreakGlass)
	ref := &unstructured.Unstructured{}
	ref.SetAPIVersion(v1alpha1.APIVersion)
	ref.SetKind(v1alpha1.GitSourceKind)
	ref.SetNamespace(w.namespace)
	ref.SetName(w.src.Name)
	now := w.clock.Now()
	data, err := w.gitSourceStatus(st, now)
	if err == nil {
		// A sync that timed out still records why.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var gs *unstructured.Unstructured
		if gs, err = applyGitSourceStatus(wctx, w.client, w.namespace, w.src.Name, FieldManager, data); err == nil {
			st.Conditions = w.conditions(st, now)
			if w.st.legacy {
				if err := deleteLegacyConfigMaps(wctx, w.client, w.namespace, w.src.Name); err != nil {
					logr.FromContextOrDiscard(ctx).Error(err, "cannot delete the ConfigMaps the inventory and status moved from")
				} else {
					w.st.legacy = false
				}
			}
			return gs
		}
	}
	logr.FromContextOrDiscard(ctx).Error(err, "cannot write status")
	return ref
}

// noteChange keeps what the latest change to the cluster was, so that later syncs that change
// nothing do not hide it. The caller holds w.st.mu.
func (w *statusWriter) noteChange(at time.Time, what string) {
	w.st.status.LastChange, w.st.status.LastChangeTime = what, at
}

// maxNote is the longest note the API server accepts on an Event.
const maxNote = 1024

// event records an Event about regarding, shortening the note to what the API server
// accepts.
func (e *env) event(regarding runtime.Object, eventType, reason, action, note string) {
	e.eventWithMore(regarding, eventType, reason, action, note, "see the driftless log and status")
}

// eventWithMore is [env.event] saying where to read the rest of a shortened note.
func (e *env) eventWithMore(regarding runtime.Object, eventType, reason, action, note, where string) {
	if e.recorder == nil {
		return
	}
	if len(note) > maxNote {
		more := "\n... (truncated; " + where + ")"
		cut := maxNote - len(more)
		for cut > 0 && !utf8.RuneStart(note[cut]) {
			cut--
		}
		note = note[:cut] + more
	}
	e.recorder.Eventf(regarding, nil, eventType, reason, action, "%s", note)
}
