package ui

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

// States of an object on a source's objects page.
const (
	// StateInSync: applied at the source's revision and written by nobody else but
	// Kubernetes' own components.
	StateInSync = "in sync"
	// StateChanged: a person's tool (kubectl and the like) owns fields Driftless did not set.
	StateChanged = "changed outside Git"
	// StateBreakGlass: under an active break-glass; reverted to Git at its expiry.
	StateBreakGlass = "break-glass"
	// StateBehind: applied at another revision than the source's current one.
	StateBehind = "not at the source's revision"
)

// DiffNote says what an object's diff is, and what it cannot be.
const DiffNote = "Each diff goes from the object as Driftless applied it (the fields its field manager owns) to the live object: " +
	"its + lines are fields someone else wrote. Git's value of a field someone else overwrote is not kept in the cluster: " +
	"a break-glass patch on the break-glass page, or `driftless diff` (which fetches Git and dry-runs), shows it."

// ObjectsView is a source's objects page.
type ObjectsView struct {
	// Now is the server's time when the view was read.
	Now time.Time `json:"now"`
	// Source is the source's name.
	Source string `json:"source"`
	// Found is whether the source has a status.
	Found bool `json:"found"`
	// Revision is the source's current revision.
	Revision string `json:"revision,omitempty"`
	// Objects are the live objects carrying the source's label.
	Objects []Object `json:"objects"`
	// DiffNote says what the diffs show.
	DiffNote string `json:"diffNote"`
	// Forbidden are the kinds (resource.group) the caller may not list: their objects are
	// not shown.
	Forbidden []string `json:"forbidden,omitempty"`
	// Notes say what else the view could not show.
	Notes []string `json:"notes,omitempty"`
	// Error says why the view could not be read.
	Error string `json:"error,omitempty"`
}

// Object is one live object of a source.
type Object struct {
	reconciler.ObjectRef
	// Object names it as the command line does: "ConfigMap production/app".
	Object string `json:"object"`
	// State is one of the State constants.
	State string `json:"state"`
	// Revision is the commit Driftless last applied it at (driftless.dev/revision).
	Revision string `json:"revision,omitempty"`
	// Writers are the field managers other than Driftless that own fields of it.
	Writers []Writer `json:"writers,omitempty"`
	// Diff is a unified diff from the object as Driftless applied it to the live object;
	// empty when nobody else wrote to it.
	Diff string `json:"diff,omitempty"`
	// BreakGlass is the active break-glass on it, as the source's status records it.
	BreakGlass *reconciler.BreakGlassObject `json:"breakGlass,omitempty"`
}

// Writer is a field manager of an object other than Driftless.
type Writer struct {
	// Manager is the field manager's name, such as kubectl-edit.
	Manager string `json:"manager"`
	// Operation is Apply or Update.
	Operation string `json:"operation"`
	// Time is when it last wrote.
	Time time.Time `json:"time,omitzero"`
	// Fields are the fields it owns that Driftless does not, such as .data.POOL_SIZE.
	Fields []string `json:"fields"`
	// Person is whether the manager is a person's tool that the reconciler takes fields
	// over from (reconciler.DefaultTakeoverManagers), rather than a controller.
	Person bool `json:"person"`
}

// anyDuration stands for the guard's maximum break-glass duration, which the view does not
// know: an object claims break-glass with a reason and an expiry ahead; the guard enforces
// the maximum, and the source's status lists what the reconciler honours.
const anyDuration = 100 * 365 * 24 * time.Hour

// maxParallelLists bounds the list requests one objects view runs at once.
const maxParallelLists = 4

