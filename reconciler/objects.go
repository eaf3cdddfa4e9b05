package reconciler

import (
	"fmt"
	"reflect"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// ObjectRef identifies a Kubernetes object. Version is the API version it is applied with;
// it is not part of the object's identity.
type ObjectRef struct {
	// Group is the API group, empty for the core group.
	Group string `json:"group,omitempty"`
	// Version is the API version within the group.
	Version string `json:"version"`
	// Kind is the object's kind.
	Kind string `json:"kind"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
}

// refOf returns the reference of u.
func refOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// String formats the reference as kubectl does: "Deployment.apps prod/web", "Namespace prod".
func (r ObjectRef) String() string {
	kind := r.Kind
	if r.Group != "" {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// GroupVersionKind returns the reference's group, version and kind.
func (r ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// key returns the version-independent identity of the object.
func (r ObjectRef) key() objKey {
	return objKey{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// objKey is an object's identity, independent of the API version.
type objKey struct {
	Group, Kind, Namespace, Name string
}

// String formats the key like [ObjectRef.String].
func (k objKey) String() string {
	return ObjectRef{Group: k.Group, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name}.String()
}

// keyOf returns the identity of u.
func keyOf(u *unstructured.Unstructured) objKey { return refOf(u).key() }

// Apply stages. Everything in an earlier stage is applied, and CRDs are established, before
// anything of a later stage is applied.
const (
	stageDefinitions = iota // CustomResourceDefinitions and Namespaces
	stageResources          // everything else
)

// kindOrder ranks kinds inside a stage, after the order kubectl and kustomize have used for
// years, so that objects are applied after those they refer to. Unlisted kinds come after the
// listed ones and before webhook configurations.
var kindOrder = []schema.GroupKind{
	{Kind: "Namespace"},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"},
	{Kind: "ResourceQuota"},
	{Kind: "LimitRange"},
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"},
	{Group: "storage.k8s.io", Kind: "StorageClass"},
	{Kind: "ServiceAccount"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
	{Group: "rbac.authorization.k8s.io", Kind: "Role"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"},
	{Kind: "ConfigMap"},
	{Kind: "Secret"},
	{Kind: "PersistentVolume"},
	{Kind: "PersistentVolumeClaim"},
	{Kind: "Service"},
	{Group: "apps", Kind: "DaemonSet"},
	{Group: "apps", Kind: "Deployment"},
	{Group: "apps", Kind: "StatefulSet"},
	{Group: "batch", Kind: "Job"},
	{Group: "batch", Kind: "CronJob"},
	{Group: "policy", Kind: "PodDisruptionBudget"},
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"},
	{Group: "networking.k8s.io", Kind: "Ingress"},
}

// lastKinds are applied after everything else: a webhook applied early could reject the
// objects it depends on.
var lastKinds = []schema.GroupKind{
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"},
}

var (
	crdGK       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	namespaceGK = schema.GroupKind{Kind: "Namespace"}
)

// stageOf returns the apply stage of a kind.
func stageOf(gk schema.GroupKind) int {
	if gk == crdGK || gk == namespaceGK {
		return stageDefinitions
	}
	return stageResources
}

// rankOf orders kinds inside a stage.
func rankOf(gk schema.GroupKind) int {
	for i, k := range kindOrder {
		if k == gk {
			return i
		}
	}
	for i, k := range lastKinds {
		if k == gk {
			return len(kindOrder) + 1 + i
		}
	}
	return len(kindOrder)
}

// object is a desired object ready to apply.
type object struct {
	ref        ObjectRef
	gvr        schema.GroupVersionResource
	namespaced bool
	stage      int
	rank       int
	// obj is the desired state: the rendered object with the source label, the revision
	// annotation and the namespace set.
	obj *unstructured.Unstructured
	// autoscaled is set when a HorizontalPodAutoscaler of the same revision targets it.
	autoscaled bool
	// kept are the fields of the live object left alone (livekeep.go); [object.applied] is
	// what is sent.
	kept liveKept
}

// crdScopes returns, for every CustomResourceDefinition among objs, the kind it defines with
// its plural resource name and whether it is namespaced. Objects of these kinds can be mapped
// before the definition exists in the cluster.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]crdScope {
	out := map[schema.GroupKind]crdScope{}
	for _, u := range objs {
		if u.GroupVersionKind().GroupKind() != crdGK {
			continue
		}
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
		scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
		if kind == "" || plural == "" {
			continue
		}
		out[schema.GroupKind{Group: group, Kind: kind}] = crdScope{plural: plural, namespaced: scope != "Cluster"}
	}
	return out
}

// crdScope is what a CRD in the render says about its kind.
type crdScope struct {
	plural     string
	namespaced bool
}

// prepare turns rendered objects into objects to apply, in apply order: it maps each to its
// resource, sets the target namespace on namespaced objects without one, clears the namespace
// of cluster-scoped ones, and labels and annotates each. Duplicates are an error.
func prepare(rendered []*unstructured.Unstructured, mapper meta.RESTMapper, src *v1alpha1.Source, commit string) ([]*object, error) {
	defined := crdScopes(rendered)
	seen := map[objKey]bool{}
	out := make([]*object, 0, len(rendered))
	var errs []error
	for _, in := range rendered {
		u := in.DeepCopy()
		gvk := u.GroupVersionKind()
		o := &object{stage: stageOf(gvk.GroupKind()), rank: rankOf(gvk.GroupKind())}
		if s, ok := defined[gvk.GroupKind()]; ok {
			o.gvr = gvk.GroupVersion().WithResource(s.plural)
			o.namespaced = s.namespaced
		} else {
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", gvk.GroupVersion(), describe(u), err))
				continue
			}
			o.gvr = m.Resource
			o.namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		}
		switch {
		case !o.namespaced:
			u.SetNamespace("")
		case u.GetNamespace() == "" && src.TargetNamespace != "":
			u.SetNamespace(src.TargetNamespace)
		case u.GetNamespace() == "":
			errs = append(errs, fmt.Errorf("%s: namespaced object has no namespace and the source sets no targetNamespace", describe(u)))
			continue
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[v1alpha1.LabelSource] = src.Name
		u.SetLabels(labels)
		setRevision(u, commit)
		o.obj = u
		o.ref = refOf(u)
		if seen[o.ref.key()] {
			errs = append(errs, fmt.Errorf("%s: declared twice", o.ref))
			continue
		}
		seen[o.ref.key()] = true
		out = append(out, o)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].stage != out[j].stage {
			return out[i].stage < out[j].stage
		}
		return out[i].rank < out[j].rank
	})
	return out, nil
}

// describe names a rendered object that may not be fully valid yet.
func describe(u *unstructured.Unstructured) string {
	return refOf(u).String()
}

// setRevision sets the revision annotation of u.
func setRevision(u *unstructured.Unstructured, commit string) {
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.AnnotationRevision] = commit
	u.SetAnnotations(ann)
}

// comparableState returns a copy of u without what changes on every write or dry-run without the
// object changing: the resource version, the generation and the managed fields' times.
func comparableState(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy().Object
	if md, ok := c["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
		delete(md, "generation")
		if mf, ok := md["managedFields"].([]any); ok {
			for _, e := range mf {
				if m, ok := e.(map[string]any); ok {
					delete(m, "time")
				}
			}
		}
	}
	return c
}

// sameState reports whether two versions of an object hold the same state, including who
// owns which field.
func sameState(a, b *unstructured.Unstructured) bool {
	return reflect.DeepEqual(comparableState(a), comparableState(b))
}

// sameDesired reports whether two desired objects differ only in their revision annotation.
func sameDesired(a, b *unstructured.Unstructured) bool {
	ca, cb := a.DeepCopy(), b.DeepCopy()
	setRevision(ca, "")
	setRevision(cb, "")
	return reflect.DeepEqual(ca.Object, cb.Object)
}
