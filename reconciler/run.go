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
	log := crlog.FromContext(ctx).WithValues("source", r.src.Name)
	ctx = logr.NewContext(ctx, log)
	var workers sync.WaitGroup
	if r.src.SelfHealEnabled() {
		w := newWatcher(ctx, r.client, v1alpha1.LabelSource+"="+r.src.Name)
		r.mu.Lock()
		r.watch = w
		r.mu.Unlock()
		for range healWorkers {
			workers.Go(func() { r.runHealWorker(ctx, w) })
		}
		defer func() {
			w.stop()
			workers.Wait()
			r.mu.Lock()
			r.watch = nil
			for k := range r.timers {
				r.timers[k].timer.Stop()
				delete(r.timers, k)
			}
			r.mu.Unlock()
		}()
	}
	log.Info("starting source", "url", r.status.URL, "ref", r.status.Ref, "path", r.src.Path,
		"interval", r.src.Interval.Duration, "prune", r.src.PruneEnabled(), "selfHeal", r.src.SelfHealEnabled())
	for {
		res, _ := r.syncLogged(ctx) // A sync records and logs its own failures.
		if ctx.Err() != nil {
			return nil
		}
		t := r.clock.NewTimer(res.RequeueAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader applies.
func (r *Reconciler) NeedLeaderElection() bool { return true }
