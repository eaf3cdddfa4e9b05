package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/render"
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
	result     SyncResult
	err        error
	rev        *source.Revision
	violations []Violation
	applied    int
	pruned     int
	unchanged  int
	// orphaned names the objects that left Git but were not deleted, with the reason.
	orphaned []string
}

// planItem is one desired object and what the dry-run said about it.
type planItem struct {
	o    *object
	live *unstructured.Unstructured
	// dry is the object as a dry-run apply returned it; nil when deferred.
	dry *unstructured.Unstructured
	// changed is true when applying would change the live object (or create it).
	changed bool
	// deferred is true when the object's kind or namespace is created by the same revision,
	// so it can only be dry-run after the definitions stage.
	deferred bool
	bg       breakGlass
	// adopt is true when the object exists without the source's label and opts in to
	// adoption (or the source does).
	adopt bool
	// res is the object after applying it.
	res *unstructured.Unstructured
}

// Sync fetches the source, renders it, checks it against the policy set, applies it and
// prunes what left Git, once. A revision that fails anywhere before the apply changes
// nothing in the cluster. The status ConfigMap, Events and metrics record the outcome, which
// is also returned as an error.
func (r *Reconciler) Sync(ctx context.Context) (Result, error) {
	return r.syncLogged(logr.NewContext(ctx, logr.FromContextOrDiscard(ctx).WithValues("source", r.src.Name)))
}

// syncLogged is [Reconciler.Sync] with a logger that names the source already.
func (r *Reconciler) syncLogged(ctx context.Context) (Result, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	start := r.clock.Now()
	sctx, cancel := context.WithTimeout(ctx, r.src.Timeout.Duration)
	out := r.sync(sctx)
	cancel()
	if out.err != nil && out.result == ResultApplied {
		out.result = ResultApplyFailed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.record(ctx, start, out), out.err
}

// sync does the work of [Reconciler.Sync]. Fetching, verifying, rendering and the policy gate
// read none of the reconciler's state, so they run without its lock: healing goes on however
// long a Git server or a render takes. Only planning, applying and pruning take the lock.
func (r *Reconciler) sync(ctx context.Context) outcome {
	out, rendered := r.fetchAndRender(ctx)
	if out.err != nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx); err != nil {
		out.result, out.err = ResultApplyFailed, err
		return out
	}
	return r.applyRevision(ctx, out, rendered)
}

// fetchAndRender fetches the source's revision, renders it and checks it against the policy
// set. It touches none of the reconciler's state.
func (r *Reconciler) fetchAndRender(ctx context.Context) (outcome, []*unstructured.Unstructured) {
	rev, err := r.fetcher.Fetch(ctx, r.spec)
	if err != nil {
		res := ResultFetchFailed
		switch {
		case errors.Is(err, source.ErrUnsigned) || errors.Is(err, source.ErrUntrusted):
			res = ResultVerificationFailed
		case errors.Is(err, source.ErrLimitExceeded):
			res = ResultLimitExceeded
		}
		return outcome{result: res, err: err}, nil
	}
	out := outcome{rev: &rev}
	fail := func(res SyncResult, err error) (outcome, []*unstructured.Unstructured) {
		out.result, out.err = res, err
		return out, nil
	}
	rendered, err := render.RenderLimited(ctx, rev.Dir, r.src.Path, r.renderLimits())
	if errors.Is(err, render.ErrLimitExceeded) {
		return fail(ResultLimitExceeded, fmt.Errorf("render %s at %s: %w", r.src.Path, short(rev.Commit), err))
	}
	if err != nil {
		return fail(ResultRenderFailed, fmt.Errorf("render %s at %s: %w", r.src.Path, short(rev.Commit), err))
	}
	if len(rendered) == 0 {
		return fail(ResultPruneRefused, fmt.Errorf("render %s at %s: no objects; refusing to apply an empty revision, which would prune every object of the source", r.src.Path, short(rev.Commit)))
	}
	if r.gate != nil && r.src.PolicySet != "" {
		copies := make([]*unstructured.Unstructured, len(rendered))
		for i, u := range rendered {
			copies[i] = u.DeepCopy()
		}
		vs, err := r.gate.Check(ctx, r.src.PolicySet, copies)
		if err != nil {
			return fail(ResultPolicyFailed, fmt.Errorf("check %s at %s against policy set %s: %w", r.src.Path, short(rev.Commit), r.src.PolicySet, err))
		}
		if len(vs) > 0 {
			out.violations = vs
			return fail(ResultPolicyDenied, fmt.Errorf("%s at %s violates policy set %s:\n%s", r.src.Path, short(rev.Commit), r.src.PolicySet, formatViolations(vs)))
		}
	}
	return out, rendered
}

