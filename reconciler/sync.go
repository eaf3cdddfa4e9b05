package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftless-dev/driftless/reconciler/source"
)

// Result says when the source should be synced again.
type Result struct {
	// RequeueAfter is the time until the next sync: the interval after a successful sync, or
	// sooner when a break-glass expires sooner; an exponential backoff, capped at the
	// interval, after a failed one.
	RequeueAfter time.Duration
}

// minBackoff is the wait after the first failed sync; it doubles with every further failure
// up to the source's interval.
const minBackoff = time.Second

// outcome is what one sync did.
type outcome struct {
	result SyncResult
	err    error
	// art is the artifact fetched; nil when the fetch failed.
	art        *source.Artifact
	violations []Violation
	applied    int
	pruned     int
	unchanged  int
	// orphaned names the objects that left Git but were not deleted, with the reason.
	orphaned []string
	// created counts the objects of applied that did not exist before.
	created int
	// request is the driftless.dev/reconcile-requested-at value this sync answers; empty
	// for a scheduled sync.
	request string
}

// Sync fetches the source, renders it, checks it against the policy set, applies it and
// prunes what left Git, once. A revision that fails anywhere before the apply changes
// nothing in the cluster. The status ConfigMap, Events and metrics record the outcome, which
// is also returned as an error.
func (r *Reconciler) Sync(ctx context.Context) (Result, error) {
	return r.syncLogged(logr.NewContext(ctx, logr.FromContextOrDiscard(ctx).WithValues("source", r.env.src.Name)))
}

// syncLogged is [Reconciler.Sync] with a logger that names the source already.
func (r *Reconciler) syncLogged(ctx context.Context) (Result, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	start := r.env.clock.Now()
	request := r.takeRequest()
	sctx, cancel := context.WithTimeout(ctx, r.env.src.Timeout.Duration)
	out := r.sync(sctx)
	cancel()
	out.request = request
	if out.err != nil && out.result == ResultApplied {
		out.result = ResultApplyFailed
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	// A sync that failed before the apply did not read the saved state; the status it
	// writes must keep the history and the applied revision all the same.
	if err := r.st.load(ctx, r.env); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "cannot read the saved state of the source")
	}
	return r.status.record(ctx, start, out), out.err
}

