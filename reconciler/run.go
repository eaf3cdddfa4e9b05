package reconciler

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

var (
	_ manager.Runnable               = (*Reconciler)(nil)
	_ manager.LeaderElectionRunnable = (*Reconciler)(nil)
)

// healWorkers is how many objects of one source are checked for drift at a time. Checks
// share the source's lock with syncs, so more would only queue.
const healWorkers = 1

// Start syncs the source until ctx is done: at once, then after each sync's
// [Result.RequeueAfter] by the reconciler's clock. With self-heal on (the default) it also
// watches the applied objects and reverts every change made to them out of band as soon as
// the watch reports it, and reverts a break-glass change when it expires. The logger comes
// from ctx, or is controller-runtime's (ctrl.SetLogger) when ctx has none, as when a manager
// starts it. Start returns nil when ctx is done; it must not be called twice.
func (r *Reconciler) Start(ctx context.Context) error {
	e := r.env
	log := crlog.FromContext(ctx).WithValues("source", e.src.Name)
	ctx = logr.NewContext(ctx, log)
	if e.run.Stalled != "" || e.run.Suspension != nil {
		r.idle(ctx)
		return nil
	}
	if e.src.SelfHealEnabled() {
		defer r.heal.start(ctx)()
	}
	r.st.mu.Lock()
	url, ref := r.st.status.URL, r.st.status.Ref
	r.st.mu.Unlock()
	log.Info("starting source", "url", url, "ref", ref, "path", e.src.Path,
		"interval", e.src.Interval.Duration, "prune", e.src.PruneEnabled(), "selfHeal", e.src.SelfHealEnabled())
	for {
		res, _ := r.syncLogged(ctx) // A sync records and logs its own failures.
		if ctx.Err() != nil {
			return nil
		}
		t := e.clock.NewTimer(res.RequeueAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-r.kick:
			t.Stop()
		}
	}
}

// start watches the source's objects and runs the heal workers until ctx is done or the
// returned stop is called; stop waits for them and cancels the break-glass expiry timers.
func (h *healer) start(ctx context.Context) (stop func()) {
	w := newWatcher(ctx, h.client, v1alpha1.LabelSource+"="+h.src.Name)
	h.st.mu.Lock()
	h.st.watch = w
	h.st.mu.Unlock()
	var workers sync.WaitGroup
	for range healWorkers {
		workers.Go(func() { h.runHealWorker(ctx, w) })
	}
	return func() {
		w.stop()
		workers.Wait()
		h.st.mu.Lock()
		h.st.watch = nil
		for k, t := range h.timers {
			t.timer.Stop()
			delete(h.timers, k)
		}
		h.st.mu.Unlock()
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader applies.
func (r *Reconciler) NeedLeaderElection() bool { return true }