// applyRevision plans, applies and prunes the rendered objects of out's revision. The
// caller holds r.mu.
func (r *Reconciler) applyRevision(ctx context.Context, out outcome, rendered []*unstructured.Unstructured) outcome {
	rev := out.rev
	fail := func(res SyncResult, err error) outcome {
		out.result, out.err = res, err
		return out
	}
	objs, err := prepare(rendered, r.mapper, &r.src, rev.Commit)
	if err != nil {
		return fail(ResultRenderFailed, fmt.Errorf("prepare %s at %s: %w", r.src.Path, short(rev.Commit), err))
	}
	markAutoscaled(objs)
	if r.watch != nil {
		// Until the revision is applied, the objects of the last one stay watched too.
		gvrs := resourcesOf(objs)
		for _, o := range r.desired {
			gvrs[o.gvr] = true
		}
		if err := r.watch.watch(ctx, gvrs); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}

	plan, err := r.plan(ctx, objs)
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
		origins[it.o.ref.key()] = r.originFor(it)
	}
	if grown := r.inv.union(refs, origins); grown.differs(r.inv) {
		if err := r.saveInventory(ctx, grown); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}
	err = r.applyPlan(ctx, plan, rev.Commit)
	for _, it := range plan {
		switch {
		case it.changed && it.res != nil:
			out.applied++
		case !it.changed:
			out.unchanged++
		}
	}
	if err != nil {
		// Heal what this revision applied, or found in place, as this revision declares
		// it; everything else as the last one did.
		for _, it := range plan {
			if it.res != nil || !it.changed {
				r.desired[it.o.ref.key()] = it.o
			}
		}
		return fail(ResultApplyFailed, err)
	}

	desired := make(map[objKey]*object, len(plan))
	for _, it := range plan {
		desired[it.o.ref.key()] = it.o
	}
	for k := range r.desired {
		if desired[k] == nil {
			r.forget(k)
			r.dropBreakGlass(k)
		}
	}
	r.desired = desired
	if r.watch != nil {
		if err := r.watch.watch(ctx, resourcesOf(objs)); err != nil {
			return fail(ResultApplyFailed, err)
		}
	}

	next := (&inventory{}).union(refs, origins)
	if r.src.PruneEnabled() {
		pruned, kept, orphaned, err := r.prune(ctx, r.inv, desired)
		out.pruned, out.orphaned = pruned, orphaned
		next = next.union(kept, r.inv.origins)
		if err != nil {
			_ = r.saveInventory(ctx, next.union(r.inv.refs, r.inv.origins))
			return fail(ResultPruneFailed, err)
		}
	}
	if err := r.saveInventory(ctx, next); err != nil {
		return fail(ResultApplyFailed, err)
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

// plan dry-runs every object whose kind and namespace exist, and decides what changes. Any
// failure fails the whole plan, so that nothing of the revision is applied.
func (r *Reconciler) plan(ctx context.Context, objs []*object) ([]*planItem, error) {
	newKinds := map[schema.GroupKind]bool{}
	newNamespaces := map[string]bool{}
	for _, o := range objs {
		switch o.ref.key() {
		case objKey{Group: crdGK.Group, Kind: crdGK.Kind, Name: o.ref.Name}:
			for gk := range crdScopes([]*unstructured.Unstructured{o.obj}) {
				newKinds[gk] = true
			}
		case objKey{Kind: namespaceGK.Kind, Name: o.ref.Name}:
			newNamespaces[o.ref.Name] = true
		}
	}
	items := make([]*planItem, len(objs))
	for i, o := range objs {
		items[i] = &planItem{o: o}
	}
	now := r.clock.Now()
	others := &claims{r: r}
	var (
		refusedMu    sync.Mutex
		refusedItems []*planItem
	)
	errs := parallel(ctx, r.concurrency, items, func(ctx context.Context, it *planItem) error {
		live, err := r.getLive(ctx, it.o)
		if err != nil && !(apierrors.IsNotFound(err) || isNoMatch(err)) {
			return err
		}
		it.live = live
		keepLive(it.o, live, gitUnchangedSince(r.desired[it.o.ref.key()], it.o))
		if live != nil {
			owner, err := others.claimedByOther(ctx, live)
			if err != nil {
				return fmt.Errorf("%s: %w", it.o.ref, err)
			}
			if owner != "" {
				return fmt.Errorf("%s is applied by source %s too; declare it in one source only (remove it from one, and the other can take it once the first has pruned it)", it.o.ref, owner)
			}
			switch r.ownershipOf(it.o.ref.key(), live) {
			case refused:
				refusedMu.Lock()
				refusedItems = append(refusedItems, it)
				refusedMu.Unlock()
				return nil
			case adoptable:
				it.adopt = true
			}
			it.bg = readBreakGlass(live, now, r.maxBreakGlass())
			// Keep the revision of an unchanged object, so that a new commit rewrites only
			// the objects it changes.
			if rev := live.GetAnnotations()[v1alpha1.AnnotationRevision]; rev != "" {
				setRevision(it.o.obj, rev)
			}
			if it.bg.State == v1alpha1.BreakGlassNone && r.verifiedAt(it.o, live.GetResourceVersion()) {
				// Unchanged in Git and in the cluster since it last matched: a dry-run
				// could only agree.
				return nil
			}
		}
		dry, err := r.dryRun(ctx, it.o)
		if err != nil {
			if (apierrors.IsNotFound(err) || isNoMatch(err)) && live == nil &&
				(newKinds[it.o.ref.GroupVersionKind().GroupKind()] || newNamespaces[it.o.ref.Namespace]) {
				it.deferred, it.changed = true, true
				return nil
			}
			return err
		}
		it.dry = dry
		// A break-glass session still open ends with an apply, which records it.
		it.changed = live == nil || r.takeover.hasForeign(live) || r.sessions[it.o.ref.key()] != nil || !sameState(dry, live)
		if !it.changed {
			r.verify(it.o, live.GetResourceVersion())
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("dry-run: nothing applied: %w", joinErrors(errs))
	}
	if len(refusedItems) > 0 {
		sort.Slice(refusedItems, func(i, j int) bool { return refusedItems[i].o.ref.String() < refusedItems[j].o.ref.String() })
		e := &adoptionError{source: r.src.Name}
		for _, it := range refusedItems {
			e.refused = append(e.refused, it.o.ref)
		}
		for _, it := range refusedItems {
			r.event(it.live, corev1.EventTypeWarning, string(ResultAdoptionRefused), "Apply",
				fmt.Sprintf("source %s declares this object, which exists without its label %s; annotate it %s=%q or set adopt: true on the source to let the source take it over",
					r.src.Name, v1alpha1.LabelSource, v1alpha1.AnnotationAdopt, v1alpha1.AdoptAllowed))
		}
		return nil, e
	}
	return items, nil
}

// isNoMatch reports whether err says the API server does not serve a kind.
func isNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// applyPlan applies the changed objects of plan in stages: CRDs and Namespaces, then (once
// the CRDs are established and the deferred objects pass their dry-run) everything else,
// kind by kind. Objects under an active break-glass are left alone.
func (r *Reconciler) applyPlan(ctx context.Context, plan []*planItem, commit string) error {
	var defs, rest []*planItem
	for _, it := range plan {
		if it.o.stage == stageDefinitions {
			defs = append(defs, it)
		} else {
			rest = append(rest, it)
		}
	}
	if err := r.applyItems(ctx, defs, commit); err != nil {
		return err
	}
	defObjs := make([]*object, len(defs))
	for i, it := range defs {
		defObjs[i] = it.o
	}
	if err := r.waitEstablished(ctx, defObjs); err != nil {
		return err
	}
	var deferred []*planItem
	for _, it := range rest {
		if it.deferred {
			deferred = append(deferred, it)
		}
	}
	if errs := parallel(ctx, r.concurrency, deferred, r.dryRunDeferred); len(errs) > 0 {
		return fmt.Errorf("dry-run after applying definitions: %w", joinErrors(errs))
	}
	for len(rest) > 0 {
		n := 1
		for n < len(rest) && rest[n].o.rank == rest[0].o.rank {
			n++
		}
		if err := r.applyItems(ctx, rest[:n], commit); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// dryRunDeferred dry-runs an object whose kind or namespace the revision itself created,
// giving the API server a few seconds to start serving a new kind.
func (r *Reconciler) dryRunDeferred(ctx context.Context, it *planItem) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		dry, err := r.dryRun(ctx, it.o)
		if err == nil {
			it.dry = dry
			return true, nil
		}
		last = err
		return !(apierrors.IsNotFound(err) || isNoMatch(err)), nil
	})
	if last != nil && it.dry == nil {
		return last
	}
	return err
}

// applyItems applies the changed items in parallel and records the results.
func (r *Reconciler) applyItems(ctx context.Context, items []*planItem, commit string) error {
	var todo []*planItem
	for _, it := range items {
		switch {
		case it.bg.State == v1alpha1.BreakGlassActive:
			r.noteBreakGlass(ctx, it.o, it.live, it.dry, it.bg, commit)
		case it.changed:
			setRevision(it.o.obj, commit)
			todo = append(todo, it)
		}
	}
	errs := parallel(ctx, r.concurrency, todo, func(ctx context.Context, it *planItem) error {
		res, err := r.applyObject(ctx, it.o, it.live)
		if err == nil {
			r.verify(it.o, res.GetResourceVersion())
		}
		it.res = res
		return err
	})
	for _, it := range todo {
		if it.res == nil || it.live == nil {
			continue
		}
		k := it.o.ref.key()
		prev := r.desired[k]
		switch {
		case it.bg.State == v1alpha1.BreakGlassExpired || it.bg.State == v1alpha1.BreakGlassInvalid || r.sessions[k] != nil:
			r.reverted(ctx, it.o, it.live, it.res, it.bg, commit)
		case prev != nil && sameDesired(prev.obj, it.o.obj):
			// Git did not change the object, so the change was made out of band.
			r.reverted(ctx, it.o, it.live, it.res, it.bg, commit)
		}
		r.dropBreakGlass(k)
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	return nil
}

// short abbreviates a commit SHA.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
