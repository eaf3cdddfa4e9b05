package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// applier writes desired objects to the cluster: it dry-runs them, reads their live
// versions, applies a plan in stages, and takes over the fields kubectl wrote so that an
// apply removes what Git does not declare ([takeover.foreign] is the one function that
// decides which fields of a live object are kept). It notes its own writes in the write
// log, and tells the healer what it left alone under break-glass and what it reverted.
type applier struct {
	*env
	st     *state
	writes *writeLog
	heal   *healer
}

// resource returns the client for o's resource and namespace.
func (e *env) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return e.client.Resource(gvr)
	}
	return e.client.Resource(gvr).Namespace(namespace)
}

// dryRun applies o with server-side apply in dry-run mode and returns the object the API
// server would store.
func (e *env) dryRun(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	res, err := e.resource(o.gvr, o.ref.Namespace).Apply(ctx, o.ref.Name, o.applied(), metav1.ApplyOptions{
		FieldManager: FieldManager, Force: true, DryRun: []string{metav1.DryRunAll},
	})
	if err != nil {
		return nil, fmt.Errorf("dry-run apply %s: %w", o.ref, err)
	}
	return res, nil
}

// getLive returns the live object of o, from the watch cache when o's resource is watched,
// or nil when it does not exist. Objects the cache does not hold, such as objects not yet
// labelled with the source, are read from the API server.
func (a *applier) getLive(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	if a.st.watch != nil {
		if u, ok := a.st.watch.get(o.gvr, o.ref.Namespace, o.ref.Name); ok && u != nil {
			return u, nil
		}
	}
	u, err := a.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", o.ref, err)
	}
	return u, nil
}