// Objects lists the live objects that carry the source's label, in namespace (all when
// empty), and compares each with what Driftless applied.
func (r *Reader) Objects(ctx context.Context, source, namespace string) ObjectsView {
	v := ObjectsView{Now: r.clock.Now(), Source: source, Objects: []Object{}, DiffNote: DiffNote}
	status, found, err := reconciler.ReadSourceStatus(ctx, r.dyn, r.namespace, source)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Found, v.Revision = found, status.Revision
	held := map[string]*reconciler.BreakGlassObject{}
	for i := range status.BreakGlass {
		held[status.BreakGlass[i].Object] = &status.BreakGlass[i]
	}

	resources, err := r.listable()
	if err != nil {
		v.Notes = append(v.Notes, "some kinds could not be discovered: "+err.Error())
	}
	var (
		mu        sync.Mutex
		forbidden []string
		failed    []string
		wg        sync.WaitGroup
		sem       = make(chan struct{}, maxParallelLists)
	)
	selector := v1alpha1.LabelSource + "=" + source
	for _, gvr := range resources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			list, err := r.dyn.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case apierrors.IsForbidden(err):
				forbidden = append(forbidden, gvr.GroupResource().String())
				return
			case apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
				return
			case err != nil:
				failed = append(failed, fmt.Sprintf("%s: %v", gvr.GroupResource(), err))
				return
			}
			for i := range list.Items {
				v.Objects = append(v.Objects, describeObject(&list.Items[i], status.Revision, held, v.Now))
			}
		}()
	}
	wg.Wait()
	sort.Slice(v.Objects, func(i, j int) bool { return v.Objects[i].Object < v.Objects[j].Object })
	slices.Sort(forbidden)
	v.Forbidden = forbidden
	if len(failed) > 0 {
		slices.Sort(failed)
		v.Notes = append(v.Notes, "could not list "+strings.Join(failed, "; "))
	}
	if found && status.ObjectsManaged > len(v.Objects) && namespace == "" {
		v.Notes = append(v.Notes, fmt.Sprintf("the source's status counts %d managed objects; %d are shown", status.ObjectsManaged, len(v.Objects)))
	}
	return v
}

// listable returns every resource that can be listed, at the version the server prefers.
func (r *Reader) listable() ([]schema.GroupVersionResource, error) {
	lists, err := r.disco.ServerPreferredResources()
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, perr := schema.ParseGroupVersion(l.GroupVersion)
		if perr != nil {
			continue
		}
		for _, res := range l.APIResources {
			if strings.Contains(res.Name, "/") || !slices.Contains(res.Verbs, "list") {
				continue
			}
			// Events are never applied from Git, and there are many.
			if res.Name == "events" && (gv.Group == "" || gv.Group == "events.k8s.io") {
				continue
			}
			out = append(out, gv.WithResource(res.Name))
		}
	}
	if err != nil {
		r.disco.Invalidate()
	}
	return out, err
}

// describeObject compares a live object with what Driftless applied of it.
func describeObject(u *unstructured.Unstructured, revision string, held map[string]*reconciler.BreakGlassObject, now time.Time) Object {
	gvk := u.GroupVersionKind()
	ref := reconciler.ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
	o := Object{ObjectRef: ref, Object: ref.String(), Revision: u.GetAnnotations()[v1alpha1.AnnotationRevision]}
	o.BreakGlass = held[o.Object]
	writers, applied := appliedByDriftless(u)
	o.Writers = writers
	if diff, err := objectDiff(applied, u, revision); err == nil {
		o.Diff = diff
	} else {
		o.Diff = "cannot show the diff: " + err.Error()
	}
	person := slices.ContainsFunc(writers, func(w Writer) bool { return w.Person })
	switch {
	case o.BreakGlass != nil || v1alpha1.ReadBreakGlass(u.GetAnnotations(), now, anyDuration).Holds():
		o.State = StateBreakGlass
	case person:
		o.State = StateChanged
	case revision != "" && o.Revision != revision:
		o.State = StateBehind
	default:
		o.State = StateInSync
	}
	return o
}

// appliedByDriftless returns the object as Driftless applied it, as far as the cluster
// knows: the live object without the fields only other field managers own, and those
// managers with their fields. The status subresource's managers are left out.
func appliedByDriftless(u *unstructured.Unstructured) ([]Writer, *unstructured.Unstructured) {
	mine := &fieldpath.Set{}
	type other struct {
		w   Writer
		set *fieldpath.Set
	}
	var others []other
	for _, mf := range u.GetManagedFields() {
		if mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
			continue
		}
		if mf.Manager == reconciler.FieldManager {
			mine = mine.Union(set)
			continue
		}
		w := Writer{Manager: mf.Manager, Operation: string(mf.Operation)}
		if mf.Time != nil {
			w.Time = mf.Time.Time
		}
		for _, p := range reconciler.DefaultTakeoverManagers {
			w.Person = w.Person || strings.HasPrefix(mf.Manager, p)
		}
		others = append(others, other{w: w, set: set})
	}
	applied := u.DeepCopy()
	var writers []Writer
	for _, o := range others {
		only := o.set.Difference(mine)
		only.Leaves().Iterate(func(p fieldpath.Path) { o.w.Fields = append(o.w.Fields, p.String()) })
		if len(o.w.Fields) == 0 {
			continue
		}
		only.Iterate(func(p fieldpath.Path) { removePath(applied.Object, p) })
		writers = append(writers, o.w)
	}
	sort.Slice(writers, func(i, j int) bool { return writers[i].Manager < writers[j].Manager })
	return writers, applied
}

