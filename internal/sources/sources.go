package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// FieldManager is the field manager of every patch this package makes.
const FieldManager = "driftless-sources"

// ErrNotFound is returned for a GitSource that does not exist.
var ErrNotFound = errors.New("no such source")

// List returns the GitSources of namespace, or of every namespace the caller may list when
// namespace is empty, sorted by namespace and name (as the API server returns them).
func List(ctx context.Context, client dynamic.Interface, namespace string) ([]v1alpha1.GitSource, error) {
	list, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list gitsources%s: %w", InNamespace(namespace), explain(err))
	}
	out := make([]v1alpha1.GitSource, 0, len(list.Items))
	for i := range list.Items {
		gs, err := FromUnstructured(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *gs)
	}
	return out, nil
}

// Get returns one GitSource; the error wraps [ErrNotFound] when it does not exist.
func Get(ctx context.Context, client dynamic.Interface, namespace, name string) (*v1alpha1.GitSource, error) {
	u, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("gitsource %s/%s: %w", namespace, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get gitsource %s/%s: %w", namespace, name, explain(err))
	}
	return FromUnstructured(u)
}

// RequestSync asks the reconciler to sync a source now, by setting its
// driftless.dev/reconcile-requested-at annotation to a new token, now and a random suffix (so
// that two requests in the same instant are two requests), and returns the token, which
// [WaitForSync] waits for. It changes no desired state.
func RequestSync(ctx context.Context, client dynamic.Interface, namespace, name string, now time.Time) (string, error) {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("request a sync of gitsource %s/%s: %w", namespace, name, err)
	}
	token := now.UTC().Format(time.RFC3339Nano) + "-" + hex.EncodeToString(suffix)
	if err := patchAnnotations(ctx, client, namespace, name, map[string]any{v1alpha1.AnnotationReconcileRequestedAt: token}); err != nil {
		return "", fmt.Errorf("request a sync of gitsource %s/%s: %w", namespace, name, err)
	}
	return token, nil
}

// WaitForSync waits until the reconciler has answered the sync request token (its
// status.lastHandledReconcileAt is the token) and returns the GitSource as it was then. It
// returns early, with the source, when the source is suspended, since a suspended source does
// not sync; and with ctx's error when ctx ends first.
func WaitForSync(ctx context.Context, client dynamic.Interface, namespace, name, token string) (*v1alpha1.GitSource, error) {
	res := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace)
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		list, err := res.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return nil, fmt.Errorf("wait for the sync of gitsource %s/%s: %w", namespace, name, explain(err))
		}
		if len(list.Items) == 0 {
			return nil, fmt.Errorf("gitsource %s/%s: %w (deleted while waiting)", namespace, name, ErrNotFound)
		}
		gs, err := FromUnstructured(&list.Items[0])
		if err != nil {
			return nil, err
		}
		if answered(gs, token) {
			return gs, nil
		}
		w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			return nil, fmt.Errorf("watch gitsource %s/%s: %w", namespace, name, explain(err))
		}
		gs, done, err := waitOn(w, token)
		w.Stop()
		if err != nil || done {
			return gs, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for the sync of gitsource %s/%s: %w", namespace, name, ctx.Err())
		}
		// The watch ended (a timeout or a too old resource version): list again.
	}
}

// Watch calls f with each GitSource of namespace (all namespaces when empty; only the one
// named name when it is not empty) as it is added or changed, until ctx ends or f fails,
// starting the watch again whenever the API server ends it.
func Watch(ctx context.Context, client dynamic.Interface, namespace, name string, f func(*v1alpha1.GitSource) error) error {
	res := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace)
	opts := metav1.ListOptions{}
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	for ctx.Err() == nil {
		w, err := res.Watch(ctx, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch gitsources%s: %w", InNamespace(namespace), explain(err))
		}
		err = forEachChange(w, f)
		w.Stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// forEachChange calls f with every GitSource w reports added or changed, until w ends or f
// fails.
func forEachChange(w watch.Interface, f func(*v1alpha1.GitSource) error) error {
	for ev := range w.ResultChan() {
		if ev.Type != watch.Added && ev.Type != watch.Modified {
			continue
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		gs, err := FromUnstructured(u)
		if err != nil {
			continue
		}
		if err := f(gs); err != nil {
			return err
		}
	}
	return nil
}

// waitOn reads w until the source answers token; done is false when the watch ended first.
func waitOn(w watch.Interface, token string) (*v1alpha1.GitSource, bool, error) {
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Deleted:
			return nil, true, fmt.Errorf("gitsource: %w (deleted while waiting)", ErrNotFound)
		case watch.Error:
			return nil, false, nil
		case watch.Added, watch.Modified:
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			gs, err := FromUnstructured(u)
			if err != nil {
				return nil, true, err
			}
			if answered(gs, token) {
				return gs, true, nil
			}
		}
	}
	return nil, false, nil
}

