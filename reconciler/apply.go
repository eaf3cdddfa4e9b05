package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// resource returns the client for o's resource and namespace.
func (r *Reconciler) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return r.client.Resource(gvr)
	}
	return r.client.Resource(gvr).Namespace(namespace)
}

// dryRun applies o with server-side apply in dry-run mode and returns the object the API
// server would store.
func (r *Reconciler) dryRun(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	res, err := r.resource(o.gvr, o.ref.Namespace).Apply(ctx, o.ref.Name, o.applied(), metav1.ApplyOptions{
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
func (r *Reconciler) getLive(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	if r.watch != nil {
		if u, ok := r.watch.get(o.gvr, o.ref.Namespace, o.ref.Name); ok && u != nil {
			return u, nil
		}
	}
	u, err := r.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{})
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
func (r *Reconciler) applyObject(ctx context.Context, o *object, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if live != nil && r.takeover.hasForeign(live) {
		if err := r.takeOver(ctx, o, live); err != nil {
			return nil, err
		}
	}
	res, err := r.apply(ctx, o)
	if err != nil {
		return nil, err
	}
	if r.takeover.hasForeign(res) {
		if err := r.takeOver(ctx, o, res); err != nil {
			return nil, err
		}
		if res, err = r.apply(ctx, o); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (r *Reconciler) apply(ctx context.Context, o *object) (*unstructured.Unstructured, error) {
	res, err := r.resource(o.gvr, o.ref.Namespace).Apply(ctx, o.ref.Name, o.applied(), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", o.ref, err)
	}
	r.noteWritten(o.ref.key(), res.GetResourceVersion())
	return res, nil
}

// takeOver moves the fields of u that foreign managers own to the reconciler. When u is
// stale the object is read again and the move retried once.
func (r *Reconciler) takeOver(ctx context.Context, o *object, u *unstructured.Unstructured) error {
	for attempt := 0; ; attempt++ {
		patch, ok, err := r.takeover.patch(u, r.clock.Now())
		if err != nil {
			return fmt.Errorf("take over fields of %s: %w", o.ref, err)
		}
		if !ok {
			return nil
		}
		res, err := r.resource(o.gvr, o.ref.Namespace).Patch(ctx, o.ref.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if err == nil {
			r.noteWritten(o.ref.key(), res.GetResourceVersion())
			return nil
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if attempt > 0 || !(apierrors.IsConflict(err) || apierrors.IsInvalid(err)) {
			return fmt.Errorf("take over fields of %s from %v: %w", o.ref, r.takeover.foreignManagers(u), err)
		}
		if u, err = r.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("take over fields of %s: %w", o.ref, err)
		}
	}
}

// maxWritten is how many of its own resource versions per object the reconciler remembers.
const maxWritten = 4

// noteWritten remembers a resource version the reconciler's own write produced.
func (r *Reconciler) noteWritten(k objKey, rv string) {
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	w := append(r.written[k], rv)
	if len(w) > maxWritten {
		w = w[len(w)-maxWritten:]
	}
	r.written[k] = w
}

// ownWrite reports whether rv is a resource version the reconciler's own write produced.
func (r *Reconciler) ownWrite(k objKey, rv string) bool {
	r.writtenMu.Lock()
	defer r.writtenMu.Unlock()
	for _, w := range r.written[k] {
		if w == rv {
			return true
		}
	}
	return false
}

// forget drops what the reconciler remembers of an object it no longer manages.
func (r *Reconciler) forget(k objKey) {
	r.writtenMu.Lock()
	delete(r.written, k)
	delete(r.verified, k)
	r.writtenMu.Unlock()
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
func (r *Reconciler) verify(o *object, rv string) {
	d := digest(o.applied())
	r.writtenMu.Lock()
	r.verified[o.ref.key()] = verification{resourceVersion: rv, digest: d}
	r.writtenMu.Unlock()
}

// verifiedAt reports whether the object o at resource version rv is known to match o's
// desired state, so that neither a dry-run nor an apply could change it. An object changes
// resource version with every write, so any change since the verification makes this false.
func (r *Reconciler) verifiedAt(o *object, rv string) bool {
	d := digest(o.applied())
	r.writtenMu.Lock()
	v, ok := r.verified[o.ref.key()]
	r.writtenMu.Unlock()
	return ok && rv != "" && v.resourceVersion == rv && v.digest == d
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until the API server serves every CRD among objs.
func (r *Reconciler) waitEstablished(ctx context.Context, objs []*object) error {
	for _, o := range objs {
		if o.ref.key().Group != crdGK.Group || o.ref.Kind != crdGK.Kind {
			continue
		}
		var last string
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			u, err := r.client.Resource(crdGVR).Get(ctx, o.ref.Name, metav1.GetOptions{})
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
