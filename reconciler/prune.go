package reconciler

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// pruner deletes the objects of an inventory that left Git, within the ownership rules. It
// reads no state: the sync hands it the inventory and the desired objects.
type pruner struct {
	*env
}

// pruneCandidates returns the inventory's objects that are not desired, in reverse apply
// order (kinds applied last are deleted first), except that PersistentVolumeClaims, then
// CRDs, then Namespaces come last.
func pruneCandidates(inv *inventory, desired map[objKey]*object) []ObjectRef {
	var out []ObjectRef
	for i := len(inv.refs) - 1; i >= 0; i-- {
		if desired[inv.refs[i].key()] == nil {
			out = append(out, inv.refs[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		gi, gj := out[i].GroupVersionKind().GroupKind(), out[j].GroupVersionKind().GroupKind()
		if ti, tj := pruneTier(gi), pruneTier(gj); ti != tj {
			return ti < tj
		}
		if si, sj := stageOf(gi), stageOf(gj); si != sj {
			return si > sj
		}
		return rankOf(gi) > rankOf(gj)
	})
	return out
}

// pruneDecision is what prune does with one candidate.
type pruneDecision int

const (
	pruneDelete pruneDecision = iota
	// pruneForget: the object is gone, belongs to another source, or opted out of pruning.
	pruneForget
	// pruneKeep: the object stays in the inventory, to be pruned later (break-glass).
	pruneKeep
	// pruneOrphan: the object is not deleted but released and dropped from the inventory (an
	// adopted object, or a Namespace, PVC or CRD, without a confirmation).
	pruneOrphan
)

// decidePrune decides what to do with the live object of ref, which left Git; o is how it
// came to the inventory.
func (p *pruner) decidePrune(ref ObjectRef, live *unstructured.Unstructured, o origin) (pruneDecision, string) {
	switch {
	case live == nil:
		return pruneForget, "already deleted"
	case live.GetLabels()[v1alpha1.LabelSource] != p.src.Name:
		return pruneForget, fmt.Sprintf("its %s label is %q", v1alpha1.LabelSource, live.GetLabels()[v1alpha1.LabelSource])
	case live.GetAnnotations()[v1alpha1.AnnotationPrune] == v1alpha1.PruneDisabled:
		return pruneForget, fmt.Sprintf("annotated %s: %s", v1alpha1.AnnotationPrune, v1alpha1.PruneDisabled)
	case live.GetDeletionTimestamp() != nil:
		return pruneForget, "already being deleted"
	}
	if bg := readBreakGlass(live, p.clock.Now(), p.maxBreakGlass()); bg.State == v1alpha1.BreakGlassActive {
		return pruneKeep, fmt.Sprintf("under break-glass %q until %s", bg.Reason, bg.Until)
	}
	if pruneConfirmed(live) {
		return pruneDelete, ""
	}
	confirm := fmt.Sprintf("annotate it %s: %s to have it deleted", v1alpha1.AnnotationPrune, v1alpha1.PruneConfirm)
	if o == originAdopted {
		return pruneOrphan, "the source adopted it (it existed before); " + confirm
	}
	if gk := ref.GroupVersionKind().GroupKind(); pruneTier(gk) > 0 {
		return pruneOrphan, fmt.Sprintf("a %s is deleted only with a confirmation; %s", gk.Kind, confirm)
	}
	return pruneDelete, ""
}

// prune deletes the inventory's objects that are not desired, kind by kind in reverse apply
// order. Only an object whose live label still names the source, that is not annotated
// driftless.dev/prune: disabled and not under break-glass is deleted, and only if it is still
// the object that was read (same UID); adopted objects, Namespaces, PVCs and CRDs only when
// annotated driftless.dev/prune: confirm, else they are orphaned. It returns how many were
// deleted, the objects that stay in the inventory (break-glass and failures) and the
// orphaned objects with the reason.
func (p *pruner) prune(ctx context.Context, inv *inventory, desired map[objKey]*object) (int, []ObjectRef, []string, error) {
	log := logr.FromContextOrDiscard(ctx)
	cands := pruneCandidates(inv, desired)
	var (
		mu       sync.Mutex
		pruned   int
		kept     []ObjectRef
		orphaned []string
	)
	keep := func(ref ObjectRef) {
		mu.Lock()
		kept = append(kept, ref)
		mu.Unlock()
	}
	var errs []error
	for len(cands) > 0 {
		n := 1
		gk := cands[0].GroupVersionKind().GroupKind()
		for n < len(cands) && cands[n].GroupVersionKind().GroupKind() == gk {
			n++
		}
		errs = append(errs, parallel(ctx, p.concurrency, cands[:n], func(ctx context.Context, ref ObjectRef) error {
			m, err := p.mapper.RESTMapping(gk, ref.Version)
			if meta.IsNoMatchError(err) {
				log.Info("not pruning object whose kind is no longer served", "object", ref.String())
				return nil
			}
			if err != nil {
				keep(ref)
				return fmt.Errorf("prune %s: %w", ref, err)
			}
			ri := p.resource(m.Resource, ref.Namespace)
			live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				live, err = nil, nil
			}
			if err != nil {
				keep(ref)
				return fmt.Errorf("prune %s: %w", ref, err)
			}
			decision, why := p.decidePrune(ref, live, inv.origin(ref.key()))
			switch decision {
			case pruneForget:
				log.Info("not pruning object", "object", ref.String(), "why", why)
				return nil
			case pruneKeep:
				log.Info("not pruning object yet", "object", ref.String(), "why", why)
				keep(ref)
				return nil
			case pruneOrphan:
				if err := p.orphan(ctx, ref, m.Resource, live, why); err != nil {
					keep(ref)
					return err
				}
				mu.Lock()
				orphaned = append(orphaned, ref.String()+" ("+why+")")
				mu.Unlock()
				return nil
			}
			uid := live.GetUID()
			policy := metav1.DeletePropagationBackground
			err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &policy})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				keep(ref)
				return fmt.Errorf("prune %s: %w", ref, err)
			}
			log.Info("pruned object", "object", ref.String())
			p.event(live, corev1.EventTypeNormal, "Pruned", "Prune", fmt.Sprintf("deleted: the object left Git (source %s)", p.src.Name))
			mu.Lock()
			pruned++
			mu.Unlock()
			return nil
		})...)
		cands = cands[n:]
	}
	sort.Strings(orphaned)
	if len(errs) > 0 {
		return pruned, kept, orphaned, joinErrors(errs)
	}
	return pruned, kept, orphaned, nil
}
