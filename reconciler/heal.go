package reconciler

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// healer keeps the applied objects as the last applied revision declares them: it watches
// them, checks every object that changed for drift and reverts it, leaves objects alone
// under an active break-glass, schedules their revert at expiry, and keeps the record of
// break-glass sessions. [healer.reverted] is the one place a revert is recorded. A heal
// holds the state's lock only to check and revert one object.
type healer struct {
	*env
	st     *state
	writes *writeLog
	apply  *applier
	status *statusWriter
	// timers fire when a break-glass expires; guarded by st.mu.
	timers map[objKey]expiryTimer
}

// expiryTimer fires when a break-glass expires.
type expiryTimer struct {
	until time.Time
	timer clock.Timer
}

// runHealWorker checks queued objects for drift until the queue shuts down.
func (h *healer) runHealWorker(ctx context.Context, w *watcher) {
	for {
		k, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		if err := h.heal(ctx, k); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "cannot revert drift", "object", k.String())
			w.queue.AddRateLimited(k)
		} else {
			w.queue.Forget(k)
		}
		w.queue.Done(k)
	}
}

// heal checks one managed object against the last applied revision and reverts any change
// made out of band, unless the object is under an active break-glass. It takes h.st.mu.
func (h *healer) heal(ctx context.Context, k objKey) error {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	o := h.st.desired[k]
	if o == nil || ctx.Err() != nil {
		return nil
	}
	live, err := h.apply.getLive(ctx, o)
	if err != nil {
		return err
	}
	keepLive(o, live, true)
	if live != nil && (h.writes.ownWrite(k, live.GetResourceVersion()) || h.writes.verifiedAt(o, live.GetResourceVersion())) {
		return nil
	}
	if live != nil {
		// Another source took the object over: the conflict is for a sync to report, not
		// for two watchers to fight over.
		owner, err := (&claims{e: h.env}).claimedByOther(ctx, live)
		if err != nil {
			return err
		}
		if owner != "" {
			logr.FromContextOrDiscard(ctx).Info("not reverting object another source applied", "object", o.ref.String(), "owner", owner)
			return nil
		}
	}
	var bg breakGlass
	if live != nil {
		bg = readBreakGlass(live, h.clock.Now(), h.maxBreakGlass())
		if bg.State == v1alpha1.BreakGlassActive {
			dry, err := h.dryRun(ctx, o)
			if err != nil {
				return err
			}
			h.noteBreakGlass(ctx, o, live, dry, bg, h.st.status.Revision)
			return nil
		}
	}
	// A break-glass session still open ends with an apply, which records it.
	drift := live == nil || bg.State != v1alpha1.BreakGlassNone || h.st.sessions[k] != nil || h.takeover.hasForeign(live)
	if !drift {
		dry, err := h.dryRun(ctx, o)
		if err != nil {
			return err
		}
		drift = !sameState(dry, live)
	}
	if !drift {
		h.writes.verify(o, live.GetResourceVersion())
		return nil
	}
	res, err := h.apply.applyObject(ctx, o, live)
	if err != nil {
		return err
	}
	h.writes.verify(o, res.GetResourceVersion())
	h.reverted(ctx, o, live, res, bg, h.st.status.Revision)
	h.dropBreakGlass(k)
	h.status.write(ctx)
	return nil
}

// reverted records that before, a live object changed out of band (nil when it was deleted),
// was reverted to after, Git at revision rev: a drift revert in the status and metrics, an
// Event on the object and a log line, both carrying the patch that would make the change in
// Git. The revert of a break-glass ends its session: the record keeps the patch, rebased on
// Git now, and the conflicts. It is the one place a revert is recorded; the caller holds
// h.st.mu.
func (h *healer) reverted(ctx context.Context, o *object, before, after *unstructured.Unstructured, bg breakGlass, rev string) {
	h.st.status.DriftReverts++
	h.metrics.driftReverted(h.src.Name)
	k := o.ref.key()
	log := logr.FromContextOrDiscard(ctx).WithValues("object", o.ref.String())
	now := h.clock.Now()
	if before == nil {
		log.Info("recreated object deleted out of band")
		h.closeSession(k, endingOf(bg), "", rev, "", nil)
		h.ledger.Reverted(now, h.src.Name, "DriftReverted", "", rev, nil, after)
		h.status.noteChange(now, "recreated "+o.ref.String()+", deleted out of band")
		h.event(after, corev1.EventTypeWarning, "DriftReverted", "Revert", "recreated: the object was deleted out of band; delete it in Git instead")
		return
	}
	by := strings.Join(h.takeover.foreignManagers(before), ", ")
	if by == "" {
		by = "an unknown field manager"
	}
	s := h.st.sessions[k]
	if s == nil && bg.State != v1alpha1.BreakGlassNone {
		// A break-glass the reconciler never saw active: reverted at once when invalid, or
		// expired before the reconciler looked.
		s = h.openSession(ctx, o, before, nil, bg, rev)
	}
	var (
		patch     string
		conflicts []BreakGlassConflict
		err       error
	)
	rebased := s != nil && s.Base != ""
	if s != nil {
		patch, conflicts, err = sessionPatch(s, before, after)
	} else {
		patch, err = overlayPatch(after, before)
	}
	if err != nil {
		log.Error(err, "cannot compute the reverted change")
	}
	reason, what := "DriftReverted", "reverted a change made out of band by "+by
	if s != nil {
		if s.By != "" {
			by = s.By + " (" + by + ")"
		}
		ending := endingOf(bg)
		switch ending {
		case EndingExpired:
			reason = "BreakGlassExpired"
			what = fmt.Sprintf("break-glass %q expired at %s; reverted to Git the change made by %s", s.Reason, s.Until.Format(time.RFC3339), by)
		case EndingInvalid:
			reason = "BreakGlassInvalid"
			what = fmt.Sprintf("break-glass not honoured (%s); reverted to Git the change made by %s", bg.Problem, by)
		default:
			reason = "BreakGlassEnded"
			what = fmt.Sprintf("break-glass %q ended early; reverted to Git the change made by %s", s.Reason, by)
		}
		if managers := strings.Join(h.takeover.foreignManagers(before), ", "); managers != "" {
			s.Managers = managers
		}
		problem := ""
		if ending == EndingInvalid {
			problem = bg.Problem
		}
		h.closeSession(k, ending, problem, rev, patch, conflicts)
	}
	log.Info("reverted drift", "reason", reason, "by", by, "revision", rev, "patch", patch, "conflicts", conflicts)
	h.ledger.Reverted(now, h.src.Name, reason, by, rev, before, after)
	h.status.noteChange(now, fmt.Sprintf("%s: %s", o.ref, what))
	note := what
	switch {
	case patch != "" && rebased:
		note += "; to keep it, commit this patch to the overlay (your change only, rebased on Git at " + short(rev) + "):\n" + patch
	case patch != "":
		note += "; to keep it, commit this patch to the overlay:\n" + patch
	case s != nil && len(conflicts) == 0:
		note += "; nothing to commit: Git has every change"
	default:
		note += "\n"
	}
	if len(conflicts) > 0 {
		note += "conflicts (you and Git changed these since the break-glass began; the patch leaves them out):\n" + formatConflicts(conflicts)
	}
	more := "see the driftless log and status"
	if s != nil {
		more = "see driftless break-glass --history"
	}
	h.eventWithMore(after, corev1.EventTypeWarning, reason, "Revert", note, more)
}

