package reconciler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// load reads the inventory and the status of the source from the cluster, once. Until the
// inventory is read, nothing is applied: a reconciler that forgot what it applied could
// never prune it.
func (r *Reconciler) load(ctx context.Context) error {
	if r.loaded {
		return nil
	}
	d, found, err := readConfigMap(ctx, r.client, r.namespace, InventoryConfigMapName(r.src.Name))
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if found {
		inv, err := decodeInventory(d[inventoryKey])
		if err != nil {
			return fmt.Errorf("configmap %s/%s: %w", r.namespace, InventoryConfigMapName(r.src.Name), err)
		}
		r.inv = inv
	}
	st, found, err := ReadSourceStatus(ctx, r.client, r.namespace, r.src.Name)
	if err != nil {
		// The status is a report; an unreadable one is replaced.
		logr.FromContextOrDiscard(ctx).Error(err, "ignoring unreadable status")
	} else if found {
		r.status.Revision, r.status.Author, r.status.CommitTime, r.status.Subject = st.Revision, st.Author, st.CommitTime, st.Subject
		r.status.LastApplied = st.LastApplied
		r.status.DriftReverts = st.DriftReverts
		r.status.LastChange, r.status.LastChangeTime = st.LastChange, st.LastChangeTime
	}
	if err := r.loadSessions(ctx); err != nil {
		// Without the record, a session's patch after a restart would be against the
		// current Git and could undo others' commits: do not start without it.
		return err
	}
	r.status.ObjectsManaged = len(r.inv.refs)
	r.loaded = true
	return nil
}

// saveInventory writes inv to the cluster and makes it the source's inventory.
func (r *Reconciler) saveInventory(ctx context.Context, inv *inventory) error {
	_, err := applyConfigMap(ctx, r.client, r.namespace, InventoryConfigMapName(r.src.Name), componentInv, map[string]string{
		"source":     r.src.Name,
		inventoryKey: inv.encode(),
	})
	if err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	r.inv = inv
	return nil
}

