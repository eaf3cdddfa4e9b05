package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// runHealWorker checks queued objects for drift until the queue shuts down.
func (r *Reconciler) runHealWorker(ctx context.Context, w *watcher) {
	for {
		k, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		if err := r.heal(ctx, k); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "cannot revert drift", "object", k.String())
			w.queue.AddRateLimited(k)
		} else {
			w.queue.Forget(k)
		}
		w.queue.Done(k)
	}
}

// heal checks one managed object against the last applied revision and reverts any change
// made out of band, unless the object is under an active break-glass.
func (r *Reconciler) heal(ctx context.Context, k objKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.desired[k]
	if o == nil || ctx.Err() != nil {
		return nil
	}
	live, err := r.getLive(ctx, o)
	if err != nil {
		return err
	}
	if live != nil && (r.ownWrite(k, live.GetResourceVersion()) || r.verifiedAt(o, live.GetResourceVersion())) {
		return nil
	}
	if live != nil {
		// Another source took the object over: the conflict is for a sync to report, not
		// for two watchers to fight over.
		owner, err := (&claims{r: r}).claimedByOther(ctx, live)
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
		bg = readBreakGlass(live, r.clock.Now(), r.maxBreakGlass())
		if bg.State == v1alpha1.BreakGlassActive {
			dry, err := r.dryRun(ctx, o)
			if err != nil {
				return err
			}
			r.noteBreakGlass(ctx, o, live, dry, bg)
			return nil
		}
	}
	drift := live == nil || bg.State != v1alpha1.BreakGlassNone || r.takeover.hasForeign(live)
	if !drift {
		dry, err := r.dryRun(ctx, o)
		if err != nil {
			return err
		}
		drift = !sameState(dry, live)
	}
	if !drift {
		r.verify(o, live.GetResourceVersion())
		return nil
	}
	res, err := r.applyObject(ctx, o, live)
	if err != nil {
		return err
	}
	r.verify(o, res.GetResourceVersion())
	r.reverted(ctx, o, live, res, bg)
	r.dropBreakGlass(k)
	r.writeStatus(ctx)
	return nil
}

// reverted records that before, a live object changed out of band (nil when it was deleted),
// was reverted to after: a drift revert in the status and metrics, an Event on the object
// and a log line, both carrying the patch that would make the change in Git.
func (r *Reconciler) reverted(ctx context.Context, o *object, before, after *unstructured.Unstructured, bg breakGlass) {
	r.status.DriftReverts++
	r.metrics.driftReverted(r.src.Name)
	log := logr.FromContextOrDiscard(ctx).WithValues("object", o.ref.String())
	if before == nil {
		log.Info("recreated object deleted out of band")
		r.event(after, corev1.EventTypeWarning, "DriftReverted", "Revert", "recreated: the object was deleted out of band; delete it in Git instead")
		return
	}
	patch, err := overlayPatch(after, before)
	if err != nil {
		log.Error(err, "cannot compute the reverted change")
	}
	by := strings.Join(r.takeover.foreignManagers(before), ", ")
	if by == "" {
		by = "an unknown field manager"
	}
	reason, what := "DriftReverted", "reverted a change made out of band by "+by
	switch bg.State {
	case v1alpha1.BreakGlassExpired:
		if bg.By != "" {
			by = bg.By + " (" + by + ")"
		}
		reason = "BreakGlassExpired"
		what = fmt.Sprintf("break-glass %q expired at %s; reverted the change made by %s", bg.Reason, bg.Until.Format(time.RFC3339), by)
	case v1alpha1.BreakGlassInvalid:
		reason = "BreakGlassInvalid"
		what = fmt.Sprintf("break-glass not honoured (%s); reverted the change made by %s", bg.Problem, by)
	}
	log.Info("reverted drift", "reason", reason, "by", by, "patch", patch)
	note := what
	if patch != "" {
		note += "; to keep it, commit this patch to the overlay:\n" + patch
	}
	r.event(after, corev1.EventTypeWarning, reason, "Revert", note)
}

// noteBreakGlass records an object left alone under an active break-glass, with its live
// difference from Git, and schedules its revert at expiry.
func (r *Reconciler) noteBreakGlass(ctx context.Context, o *object, live, dry *unstructured.Unstructured, bg breakGlass) {
	k := o.ref.key()
	var patch string
	if dry != nil {
		var err error
		if patch, err = overlayPatch(withoutForeignFields(dry, r.takeover), live); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "cannot compute break-glass diff", "object", o.ref.String())
		}
	}
	entry := BreakGlassObject{
		Object:   o.ref.String(),
		By:       bg.By,
		Managers: strings.Join(r.takeover.foreignManagers(live), ", "),
		Reason:   bg.Reason,
		Until:    bg.Until,
		Patch:    patch,
	}
	prev, seen := r.bg[k]
	r.bg[k] = entry
	r.scheduleExpiry(k, bg.Until)
	if seen && prev == entry {
		return
	}
	logr.FromContextOrDiscard(ctx).Info("leaving object alone under break-glass", "object", o.ref.String(),
		"reason", bg.Reason, "until", bg.Until, "by", entry.By, "managers", entry.Managers, "patch", patch)
	if !seen || !prev.Until.Equal(entry.Until) {
		r.event(live, corev1.EventTypeNormal, "BreakGlassActive", "Skip",
			fmt.Sprintf("left alone until %s (break-glass %q by %s); reverted to Git then. Change against Git:\n%s",
				bg.Until.Format(time.RFC3339), bg.Reason, whoBrokeGlass(entry), patch))
	}
	r.writeStatus(ctx)
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

// dropBreakGlass forgets an object's break-glass and its expiry timer.
func (r *Reconciler) dropBreakGlass(k objKey) {
	delete(r.bg, k)
	if t, ok := r.timers[k]; ok {
		t.timer.Stop()
		delete(r.timers, k)
	}
}

// scheduleExpiry queues the object for a drift check when its break-glass expires, by the
// reconciler's clock.
func (r *Reconciler) scheduleExpiry(k objKey, until time.Time) {
	w := r.watch
	if w == nil {
		return
	}
	if t, ok := r.timers[k]; ok {
		if t.until.Equal(until) {
			return
		}
		t.timer.Stop()
	}
	r.timers[k] = expiryTimer{until: until, timer: r.clock.AfterFunc(until.Sub(r.clock.Now()), func() { w.queue.Add(k) })}
}