// sync does the work of [Reconciler.Sync]. Fetching, verifying, rendering, the policy gate
// and preparing the objects read none of the shared state, so they run without its lock:
// healing goes on however long a source or a render takes. Only planning against the live
// objects, applying and pruning take the lock.
func (r *Reconciler) sync(ctx context.Context) outcome {
	out, objs := r.fetchAndRender(ctx)
	if out.err != nil {
		return out
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if err := r.st.load(ctx, r.env); err != nil {
		out.result, out.err = ResultApplyFailed, err
		return out
	}
	return r.applyRevision(ctx, out, objs)
}

// fetchAndRender fetches the source's artifact, renders it, checks it against the policy set
// and prepares the objects to apply. It touches none of the shared state.
func (r *Reconciler) fetchAndRender(ctx context.Context) (outcome, []*object) {
	art, res, err := r.fetch.fetch(ctx)
	if err != nil {
		return outcome{result: res, err: err}, nil
	}
	out := outcome{art: &art}
	fail := func(res SyncResult, err error) (outcome, []*object) {
		out.result, out.err = res, err
		return out, nil
	}
	rendered, res, err := r.plan.render(ctx, art)
	if err != nil {
		return fail(res, err)
	}
	vs, err := r.plan.check(ctx, art, rendered)
	if err != nil {
		return fail(ResultPolicyFailed, err)
	}
	if len(vs) > 0 {
		out.violations = vs
		return fail(ResultPolicyDenied, fmt.Errorf("%s at %s violates policy set %s:\n%s", r.env.src.Path, short(art.Revision), r.env.src.PolicySet, formatViolations(vs)))
	}
	objs, err := r.plan.prepare(rendered, art.Revision)
	if err != nil {
		return fail(ResultRenderFailed, err)
	}
	return out, objs
}

// applyRevision plans, applies and prunes the objects of out's artifact. The caller holds
// r.st.mu.
func (r *Reconciler) applyRevision(ctx context.Context, out outcome, objs []*object) outcome {
	st, revision := r.st, out.art.Revision
	fail := func(res SyncResult, err error) outcome {
		out.result, out.err = res, err
		return out
	}
	markAutoscaled(objs)
	if st.watch != nil {
		// Until the revision is applied, the objects of the last one stay watched too.
		gvrs := resourcesOf(objs)
		for _, o := range st.desired {
			gvrs[o.gvr] = true
		}
		if err := st.watch.watch(ctx, gvrs); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}

	plan, err := r.plan.plan(ctx, objs)
	if ae, ok := errors.AsType[*adoptionError](err); ok {
		return fail(ResultAdoptionRefused, ae)
	}
	if err != nil {
		return fail(ResultApplyFailed, err)
	}
	// Track every object, and whether it was created or adopted, before applying it, so that
	// nothing applied can escape pruning and nothing adopted is taken for created.
	refs := make([]ObjectRef, len(objs))
	origins := make(map[objKey]origin, len(plan))
	for i, it := range plan {
		refs[i] = it.o.ref
		origins[it.o.ref.key()] = r.plan.originFor(it)
	}
	if grown := st.inv.union(refs, origins); grown.differs(st.inv) {
		if err := st.saveInventory(ctx, r.env, grown); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}
	err = r.apply.applyPlan(ctx, plan, revision)
	for _, it := range plan {
		switch {
		case it.changed && it.res != nil:
			out.applied++
			if it.live == nil {
				out.created++
			}
		case !it.changed:
			out.unchanged++
		}
	}
	if err != nil {
		// Heal what this revision applied, or found in place, as this revision declares
		// it; everything else as the last one did.
		for _, it := range plan {
			if it.res != nil || !it.changed {
				st.desired[it.o.ref.key()] = it.o
			}
		}
		return fail(ResultApplyFailed, err)
	}

	desired := make(map[objKey]*object, len(plan))
	for _, it := range plan {
		desired[it.o.ref.key()] = it.o
	}
	for k := range st.desired {
		if desired[k] == nil {
			r.writes.forget(k)
			r.heal.dropBreakGlass(k)
		}
	}
	st.desired = desired
	if st.watch != nil {
		if err := st.watch.watch(ctx, resourcesOf(objs)); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}

	next := (&inventory{}).union(refs, origins)
	if r.env.src.PruneEnabled() {
		pruned, kept, orphaned, err := r.prune.prune(ctx, st.inv, desired)
		out.pruned, out.orphaned = pruned, orphaned
		next = next.union(kept, st.inv.origins)
		if err != nil {
			_ = st.saveInventory(ctx, r.env, next.union(st.inv.refs, st.inv.origins))
			return fail(ResultPruneFailed, err)
		}
	}
	// A sync that changed nothing leaves the inventory as it is in the GitSource: rewriting
	// a thousand entries costs the API server a server-side apply of all of them.
	if next.differs(st.inv) {
		if err := st.saveInventory(ctx, r.env, next); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}
	out.result = ResultApplied
	return out
}

// resourcesOf returns the resources objs are of.
func resourcesOf(objs []*object) map[schema.GroupVersionResource]bool {
	m := map[schema.GroupVersionResource]bool{}
	for _, o := range objs {
		m[o.gvr] = true
	}
	return m
}

// isNoMatch reports whether err says the API server does not serve a kind.
func isNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// short abbreviates a revision: a commit SHA to 12 digits, a digest such as sha256:… to
// its algorithm and 12 digits.
func short(revision string) string {
	alg, hash, ok := strings.Cut(revision, ":")
	if !ok {
		alg, hash = "", revision
	} else {
		alg += ":"
	}
	if len(hash) > 12 {
		hash = hash[:12]
	}
	return alg + hash
}