// record reports the outcome of a sync in the status, Events, metrics and the log, and
// returns when to sync next.
func (r *Reconciler) record(ctx context.Context, start time.Time, out outcome) Result {
	log := logr.FromContextOrDiscard(ctx)
	now := r.clock.Now()
	st := &r.status
	st.LastAttempt = now
	st.AttemptedRevision = ""
	if out.rev != nil {
		st.AttemptedRevision = out.rev.Commit
	}
	st.Result = out.result
	st.Violations = out.violations
	st.ObjectsApplied, st.ObjectsPruned = out.applied, out.pruned
	st.ObjectsManaged = len(r.inv.refs)
	var msg string
	if out.err == nil {
		rev := out.rev
		r.ledger.RevisionApplied(now, r.src.Name, st.Revision, rev.Commit, rev.Author, rev.Subject, rev.Time)
		st.Revision, st.Author, st.CommitTime, st.Subject = rev.Commit, rev.Author, rev.Time, rev.Subject
		st.LastApplied = now
		msg = fmt.Sprintf("applied %s: %d objects created or changed, %d pruned, %d unchanged", short(rev.Commit), out.applied, out.pruned, out.unchanged)
		if len(out.orphaned) > 0 {
			msg += fmt.Sprintf("; %d orphaned (left Git, not deleted, no longer managed): %s", len(out.orphaned), strings.Join(out.orphaned, "; "))
		}
		if out.applied > 0 || out.pruned > 0 || len(out.orphaned) > 0 {
			r.noteChange(now, msg)
		}
		msg += heldBack(sortedBreakGlass(r.bg))
		r.failures = 0
	} else {
		msg = out.err.Error()
		r.failures++
	}
	st.Message = msg
	cm := r.writeStatus(ctx)
	r.metrics.observeSync(r.src.Name, out.result, r.clock.Since(start), out.applied, out.pruned)

	if out.err != nil {
		log.Error(out.err, "sync failed", "result", out.result, "failures", r.failures)
		r.event(cm, corev1.EventTypeWarning, string(out.result), "Sync", msg)
		return Result{RequeueAfter: r.backoff()}
	}
	log.Info("synced", "revision", out.rev.Commit, "applied", out.applied, "pruned", out.pruned, "unchanged", out.unchanged, "orphaned", len(out.orphaned))
	if out.applied > 0 || out.pruned > 0 || len(out.orphaned) > 0 {
		r.event(cm, corev1.EventTypeNormal, string(ResultApplied), "Sync", msg)
	}
	next := r.src.Interval.Duration
	for _, b := range r.bg {
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

// backoff is the wait after the latest of r.failures consecutive failed syncs.
func (r *Reconciler) backoff() time.Duration {
	d := minBackoff
	for i := 1; i < r.failures && d < r.src.Interval.Duration; i++ {
		d *= 2
	}
	return min(d, r.src.Interval.Duration)
}

// writeStatus writes the status ConfigMap, the one place the source's status is written, and
// returns it for Events to refer to. A failure is logged: the status is a report, and the
// sync's result does not depend on it.
func (r *Reconciler) writeStatus(ctx context.Context) *unstructured.Unstructured {
	r.saveSessions(ctx)
	st := &r.status
	st.BreakGlass = sortedBreakGlass(r.bg)
	r.metrics.setBreakGlass(r.src.Name, len(st.BreakGlass))
	name := StatusConfigMapName(r.src.Name)
	ref := &unstructured.Unstructured{}
	ref.SetAPIVersion("v1")
	ref.SetKind("ConfigMap")
	ref.SetNamespace(r.namespace)
	ref.SetName(name)
	data, err := encodeStatus(*st)
	if err == nil {
		// A sync that timed out still records why.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var cm *unstructured.Unstructured
		if cm, err = applyConfigMap(wctx, r.client, r.namespace, name, componentStatus, data); err == nil {
			return cm
		}
	}
	logr.FromContextOrDiscard(ctx).Error(err, "cannot write status")
	return ref
}

// maxNote is the longest note the API server accepts on an Event.
const maxNote = 1024

// event records an Event about regarding, shortening the note to what the API server
// accepts.
func (r *Reconciler) event(regarding runtime.Object, eventType, reason, action, note string) {
	r.eventWithMore(regarding, eventType, reason, action, note, "see the driftless log and status")
}

// eventWithMore is [Reconciler.event] saying where to read the rest of a shortened note.
func (r *Reconciler) eventWithMore(regarding runtime.Object, eventType, reason, action, note, where string) {
	if r.recorder == nil {
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
	r.recorder.Eventf(regarding, nil, eventType, reason, action, "%s", note)
}

// claims reads which objects other sources claim, from their inventories, once per source
// for the life of the value. An object labelled with another source that lists it in its
// inventory belongs to that source.
type claims struct {
	r    *Reconciler
	mu   sync.Mutex
	invs map[string]map[objKey]bool
}

// claimedByOther returns the other source that claims live's object, or "" when none does:
// the label names no other source, or that source's inventory does not list the object (it
// dropped or abandoned it, or the label was set by hand).
func (c *claims) claimedByOther(ctx context.Context, live *unstructured.Unstructured) (string, error) {
	owner := live.GetLabels()[v1alpha1.LabelSource]
	if owner == "" || owner == c.r.src.Name {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, ok := c.invs[owner]
	if !ok {
		d, found, err := readConfigMap(ctx, c.r.client, c.r.namespace, InventoryConfigMapName(owner))
		if err != nil {
			return "", err
		}
		keys = map[objKey]bool{}
		if found {
			inv, err := decodeInventory(d[inventoryKey])
			if err != nil {
				return "", fmt.Errorf("inventory of source %s: %w", owner, err)
			}
			keys = inv.keys()
		}
		if c.invs == nil {
			c.invs = map[string]map[objKey]bool{}
		}
		c.invs[owner] = keys
	}
	if keys[keyOf(live)] {
		return owner, nil
	}
	return "", nil
}
