package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/render"
	"github.com/driftless-dev/driftless/reconciler/source"
)

// planner turns an artifact into a plan: it renders the artifact, checks it against the
// source's policy set and prepares the objects to apply, all without the state's lock; then,
// under the lock, it dry-runs every object against the live one and decides what changes.
type planner struct {
	*env
	st     *state
	writes *writeLog
	apply  *applier
	gate   Gate
	// rendered is the last successful render, reused for an artifact in which nothing the
	// render read changed. Only a sync touches it, and syncs are serialized.
	rendered renderCache
}

// renderCache is the last render of a source. Its objects are never changed: the gate and
// prepare work on copies.
type renderCache struct {
	// revision is the artifact rendered, or last found to read the same content.
	revision string
	// options are the path and the limits the render ran with.
	options  string
	rendered render.Rendered
	// values are what each path of rendered.Inputs held in the artifact rendered (its Git
	// blob or tree); nil when the source cannot name them.
	values []string
}

// changes compares what the paths the cached render read hold in art with what they held
// when rendered. same is true when the cache is the render of art with options: art is the
// revision rendered (a revision names its content), or every path the render read holds the
// same content in art (the same blob and tree hashes), so that rendering art could only give
// the same objects. Otherwise changed lists the paths that differ, with their values in art;
// it is nil when that cannot be told.
func (c *renderCache) changes(art source.Artifact, options string) (same bool, changed []string, values []string) {
	if c.rendered.Objects == nil || c.options != options {
		return false, nil, nil
	}
	if art.Revision != "" && art.Revision == c.revision {
		return true, nil, nil
	}
	if c.values == nil {
		return false, nil, nil
	}
	values, ok := inputValues(c.rendered.Inputs, art.Entries)
	if !ok {
		return false, nil, nil
	}
	for i, v := range values {
		if v != c.values[i] {
			changed = append(changed, c.rendered.Inputs.Paths[i].Path)
		}
	}
	return len(changed) == 0, changed, values
}

