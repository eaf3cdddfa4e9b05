package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
)

// idle runs a source that must not sync: it reports why (suspended, or stalled on its spec)
// in the status and, for a suspension with an expiry, ends the suspension at the expiry by
// the reconciler's clock. It returns when ctx is done; the GitSource controller restarts the
// source when its GitSource changes, as ending a suspension does.
func (r *Reconciler) idle(ctx context.Context) {
	e := r.env
	log := logr.FromContextOrDiscard(ctx)
	r.st.mu.Lock()
	err := r.st.load(ctx, e)
	gs := r.status.write(ctx)
	r.st.mu.Unlock()
	if err != nil {
		log.Error(err, "cannot read the state of the source")
	}
	if e.run.Stalled != "" {
		log.Info("source stalled: not syncing until its GitSource changes", "problem", e.run.Stalled)
		e.event(gs, corev1.EventTypeWarning, v1alpha1.ReasonInvalidSpec, "Sync", e.run.Stalled)
		<-ctx.Done()
		return
	}
	s := e.run.Suspension
	log.Info("source suspended: syncing and self-heal are off", "reason", s.Reason, "by", s.By, "until", s.Until)
	e.event(gs, corev1.EventTypeNormal, v1alpha1.ReasonSuspended, "Suspend", suspensionMessage(s))
	if s.Until == nil {
		<-ctx.Done()
		return
	}
	wait := s.Until.Sub(e.clock.Now())
	for {
		if wait > 0 {
			t := e.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		ended, err := r.endSuspension(ctx, s)
		if err == nil {
			if ended {
				log.Info("suspension expired: removed the suspend annotations; the source resumes")
			}
			<-ctx.Done()
			return
		}
		log.Error(err, "cannot end the expired suspension; retrying")
		wait = minBackoff
	}
}

// endSuspension removes the suspend annotations of the source's GitSource as the reconciler,
// if they still claim the suspension s, and records the end in an Event and the ledger.
// ended is false when the annotations changed meanwhile (the controller restarts the source
// with what they say now).
func (r *Reconciler) endSuspension(ctx context.Context, s *v1alpha1.SuspensionStatus) (ended bool, err error) {
	e := r.env
	// Removing the annotations makes the GitSource controller restart the source, which
	// cancels ctx, possibly before the patch's answer arrives: the end would then go
	// unrecorded although it happened. The read and the patch finish on their own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	client := e.client.Resource(v1alpha1.GitSourceGVR).Namespace(e.namespace)
	u, err := client.Get(ctx, e.src.Name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read gitsource %s/%s: %w", e.namespace, e.src.Name, err)
	}
	now := e.clock.Now()
	claim := v1alpha1.ReadSuspension(u.GetAnnotations(), now, e.maxBreakGlass())
	if claim.State == v1alpha1.BreakGlassNone || !claim.Until.Equal(s.Until.Time) {
		return false, nil
	}
	remove := map[string]any{}
	for _, a := range v1alpha1.SuspendAnnotations {
		remove[a] = nil
	}
	// The resourceVersion makes the patch fail if the GitSource changed since it was read.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": u.GetResourceVersion(), "annotations": remove}})
	if err != nil {
		return false, err
	}
	if _, err := client.Patch(ctx, e.src.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return false, fmt.Errorf("remove the suspend annotations of gitsource %s/%s: %w", e.namespace, e.src.Name, err)
	}
	msg := fmt.Sprintf("suspension expired at %s; syncing and self-heal resume (suspended by %s, reason %q)", s.Until.UTC().Format(time.RFC3339), orUnknown(s.By), s.Reason)
	e.event(u, corev1.EventTypeNormal, "SuspensionExpired", "Resume", msg)
	e.ledger.BreakGlassEnded(ledger.Session{
		Source: e.src.Name, Object: "GitSource " + e.namespace + "/" + e.src.Name,
		Kind: v1alpha1.GitSourceKind, Namespace: e.namespace, Name: e.src.Name,
		By: s.By, Reason: s.Reason, Until: s.Until.Time, End: now,
		Ending: string(EndingExpired), Problem: "suspension of the source",
	})
	return true, nil
}

// orUnknown returns s, or "an unrecorded user" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "an unrecorded user"
	}
	return s
}