// answered reports whether gs's status answers the sync request token, or gs is suspended.
func answered(gs *v1alpha1.GitSource, token string) bool {
	return gs.Status.LastHandledReconcileAt == token || Suspended(gs)
}

// Suspended reports whether the reconciler reports gs suspended.
func Suspended(gs *v1alpha1.GitSource) bool {
	return gs.Status.Suspension != nil || gs.Spec.Suspend
}

// Ready returns gs's Ready condition; ok is false when the reconciler has not reported one
// for gs's current generation yet.
func Ready(gs *v1alpha1.GitSource) (c metav1.Condition, ok bool) {
	r := meta.FindStatusCondition(gs.Status.Conditions, v1alpha1.ConditionReady)
	if r == nil || r.ObservedGeneration != gs.Generation {
		return metav1.Condition{}, false
	}
	return *r, true
}

// Suspension is a time-boxed suspension of a source's syncs and self-heal.
type Suspension struct {
	// Reason says why, such as the incident ticket. Required.
	Reason string
	// By is the requester's username, as the API server knows them. Required.
	By string
	// Until is when the reconciler resumes the source. Required.
	Until time.Time
}

// Suspend suspends a source until s.Until: the reconciler stops syncing and reverting drift,
// records the suspension, and resumes (reverting drift) at expiry. Only members of the
// break-glass groups may, and s.By must be the caller: the self-protection policy refuses
// anything else.
func Suspend(ctx context.Context, client dynamic.Interface, namespace, name string, s Suspension) error {
	reason := strings.TrimSpace(s.Reason)
	switch {
	case reason == "":
		return errors.New("a suspension needs a reason, such as the incident ticket")
	case s.By == "":
		return errors.New("a suspension needs the requester's name")
	case s.Until.IsZero():
		return errors.New("a suspension needs an expiry")
	}
	err := patchAnnotations(ctx, client, namespace, name, map[string]any{
		v1alpha1.AnnotationSuspend:      reason,
		v1alpha1.AnnotationSuspendUntil: s.Until.UTC().Format(time.RFC3339),
		v1alpha1.AnnotationSuspendBy:    s.By,
	})
	if err != nil {
		return fmt.Errorf("suspend gitsource %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Resume ends a suspension set with [Suspend] now; the reconciler syncs and reverts drift at
// once. It does not undo spec.suspend, which only Git changes.
func Resume(ctx context.Context, client dynamic.Interface, namespace, name string) error {
	err := patchAnnotations(ctx, client, namespace, name, map[string]any{
		v1alpha1.AnnotationSuspend:      nil,
		v1alpha1.AnnotationSuspendUntil: nil,
		v1alpha1.AnnotationSuspendBy:    nil,
	})
	if err != nil {
		return fmt.Errorf("resume gitsource %s/%s: %w", namespace, name, err)
	}
	return nil
}

// patchAnnotations merges annotations into a GitSource (nil removes one), as the caller.
func patchAnnotations(ctx context.Context, client dynamic.Interface, namespace, name string, annotations map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	_, err = client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return ErrNotFound
	}
	return explain(err)
}

// explain adds what to do to the API errors people meet.
func explain(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w (ask for the role that allows it; see docs/sources.md)", err)
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err) && strings.Contains(err.Error(), "the server could not find the requested resource"):
		return fmt.Errorf("the GitSource kind is not installed in this cluster (install config/crd): %w", err)
	}
	return err
}

// FromUnstructured decodes a GitSource, such as one a watch delivered.
func FromUnstructured(u *unstructured.Unstructured) (*v1alpha1.GitSource, error) {
	var gs v1alpha1.GitSource
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gs); err != nil {
		return nil, fmt.Errorf("decode gitsource %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &gs, nil
}

// InNamespace says where a list or watch of GitSources looked, as " in namespace NS", or
// " in all namespaces" when ns is empty.
func InNamespace(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return " in namespace " + ns
}