// inputValues returns what the paths of in hold in entries: for a path read or looked for,
// whether it is absent, a directory or a file and the file's blob; for a directory listed,
// its tree. It returns false when entries cannot name one of them (a symlink on the way, or
// a source that names no content).
func inputValues(in render.Inputs, entries *source.Entries) ([]string, bool) {
	if !in.Complete || entries == nil {
		return nil, false
	}
	values := make([]string, len(in.Paths))
	for i, p := range in.Paths {
		e, ok := entries.Lookup(p.Path)
		if !ok {
			return nil, false
		}
		id := e.ID
		if e.Kind == source.EntryDir && !p.Listed {
			// Only that it is a directory counts, not what it holds.
			id = ""
		}
		values[i] = e.Kind.String() + " " + id
	}
	return values, true
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

// render renders the artifact's copy of the source's path. It returns the last render when
// nothing it read differs in the artifact, and brings it up to date when only files it can
// build alone differ (see [render.Rendered.Update]). An empty render is refused.
func (p *planner) render(ctx context.Context, art source.Artifact) ([]*unstructured.Unstructured, SyncResult, error) {
	limits := p.renderLimits()
	options := fmt.Sprintf("%s\x00%d\x00%d", p.src.Path, limits.MaxObjects, limits.MaxBytes)
	log := logr.FromContextOrDiscard(ctx)
	same, changed, values := p.rendered.changes(art, options)
	if same {
		if p.rendered.revision != art.Revision {
			log.V(1).Info("render reused: nothing it reads changed", "revision", short(art.Revision), "rendered", short(p.rendered.revision))
			p.rendered.revision = art.Revision
		}
		return p.rendered.rendered.Objects, "", nil
	}
	if len(changed) > 0 {
		rd, ok, err := p.rendered.rendered.Update(ctx, art.Dir, changed, limits)
		if err != nil {
			p.rendered = renderCache{}
			return nil, renderResult(err), fmt.Errorf("render %s at %s: %w", p.src.Path, short(art.Revision), err)
		}
		if ok {
			log.V(1).Info("render updated: only files built alone changed", "revision", short(art.Revision), "changed", len(changed))
			p.rendered = renderCache{revision: art.Revision, options: options, rendered: rd, values: values}
			return rd.Objects, "", nil
		}
	}
	p.rendered = renderCache{}
	rd, err := render.RenderWithInputs(ctx, art.Dir, p.src.Path, limits)
	if err != nil {
		return nil, renderResult(err), fmt.Errorf("render %s at %s: %w", p.src.Path, short(art.Revision), err)
	}
	if len(rd.Objects) == 0 {
		return nil, ResultPruneRefused, fmt.Errorf("render %s at %s: no objects; refusing to apply an empty revision, which would prune every object of the source", p.src.Path, short(art.Revision))
	}
	values, _ = inputValues(rd.Inputs, art.Entries)
	p.rendered = renderCache{revision: art.Revision, options: options, rendered: rd, values: values}
	return rd.Objects, "", nil
}

// renderResult is the result of a sync whose render failed with err.
func renderResult(err error) SyncResult {
	if errors.Is(err, render.ErrLimitExceeded) {
		return ResultLimitExceeded
	}
	return ResultRenderFailed
}

// check evaluates the source's policy set against the rendered objects of art and returns
// the violations; none when the source names no policy set or there is no gate.
func (p *planner) check(ctx context.Context, art source.Artifact, rendered []*unstructured.Unstructured) ([]Violation, error) {
	if p.gate == nil || p.src.PolicySet == "" {
		return nil, nil
	}
	copies := make([]*unstructured.Unstructured, len(rendered))
	for i, u := range rendered {
		copies[i] = u.DeepCopy()
	}
	vs, err := p.gate.Check(ctx, p.src.PolicySet, copies)
	if err != nil {
		return nil, fmt.Errorf("check %s at %s against policy set %s: %w", p.src.Path, short(art.Revision), p.src.PolicySet, err)
	}
	return vs, nil
}

// prepare turns the rendered objects of revision into objects to apply, in apply order.
func (p *planner) prepare(rendered []*unstructured.Unstructured, revision string) ([]*object, error) {
	objs, err := prepare(rendered, p.mapper, &p.src, revision)
	if err != nil {
		return nil, fmt.Errorf("prepare %s at %s: %w", p.src.Path, short(revision), err)
	}
	return objs, nil
}

// plan dry-runs every object whose kind and namespace exist, and decides what changes. Any
// failure fails the whole plan, so that nothing of the revision is applied. The caller holds
// p.st.mu.
func (p *planner) plan(ctx context.Context, objs []*object) ([]*planItem, error) {
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
	namespaces, err := p.probeNamespaces(ctx, items)
	if err != nil {
		return nil, err
	}
	now := p.clock.Now()
	others := &claims{e: p.env}
	var (
		refusedMu    sync.Mutex
		refusedItems []*planItem
	)
	errs := parallel(ctx, p.concurrency, items, func(ctx context.Context, it *planItem) error {
		if ns := namespaces[it.o.ref.Namespace]; ns != nil && ns.absent() {
			// Its namespace does not exist yet, so neither does it: a read and a dry-run
			// could only say not found. It is dry-run once the namespace is applied.
			it.deferred, it.changed = true, true
			return nil
		}
		var probe *nsProbe
		if isNamespace(it.o.ref) {
			probe = namespaces[it.o.ref.Name]
		}
		if probe != nil && probe.dry != nil {
			// A Namespace that does not exist yet, dry-run by the probe.
			keepLive(it.o, nil, false)
			it.dry, it.changed = probe.dry, true
			return nil
		}
		var live *unstructured.Unstructured
		var err error
		if probe != nil && probe.read {
			live = probe.live
		} else if live, err = p.apply.getLive(ctx, it.o); err != nil && !(apierrors.IsNotFound(err) || isNoMatch(err)) {
			return err
		}
		it.live = live
		keepLive(it.o, live, gitUnchangedSince(p.st.desired[it.o.ref.key()], it.o))
		if live != nil {
			owner, err := others.claimedByOther(ctx, live)
			if err != nil {
				return fmt.Errorf("%s: %w", it.o.ref, err)
			}
			if owner != "" {
				return fmt.Errorf("%s is applied by source %s too; declare it in one source only (remove it from one, and the other can take it once the first has pruned it)", it.o.ref, owner)
			}
			switch p.ownershipOf(it.o.ref.key(), live) {
			case refused:
				refusedMu.Lock()
				refusedItems = append(refusedItems, it)
				refusedMu.Unlock()
				return nil
			case adoptable:
				it.adopt = true
			}
			it.bg = readBreakGlass(live, now, p.maxBreakGlass())
			// Keep the revision of an unchanged object, so that a new commit rewrites only
			// the objects it changes.
			if rev := live.GetAnnotations()[v1alpha1.AnnotationRevision]; rev != "" {
				setRevision(it.o.obj, rev)
			}
			if it.bg.State == v1alpha1.BreakGlassNone && p.writes.verifiedAt(it.o, live.GetResourceVersion()) {
				// Unchanged in Git and in the cluster since it last matched: a dry-run
				// could only agree.
				return nil
			}
		}
		dry, err := p.dryRun(ctx, it.o)
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
		it.changed = live == nil || p.takeover.hasForeign(live) || p.st.sessions[it.o.ref.key()] != nil || !sameState(dry, live)
		if !it.changed {
			p.writes.verify(it.o, live.GetResourceVersion())
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("dry-run: nothing applied: %w", joinErrors(errs))
	}
	if len(refusedItems) > 0 {
		sort.Slice(refusedItems, func(i, j int) bool { return refusedItems[i].o.ref.String() < refusedItems[j].o.ref.String() })
		e := &adoptionError{source: p.src.Name}
		for _, it := range refusedItems {
			e.refused = append(e.refused, it.o.ref)
		}
		for _, it := range refusedItems {
			p.event(it.live, corev1.EventTypeWarning, string(ResultAdoptionRefused), "Apply",
				fmt.Sprintf("source %s declares this object, which exists without its label %s; annotate it %s=%q or set adopt: true on the source to let the source take it over",
					p.src.Name, v1alpha1.LabelSource, v1alpha1.AnnotationAdopt, v1alpha1.AdoptAllowed))
		}
		return nil, e
	}
	return items, nil
}

// nsProbe is what [planner.probeNamespaces] learnt of a Namespace the revision declares.
type nsProbe struct {
	// live is the Namespace as read, when it was read (read is true).
	live *unstructured.Unstructured
	read bool
	// dry is the dry-run apply of a Namespace that does not exist yet; nil otherwise.
	dry *unstructured.Unstructured
}

// absent reports whether the Namespace does not exist.
func (pr *nsProbe) absent() bool { return pr.dry != nil || (pr.read && pr.live == nil) }

// isNamespace reports whether ref is a Namespace.
func isNamespace(ref ObjectRef) bool {
	return ref.key() == objKey{Kind: namespaceGK.Kind, Name: ref.Name}
}

// probeNamespaces learns which of the Namespaces the revision declares exist, with one
// request each: a read of those the last applied revision declared too, which the plan
// then reuses; a dry-run apply of the others, which, for a Namespace that does not exist
// yet, is the dry-run the plan needs (a dry-run of a create has no resourceVersion).
func (p *planner) probeNamespaces(ctx context.Context, items []*planItem) (map[string]*nsProbe, error) {
	probes := map[string]*nsProbe{}
	var nsItems []*planItem
	for _, it := range items {
		if isNamespace(it.o.ref) {
			nsItems = append(nsItems, it)
			probes[it.o.ref.Name] = &nsProbe{}
		}
	}
	errs := parallel(ctx, p.concurrency, nsItems, func(ctx context.Context, it *planItem) error {
		pr := probes[it.o.ref.Name]
		if p.st.desired[it.o.ref.key()] != nil {
			live, err := p.apply.getLive(ctx, it.o)
			if err != nil {
				return err
			}
			pr.live, pr.read = live, true
			return nil
		}
		dry, err := p.dryRun(ctx, it.o)
		if err != nil {
			return err
		}
		if dry.GetResourceVersion() == "" {
			pr.dry = dry
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("dry-run: nothing applied: %w", joinErrors(errs))
	}
	return probes, nil
}