// applyObject applies o with server-side apply, forcing conflicts. Fields of live (may be nil)
// or of the result that foreign managers own are taken over first, so the apply removes
// every field Git does not declare.
func (a *applier) applyObject(ctx context.Context, o *object, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if live != nil && a.takeover.hasForeign(live) {
		if err := a.takeOver(ctx, o, live); err != nil {
			return nil, err
		}
	}
	res, err := a.apply(ctx, o)
	if err != nil {
		return nil, err
	}
	if a.takeover.hasForeign(res) {
		if err := a.takeOver(ctx, o, res); err != nil {
			return nil, err
		}
		if res, err = a.apply(ctx, o); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// apply applies o with server-side apply, forcing conflicts, and notes the write.
func (a *applier) apply(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	res, err := a.resource(o.gvr, o.ref.Namespace).Apply(ctx, o.ref.Name, o.applied(), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", o.ref, err)
	}
	a.writes.noteWritten(o.ref.key(), res.GetResourceVersion())
	return res, nil
}

// takeOver moves the fields of u that foreign managers own to the reconciler. When u is
// stale the object is read again and the move retried once.
func (a *applier) takeOver(ctx context.Context, o *object, u *unstructured.Unstructured) error {
	for attempt := 0; ; attempt++ {
		patch, ok, err := a.takeover.patch(u, a.clock.Now())
		if err != nil {
			return fmt.Errorf("take over fields of %s: %w", o.ref, err)
		}
		if !ok {
			return nil
		}
		res, err := a.resource(o.gvr, o.ref.Namespace).Patch(ctx, o.ref.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			a.writes.noteWritten(o.ref.key(), res.GetResourceVersion())
			return nil
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if attempt > 0 || !(apierrors.IsConflict(err) || apierrors.IsInvalid(err)) {
			return fmt.Errorf("take over fields of %s from %v: %w", o.ref, a.takeover.foreignManagers(u), err)
		}
		if u, err = a.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("take over fields of %s: %w", o.ref, err)
		}
	}
}

// writeLog holds the resource versions the reconciler's own writes produced, so that the
// watch events they cause are not taken for drift, and the resource version at which each
// object last matched its desired state. It has its own lock because applies run in
// parallel; the applier, the planner and the healer share it.
type writeLog struct {
	mu       sync.Mutex
	written  map[objKey][]string
	verified map[objKey]verification
}

// maxWritten is how many of its own resource versions per object the reconciler remembers.
const maxWritten = 4

// noteWritten remembers a resource version the reconciler's own write produced.
func (w *writeLog) noteWritten(k objKey, rv string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	vs := append(w.written[k], rv)
	if len(vs) > maxWritten {
		vs = vs[len(vs)-maxWritten:]
	}
	w.written[k] = vs
}

// ownWrite reports whether rv is a resource version the reconciler's own write produced.
func (w *writeLog) ownWrite(k objKey, rv string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.written[k] {
		if v == rv {
			return true
		}
	}
	return false
}

// forget drops what the reconciler remembers of an object it no longer manages.
func (w *writeLog) forget(k objKey) {
	w.mu.Lock()
	delete(w.written, k)
	delete(w.verified, k)
	w.mu.Unlock()
}

// verification records that an object, at one resource version, matched a desired object.
type verification struct {
	resourceVersion string
	digest          [sha256.Size]byte
}

// digest identifies the content of a desired object.
func digest(u *unstructured.Unstructured) [sha256.Size]byte {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

// verify records that the object o, at resource version rv, matches o's desired state: a
// dry-run apply said so, or the reconciler's own apply produced it.
func (w *writeLog) verify(o *object, rv string) {
	d := digest(o.applied())
	w.mu.Lock()
	w.verified[o.ref.key()] = verification{resourceVersion: rv, digest: d}
	w.mu.Unlock()
}

// verifiedAt reports whether the object o at resource version rv is known to match o's
// desired state, so that neither a dry-run nor an apply could change it. An object changes
// resource version with every write, so any change since the verification makes this false.
func (w *writeLog) verifiedAt(o *object, rv string) bool {
	d := digest(o.applied())
	w.mu.Lock()
	v, ok := w.verified[o.ref.key()]
	w.mu.Unlock()
	return ok && rv != "" && v.resourceVersion == rv && v.digest == d
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until the API server serves every CRD among objs.
func (a *applier) waitEstablished(ctx context.Context, objs []*object) error {
	for _, o := range objs {
		if o.ref.key().Group != crdGK.Group || o.ref.Kind != crdGK.Kind {
			continue
		}
		var last string
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			u, err := a.client.Resource(crdGVR).Get(ctx, o.ref.Name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
				if m["type"] == "Established" {
					last = fmt.Sprint(m["message"])
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for %s to be established (%s): %w", o.ref, last, err)
		}
	}
	return nil
}

// applyPlan applies the changed objects of plan in stages: CRDs and Namespaces, then (once
// the CRDs are established and the deferred objects pass their dry-run) everything else,
// kind by kind. Objects under an active break-glass are left alone. The caller holds
// a.st.mu.
func (a *applier) applyPlan(ctx context.Context, plan []*planItem, commit string) error {
	var defs, rest []*planItem
	for _, it := range plan {
		if it.o.stage == stageDefinitions {
			defs = append(defs, it)
		} else {
			rest = append(rest, it)
		}
	}
	if err := a.applyItems(ctx, defs, commit); err != nil {
		return err
	}
	defObjs := make([]*object, len(defs))
	for i, it := range defs {
		defObjs[i] = it.o
	}
	if err := a.waitEstablished(ctx, defObjs); err != nil {
		return err
	}
	var deferred []*planItem
	for _, it := range rest {
		if it.deferred {
			deferred = append(deferred, it)
		}
	}
	if errs := parallel(ctx, a.concurrency, deferred, a.dryRunDeferred); len(errs) > 0 {
		return fmt.Errorf("dry-run after applying definitions: %w", joinErrors(errs))
	}
	for len(rest) > 0 {
		n := 1
		for n < len(rest) && rest[n].o.rank == rest[0].o.rank {
			n++
		}
		if err := a.applyItems(ctx, rest[:n], commit); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// dryRunDeferred dry-runs an object whose kind or namespace the revision itself created,
// giving the API server a few seconds to start serving a new kind.
func (a *applier) dryRunDeferred(ctx context.Context, it *planItem) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		dry, err := a.dryRun(ctx, it.o)
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

// applyItems applies the changed items in parallel, and tells the healer which objects it
// left alone under break-glass and which applies reverted a change made out of band.
func (a *applier) applyItems(ctx context.Context, items []*planItem, commit string) error {
	var todo []*planItem
	for _, it := range items {
		switch {
		case it.bg.State == v1alpha1.BreakGlassActive:
			a.heal.noteBreakGlass(ctx, it.o, it.live, it.dry, it.bg, commit)
		case it.changed:
			setRevision(it.o.obj, commit)
			todo = append(todo, it)
		}
	}
	errs := parallel(ctx, a.concurrency, todo, func(ctx context.Context, it *planItem) error {
		res, err := a.applyObject(ctx, it.o, it.live)
		if err == nil {
			a.writes.verify(it.o, res.GetResourceVersion())
		}
		it.res = res
		return err
	})
	for _, it := range todo {
		if it.res == nil || it.live == nil {
			continue
		}
		k := it.o.ref.key()
		prev := a.st.desired[k]
		switch {
		case it.bg.State == v1alpha1.BreakGlassExpired || it.bg.State == v1alpha1.BreakGlassInvalid || a.st.sessions[k] != nil:
			a.heal.reverted(ctx, it.o, it.live, it.res, it.bg, commit)
		case prev != nil && sameDesired(prev.obj, it.o.obj):
			// Git did not change the object, so the change was made out of band.
			a.heal.reverted(ctx, it.o, it.live, it.res, it.bg, commit)
		}
		a.heal.dropBreakGlass(k)
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	return nil
}
