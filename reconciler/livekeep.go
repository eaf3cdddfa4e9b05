package reconciler

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Fields the live object keeps although Git says otherwise, because changing them is not
// drift:
//
//   - the pod template's kubectl.kubernetes.io/restartedAt annotation, which kubectl rollout
//     restart sets (a safe operation the guard allows). The reconciler never takes it over
//     from kubectl, so its apply never removes it; when Git declares it too, the live value
//     is kept until Git's object changes, and then Git's wins. Reverting it would roll the
//     workload out a second time.
//   - spec.replicas of a workload that a HorizontalPodAutoscaler of the same revision
//     targets, once the live object exists and the autoscaler (or anyone but the reconciler)
//     has set it: the autoscaler owns it, and the reconciler no longer sends it.

// AnnotationRestartedAt is the pod template annotation kubectl rollout restart sets.
const AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

var (
	restartedAtPath = fieldpath.MakePathOrDie("spec", "template", "metadata", "annotations", AnnotationRestartedAt)
	// templateAnnotationsPath is the map restartedAt lives in; an entry that created the map
	// owns it as well.
	templateAnnotationsPath = fieldpath.MakePathOrDie("spec", "template", "metadata", "annotations")
	replicasPath            = fieldpath.MakePathOrDie("spec", "replicas")
	// keptFromTakeover are never taken over from kubectl's field managers.
	keptFromTakeover = fieldpath.NewSet(restartedAtPath, templateAnnotationsPath)

	// restartable are the kinds kubectl rollout restart restarts.
	restartable = map[schema.GroupKind]bool{
		{Group: "apps", Kind: "Deployment"}:  true,
		{Group: "apps", Kind: "StatefulSet"}: true,
		{Group: "apps", Kind: "DaemonSet"}:   true,
	}
	hpaGK = schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}
)

// liveKept are the fields left out of what the reconciler sends for one object, so that the
// live object keeps them.
type liveKept struct {
	replicas    bool
	restartedAt bool
}

// takenFields returns the fields of a managed fields entry that a takeover moves to the
// reconciler: all of them but restartedAt.
func takenFields(e metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	set, err := fieldSet(e)
	if err != nil {
		return nil, err
	}
	return set.Difference(keptFromTakeover), nil
}

// ownsOnlyKept reports whether an entry owns nothing but what is never taken over, such as
// kubectl rollout restart's entry.
func ownsOnlyKept(e metav1.ManagedFieldsEntry) bool {
	set, err := takenFields(e)
	return err == nil && set.Empty() && e.FieldsV1 != nil && len(e.FieldsV1.Raw) > 0
}

// markAutoscaled marks the objects whose replicas a HorizontalPodAutoscaler among objs
// targets: same namespace, and the target's API group, kind and name.
func markAutoscaled(objs []*object) {
	targets := map[objKey]bool{}
	for _, o := range objs {
		if o.ref.GroupVersionKind().GroupKind() != hpaGK {
			continue
		}
		apiVersion, _, _ := unstructured.NestedString(o.obj.Object, "spec", "scaleTargetRef", "apiVersion")
		kind, _, _ := unstructured.NestedString(o.obj.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(o.obj.Object, "spec", "scaleTargetRef", "name")
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil || kind == "" || name == "" {
			continue
		}
		targets[objKey{Group: gv.Group, Kind: kind, Namespace: o.ref.Namespace, Name: name}] = true
	}
	for _, o := range objs {
		o.autoscaled = targets[o.ref.key()]
	}
}

// keepLive decides which fields of live (nil when the object does not exist) the
// reconciler leaves alone when it applies o, and records it on o. gitUnchanged says that
// Git's object is the one the reconciler applied before, so that a restartedAt Git declares
// gives way to a later rollout restart until Git's object changes.
func keepLive(o *object, live *unstructured.Unstructured, gitUnchanged bool) {
	o.kept = liveKept{}
	if live == nil {
		return
	}
	owned := ownedByReconciler(live)
	if o.autoscaled && !owned.Has(replicasPath) {
		if _, found, _ := unstructured.NestedFieldNoCopy(live.Object, "spec", "replicas"); found {
			o.kept.replicas = true
		}
	}
	if gitUnchanged && restartable[o.ref.GroupVersionKind().GroupKind()] && !owned.Has(restartedAtPath) {
		git, _, _ := unstructured.NestedString(o.obj.Object, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
		now, _, _ := unstructured.NestedString(live.Object, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
		o.kept.restartedAt = git != "" && now != "" && now != git
	}
}

// ownedByReconciler returns the fields of u that the reconciler's apply owns.
func ownedByReconciler(u *unstructured.Unstructured) *fieldpath.Set {
	owned := &fieldpath.Set{}
	for _, e := range u.GetManagedFields() {
		if e.Manager != FieldManager || e.Subresource != "" {
			continue
		}
		if set, err := fieldSet(e); err == nil {
			owned = owned.Union(set)
		}
	}
	return owned
}

// applied returns what the reconciler sends for o: its desired state without the fields the
// live object keeps.
func (o *object) applied() *unstructured.Unstructured {
	if o.kept == (liveKept{}) {
		return o.obj
	}
	u := o.obj.DeepCopy()
	if o.kept.replicas {
		unstructured.RemoveNestedField(u.Object, "spec", "replicas")
	}
	if o.kept.restartedAt {
		path := []string{"spec", "template", "metadata", "annotations"}
		unstructured.RemoveNestedField(u.Object, append(path, AnnotationRestartedAt)...)
		if ann, found, _ := unstructured.NestedMap(u.Object, path...); found && len(ann) == 0 {
			unstructured.RemoveNestedField(u.Object, path...)
		}
	}
	return u
}

// gitUnchangedSince reports whether o is the object prev (the one applied before, nil when
// there is none) says Git declared, apart from the revision.
func gitUnchangedSince(prev, o *object) bool {
	return prev == nil || sameDesired(prev.obj, o.obj)
}