// removePath removes the field or list element p from obj; it does nothing when p is not
// there.
func removePath(obj map[string]any, p fieldpath.Path) {
	if len(p) == 0 {
		return
	}
	parent, ok := nodeAt(obj, p[:len(p)-1])
	if !ok {
		return
	}
	last := p[len(p)-1]
	switch node := parent.(type) {
	case map[string]any:
		if last.FieldName != nil {
			delete(node, *last.FieldName)
		}
	case []any:
		if at := indexOf(node, last); at >= 0 {
			// A shorter list must be written back through the list's own parent.
			setAt(obj, p[:len(p)-1], append(slices.Clone(node[:at]), node[at+1:]...))
		}
	}
}

// setAt replaces the node at path p of obj, when it is there.
func setAt(obj map[string]any, p fieldpath.Path, v any) {
	if len(p) == 0 {
		return
	}
	parent, ok := nodeAt(obj, p[:len(p)-1])
	if !ok {
		return
	}
	last := p[len(p)-1]
	switch node := parent.(type) {
	case map[string]any:
		if last.FieldName != nil {
			node[*last.FieldName] = v
		}
	case []any:
		if at := indexOf(node, last); at >= 0 {
			node[at] = v
		}
	}
}

// nodeAt returns the node at path p of obj; ok is false when p is not there.
func nodeAt(obj map[string]any, p fieldpath.Path) (any, bool) {
	var node any = obj
	for _, pe := range p {
		switch n := node.(type) {
		case map[string]any:
			if pe.FieldName == nil {
				return nil, false
			}
			node = n[*pe.FieldName]
		case []any:
			at := indexOf(n, pe)
			if at < 0 {
				return nil, false
			}
			node = n[at]
		default:
			return nil, false
		}
	}
	return node, true
}

// indexOf returns the index of the element of list that pe names, or -1.
func indexOf(list []any, pe fieldpath.PathElement) int {
	for j, elem := range list {
		if listElementMatches(elem, j, pe) {
			return j
		}
	}
	return -1
}

// listElementMatches reports whether the list element elem at index i is the one pe names.
func listElementMatches(elem any, i int, pe fieldpath.PathElement) bool {
	switch {
	case pe.Index != nil:
		return *pe.Index == i
	case pe.Value != nil:
		return value.Equals(value.NewValueInterface(elem), *pe.Value)
	case pe.Key != nil:
		m, ok := elem.(map[string]any)
		if !ok {
			return false
		}
		for _, f := range *pe.Key {
			v, ok := m[f.Name]
			if !ok || !value.Equals(value.NewValueInterface(v), f.Value) {
				return false
			}
		}
		return true
	}
	return false
}

// objectDiff returns a unified diff from the object as Driftless applied it to the live
// object, both without status and the fields the API server maintains.
func objectDiff(applied, live *unstructured.Unstructured, revision string) (string, error) {
	text := func(u *unstructured.Unstructured) (string, error) {
		c := u.DeepCopy()
		for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
			unstructured.RemoveNestedField(c.Object, "metadata", f)
		}
		unstructured.RemoveNestedField(c.Object, "status")
		b, err := yaml.Marshal(c.Object)
		return string(b), err
	}
	a, err := text(applied)
	if err != nil {
		return "", err
	}
	b, err := text(live)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	from := "applied by driftless"
	if rev := live.GetAnnotations()[v1alpha1.AnnotationRevision]; rev != "" {
		from += " at " + shortRev(rev)
	} else if revision != "" {
		from += " (source at " + shortRev(revision) + ")"
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: from, ToFile: "live", Context: 3,
	})
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
