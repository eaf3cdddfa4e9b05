package reconciler

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Action is what a sync would do to one object.
type Action string

// The actions a sync takes.
const (
	// ActionCreate: the object is in Git but not in the cluster.
	ActionCreate Action = "create"
	// ActionUpdate: the live object differs from Git, or carries fields set out of band.
	ActionUpdate Action = "update"
	// ActionPrune: the object left Git and would be deleted.
	ActionPrune Action = "prune"
	// ActionBreakGlass: the object differs from Git under an active break-glass and is left
	// alone until it expires.
	ActionBreakGlass Action = "break-glass"
)

// ObjectDiff is what a sync would do to one object.
type ObjectDiff struct {
	// Object names the object.
	Object string `json:"object"`
	// Action is what the sync would do.
	Action Action `json:"action"`
	// Diff is a unified diff of the object's YAML from the cluster (---) to Git (+++),
	// without status and the fields the API server maintains. Empty for a prune.
	Diff string `json:"diff,omitempty"`
}

// DiffReport is what a sync of a source's current revision would change.
type DiffReport struct {
	// Source is the source's name.
	Source string `json:"source"`
	// Revision is the commit the source's ref resolves to now.
	Revision string `json:"revision"`
	// Author is Revision's author.
	Author string `json:"author,omitempty"`
	// Subject is the first line of Revision's message.
	Subject string `json:"subject,omitempty"`
	// Violations are the policy violations that would stop the sync; the objects are
	// compared anyway.
	Violations []Violation `json:"violations,omitempty"`
	// Changes lists every object the sync would create, update, prune or leave alone under
	// break-glass, in apply order then prune order.
	Changes []ObjectDiff `json:"changes,omitempty"`
	// Unchanged counts the objects that already match Git.
	Unchanged int `json:"unchanged"`
}

// Diff fetches and renders the source's current revision and reports what a sync would
// change, using server-side dry-run so that defaults and admission are taken into account.
// It changes nothing in the cluster and needs no running reconciler, only read access and
// permission to dry-run. Fields that a sync would remove because they were set out of band
// are shown removed when they sit in maps (such as a ConfigMap's data or annotations).
func (r *Reconciler) Diff(ctx context.Context) (*DiffReport, error) {
	art, _, err := r.fetch.fetch(ctx)
	if err != nil {
		return nil, err
	}
	md := art.Metadata
	rep := &DiffReport{Source: r.env.src.Name, Revision: art.Revision, Author: md.Author, Subject: md.Subject}
	rendered, res, err := r.plan.render(ctx, art)
	if res == ResultPruneRefused {
		return nil, fmt.Errorf("render %s at %s: no objects; a sync would refuse it", r.env.src.Path, short(art.Revision))
	}
	if err != nil {
		return nil, err
	}
	if rep.Violations, err = r.plan.check(ctx, art, rendered); err != nil {
		return nil, err
	}
	objs, err := r.plan.prepare(rendered, art.Revision)
	if err != nil {
		return nil, err
	}
	markAutoscaled(objs)
	changes := make([]*ObjectDiff, len(objs))
	errs := parallel(ctx, r.env.concurrency, indexes(len(objs)), func(ctx context.Context, i int) error {
		c, err := r.diffObject(ctx, objs[i], short(art.Revision))
		changes[i] = c
		return err
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("diff: %w", joinErrors(errs))
	}
	desired := map[objKey]*object{}
	for i, c := range changes {
		desired[objs[i].ref.key()] = objs[i]
		if c == nil {
			rep.Unchanged++
		} else {
			rep.Changes = append(rep.Changes, *c)
		}
	}

	inv, _, found, err := readInventoryOf(ctx, r.env.client, r.env.namespace, r.env.src.Name)
	if err != nil {
		return nil, err
	}
	if !found || !r.env.src.PruneEnabled() {
		return rep, nil
	}
	for _, ref := range pruneCandidates(inv, desired) {
		m, err := r.env.mapper.RESTMapping(ref.GroupVersionKind().GroupKind(), ref.Version)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", ref, err)
		}
		live, err := r.env.resource(m.Resource, ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("diff %s: %w", ref, err)
		}
		if decision, _ := r.prune.decidePrune(ref, live, inv.origin(ref.key())); decision == pruneDelete {
			rep.Changes = append(rep.Changes, ObjectDiff{Object: ref.String(), Action: ActionPrune})
		}
	}
	return rep, nil
}

// diffObject compares one desired object with the cluster; nil means unchanged.
func (r *Reconciler) diffObject(ctx context.Context, o *object, commit string) (*ObjectDiff, error) {
	live, err := r.env.resource(o.gvr, o.ref.Namespace).Get(ctx, o.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		live = nil
	} else if err != nil {
		return nil, fmt.Errorf("get %s: %w", o.ref, err)
	}
	keepLive(o, live, true)
	dry, err := r.env.dryRun(ctx, o)
	if err != nil {
		if live == nil && (apierrors.IsNotFound(err) || meta.IsNoMatchError(err)) {
			// Its namespace or kind is created by the same revision.
			diff, derr := unifiedDiff(nil, o.obj, "cluster", "git@"+commit)
			return &ObjectDiff{Object: o.ref.String(), Action: ActionCreate, Diff: diff}, derr
		}
		return nil, err
	}
	if live == nil {
		diff, err := unifiedDiff(nil, dry, "cluster", "git@"+commit)
		return &ObjectDiff{Object: o.ref.String(), Action: ActionCreate, Diff: diff}, err
	}
	want := withoutForeignFields(dry, r.env.takeover)
	diff, err := unifiedDiff(live, want, "cluster", "git@"+commit)
	if err != nil || diff == "" {
		return nil, err
	}
	action := ActionUpdate
	if readBreakGlass(live, r.env.clock.Now(), r.env.maxBreakGlass()).State == v1alpha1.BreakGlassActive {
		action = ActionBreakGlass
	}
	return &ObjectDiff{Object: o.ref.String(), Action: action, Diff: diff}, nil
}

// indexes returns 0..n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
