package reconciler

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/render"
)

// The outcomes of a sync that the ownership rules and the source's limits add to those of
// status.go.
const (
	// ResultAdoptionRefused: the revision declares an object that exists without the source's
	// label and neither the object nor the source opts in to adoption; nothing was applied.
	ResultAdoptionRefused SyncResult = "AdoptionRefused"
	// ResultLimitExceeded: the revision is over one of the source's limits (repository size,
	// file size, number of files, rendered size or objects); nothing was applied, and the last
	// good revision stays applied and healed.
	ResultLimitExceeded SyncResult = "LimitExceeded"
)

// The ownership rules. The reconciler
//   - creates an object that does not exist, and records it in the inventory as created;
//   - applies over an existing object only when it carries the source's label or the
//     inventory already records it; otherwise the object must opt in to adoption (annotated
//     driftless.dev/adopt: "true") or the source must (adopt: true), or the revision is
//     refused with AdoptionRefused. An adopted object is recorded as adopted;
//   - prunes an object that left Git only when its live label still names the source and it
//     is not annotated driftless.dev/prune: disabled; an adopted object, a Namespace, a
//     PersistentVolumeClaim or a CustomResourceDefinition only when the live object is
//     annotated driftless.dev/prune: confirm. Otherwise it is orphaned: dropped from the
//     inventory, its source label removed, and reported.
// Inventories written before origins were recorded count their objects as created when the
// live object carries the source's label, so an upgrade neither prunes nor re-creates.

// adoptionError lists the objects a revision would adopt without an opt-in.
type adoptionError struct {
	source  string
	refused []ObjectRef
}

func (e *adoptionError) Error() string {
	names := make([]string, len(e.refused))
	for i, r := range e.refused {
		names[i] = r.String()
	}
	return fmt.Sprintf("refusing to adopt %s: it exists and does not carry the label %s=%s; nothing of the revision was applied. "+
		"If source %s should take it over, annotate it %s=%q (kubectl annotate %s) or set adopt: true on the source",
		strings.Join(names, ", "), v1alpha1.LabelSource, e.source, e.source, v1alpha1.AnnotationAdopt, v1alpha1.AdoptAllowed,
		adoptCommand(e.refused[0]))
}

// adoptCommand is the kubectl arguments that let ref be adopted.
func adoptCommand(ref ObjectRef) string {
	kind := strings.ToLower(ref.Kind)
	if ref.Group != "" {
		kind += "." + ref.Group
	}
	ns := ""
	if ref.Namespace != "" {
		ns = " -n " + ref.Namespace
	}
	return fmt.Sprintf("%s%s %s %s=%s", kind, ns, ref.Name, v1alpha1.AnnotationAdopt, v1alpha1.AdoptAllowed)
}

// ownership says how the source may treat an existing object it declares.
type ownership int

const (
	// owned: the object carries the source's label or is in its inventory.
	owned ownership = iota
	// adoptable: the object is not the source's and opts in, or the source does.
	adoptable
	// refused: the object is not the source's and nothing opts in.
	refused
)

// ownershipOf decides whether the source may apply over live, the existing object k. The
// caller holds p.st.mu.
func (p *planner) ownershipOf(k objKey, live *unstructured.Unstructured) ownership {
	return ownershipIn(&p.src, p.st.inv, k, live)
}

// ownershipIn decides whether src, whose inventory is inv, may apply over live, the existing
// object k.
func ownershipIn(src *v1alpha1.Source, inv *inventory, k objKey, live *unstructured.Unstructured) ownership {
	switch {
	case live.GetLabels()[v1alpha1.LabelSource] == src.Name, inv.origin(k) != originUnknown:
		return owned
	case live.GetAnnotations()[v1alpha1.AnnotationAdopt] == v1alpha1.AdoptAllowed, src.Adopt:
		return adoptable
	}
	return refused
}

// originFor returns the origin to record for a desired object: the one the inventory knows,
// else adopted or created. The caller holds p.st.mu.
func (p *planner) originFor(it *planItem) origin {
	if o := p.st.inv.origin(it.o.ref.key()); o != originUnknown {
		return o
	}
	if it.adopt {
		return originAdopted
	}
	return originCreated
}

// confirmKinds are the kinds that are deleted only with a confirmation on the live object,
// in the order they are pruned, after everything else: deleting them deletes data
// (PersistentVolumeClaims), every object of a kind (CRDs) or of a namespace (Namespaces).
var confirmKinds = []schema.GroupKind{
	{Kind: "PersistentVolumeClaim"},
	crdGK,
	namespaceGK,
}

// pruneTier orders the kinds of prune candidates: 0 for most, then the confirmKinds.
func pruneTier(gk schema.GroupKind) int {
	for i, k := range confirmKinds {
		if k == gk {
			return i + 1
		}
	}
	return 0
}

// pruneConfirmed reports whether live is annotated driftless.dev/prune: confirm.
func pruneConfirmed(live *unstructured.Unstructured) bool {
	return live.GetAnnotations()[v1alpha1.AnnotationPrune] == v1alpha1.PruneConfirm
}

// orphan releases an object that left Git but may not be deleted: it drops the source label,
// so that the guard no longer treats it as the source's and another source may adopt it,
// and reports it in an Event and the log. The caller drops it from the inventory.
func (p *pruner) orphan(ctx context.Context, ref ObjectRef, gvr schema.GroupVersionResource, live *unstructured.Unstructured, why string) error {
	// The uid makes the patch fail if the object was replaced since it was read.
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q,"labels":{%q:null}}}`, live.GetUID(), v1alpha1.LabelSource)
	if _, err := p.resource(gvr, ref.Namespace).Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("orphan %s: remove its %s label: %w", ref, v1alpha1.LabelSource, err)
	}
	logr.FromContextOrDiscard(ctx).Info("orphaned object", "object", ref.String(), "why", why)
	p.event(live, corev1.EventTypeWarning, "Orphaned", "Prune",
		fmt.Sprintf("left Git but not deleted: %s; source %s no longer manages it and removed its %s label", why, p.src.Name, v1alpha1.LabelSource))
	return nil
}

// renderLimits are the source's limits on a render.
func (p *planner) renderLimits() render.Limits {
	return render.Limits{MaxObjects: p.src.Limits.MaxObjects, MaxBytes: p.src.Limits.MaxRenderedSize.Value()}
}