// noteBreakGlass records an object left alone under an active break-glass, with its change
// against Git at revision rev, and schedules its revert at expiry. The first time it sees the
// break-glass it opens a session whose base is Git's version of the object then. The caller
// holds h.st.mu.
func (h *healer) noteBreakGlass(ctx context.Context, o *object, live, dry *unstructured.Unstructured, bg breakGlass, rev string) {
	k := o.ref.key()
	var git *unstructured.Unstructured
	if dry != nil {
		git = withoutForeignFields(dry, h.takeover)
	}
	s := h.openSession(ctx, o, live, git, bg, rev)
	var (
		patch     string
		conflicts []BreakGlassConflict
	)
	if git != nil {
		var err error
		if patch, conflicts, err = sessionPatch(s, live, git); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "cannot compute break-glass diff", "object", o.ref.String())
		}
	}
	entry := BreakGlassObject{
		Object:    o.ref.String(),
		By:        bg.By,
		Group:     bg.Group,
		Managers:  strings.Join(h.takeover.foreignManagers(live), ", "),
		Reason:    bg.Reason,
		Since:     s.Start,
		Until:     bg.Until,
		Patch:     patch,
		Conflicts: conflicts,
	}
	s.Managers = entry.Managers
	prev, seen := h.st.bg[k]
	h.st.bg[k] = entry
	h.scheduleExpiry(k, bg.Until)
	if seen && reflect.DeepEqual(prev, entry) && !h.st.sessionsDirty {
		return
	}
	logr.FromContextOrDiscard(ctx).Info("leaving object alone under break-glass", "object", o.ref.String(),
		"reason", bg.Reason, "until", bg.Until, "by", entry.By, "managers", entry.Managers, "patch", patch, "conflicts", conflicts)
	if !seen || !prev.Until.Equal(entry.Until) {
		note := fmt.Sprintf("left alone until %s (break-glass %q by %s); reverted to Git then. Change against Git:\n%s",
			bg.Until.Format(time.RFC3339), bg.Reason, whoBrokeGlass(entry), patch)
		if len(conflicts) > 0 {
			note += "conflicts with Git:\n" + formatConflicts(conflicts)
		}
		h.eventWithMore(live, corev1.EventTypeNormal, "BreakGlassActive", "Skip", note, "see driftless status")
	}
	h.status.write(ctx)
}

// whoBrokeGlass names the person, or failing that the field managers, behind a break-glass.
func whoBrokeGlass(b BreakGlassObject) string {
	switch {
	case b.By != "" && b.Managers != "":
		return b.By + " (" + b.Managers + ")"
	case b.By != "":
		return b.By
	case b.Managers != "":
		return b.Managers
	}
	return "unknown"
}

// dropBreakGlass forgets an object's break-glass and its expiry timer. A session still open
// ends: its object left Git. The caller holds h.st.mu.
func (h *healer) dropBreakGlass(k objKey) {
	h.closeSession(k, EndingLeftGit, "", "", "", nil)
	delete(h.st.bg, k)
	if t, ok := h.timers[k]; ok {
		t.timer.Stop()
		delete(h.timers, k)
	}
}

// scheduleExpiry queues the object for a drift check when its break-glass expires, by the
// reconciler's clock. The caller holds h.st.mu.
func (h *healer) scheduleExpiry(k objKey, until time.Time) {
	w := h.st.watch
	if w == nil {
		return
	}
	if t, ok := h.timers[k]; ok {
		if t.until.Equal(until) {
			return
		}
		t.timer.Stop()
	}
	h.timers[k] = expiryTimer{until: until, timer: h.clock.AfterFunc(until.Sub(h.clock.Now()), func() { w.queue.Add(k) })}
}
