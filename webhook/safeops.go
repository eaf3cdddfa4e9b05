package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// SafeOperation names a routine operation that changes no desired state, which the guard
// allows in a protected namespace without break-glass (guard.safeOperations) and records.
type SafeOperation string

// The safe operations.
const (
	// SafeRolloutRestart is kubectl rollout restart: an update of a Deployment, StatefulSet or
	// DaemonSet whose only change is the pod template's restartedAt annotation.
	SafeRolloutRestart SafeOperation = "rollout-restart"
	// SafeControlledPodDelete is deleting a Pod that a ReplicaSet, StatefulSet, DaemonSet or
	// Job controls; the controller recreates it.
	SafeControlledPodDelete SafeOperation = "controlled-pod-delete"
	// SafeJobFromCronJob is kubectl create job --from=cronjob/NAME for a CronJob that a source
	// applied, and deleting such a Job.
	SafeJobFromCronJob SafeOperation = "job-from-cronjob"
)

// The reasons of requests allowed as safe operations.
const (
	ReasonRolloutRestart      Reason = "safe-rollout-restart"
	ReasonControlledPodDelete Reason = "safe-controlled-pod-delete"
	ReasonJobFromCronJob      Reason = "safe-job-from-cronjob"
)

// EventSafeOperation is the reason of the Event the guard records for a safe operation.
const EventSafeOperation = "SafeOperation"

// Annotations the safe operations are recognised by. kubectl sets both.
const (
	// AnnotationRestartedAt is the pod template annotation kubectl rollout restart sets.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	// AnnotationInstantiate set to "manual" marks a Job kubectl created from a CronJob.
	AnnotationInstantiate = "cronjob.kubernetes.io/instantiate"
)

// ObjectReader reads whole objects. When the guard's ParentReader implements it too, the
// guard can check a Job created from a CronJob against the CronJob; otherwise such Jobs are
// denied like any other change.
type ObjectReader interface {
	Object(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error)
}

// ClientReader is a ParentReader and an ObjectReader backed by a metadata-only and a dynamic
// client.
type ClientReader struct {
	MetadataParentReader
	// Dynamic reads whole objects.
	Dynamic dynamic.Interface
}

var _ ObjectReader = ClientReader{}

// Object reads the object from the API server.
func (c ClientReader) Object(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	return c.Dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
}

var (
	restartable = map[string]bool{"deployments": true, "statefulsets": true, "daemonsets": true}
	// podControllers are the kinds whose Pods may be deleted as a safe operation.
	podControllers = map[schema.GroupKind]bool{
		{Group: "apps", Kind: "ReplicaSet"}:  true,
		{Group: "apps", Kind: "StatefulSet"}: true,
		{Group: "apps", Kind: "DaemonSet"}:   true,
		{Group: "batch", Kind: "Job"}:        true,
	}
	cronJobsResource = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	cronJobKind      = schema.GroupKind{Group: "batch", Kind: "CronJob"}
)

// decideSafeOperation decides again a request that d denies as a change in a protected
// namespace: it is allowed when it is a safe operation that the configuration allows the
// requester. Otherwise d stands, with a note when the request came close to one.
func (g *Guard) decideSafeOperation(ctx context.Context, r *rules, f *facts, d decision) decision {
	if !d.deny || d.reason != ReasonProtected || f.namespace == "" || f.subResource != "" {
		return d
	}
	op, note := g.safeOperationOf(ctx, f)
	if op == "" {
		if note != "" {
			d.problem += " (" + note + ")"
		}
		return d
	}
	name, conf := r.safeOperation(op)
	if !conf.AllowedFor(f.groups) {
		if conf.Enabled != nil && !*conf.Enabled {
			d.problem += fmt.Sprintf(" (a %s is switched off in this cluster: guard.safeOperations.%s.enabled)", op, name)
		} else {
			d.problem += fmt.Sprintf(" (a %s is allowed only to %s)", op, quoteList(conf.Groups))
		}
		return d
	}
	return decision{reason: op.reason(), safeOperation: op}
}

// reason is the decision reason of a request allowed as op.
func (op SafeOperation) reason() Reason {
	switch op {
	case SafeRolloutRestart:
		return ReasonRolloutRestart
	case SafeControlledPodDelete:
		return ReasonControlledPodDelete
	default:
		return ReasonJobFromCronJob
	}
}

// describe says what op does, for Events.
func (op SafeOperation) describe() string {
	switch op {
	case SafeRolloutRestart:
		return "rollout restart (only the pod template's " + AnnotationRestartedAt + " changes)"
	case SafeControlledPodDelete:
		return "delete a pod its controller recreates"
	default:
		return "a Job from a CronJob applied from Git"
	}
}

// safeOperation returns the configuration of op and its field name.
func (r *rules) safeOperation(op SafeOperation) (string, v1alpha1.SafeOperation) {
	switch op {
	case SafeRolloutRestart:
		return "rolloutRestart", r.safeOps.RolloutRestart
	case SafeControlledPodDelete:
		return "deleteControlledPods", r.safeOps.DeleteControlledPods
	default:
		return "jobFromCronJob", r.safeOps.JobFromCronJob
	}
}

// safeOperationOf returns the safe operation a request is, or "" with a note saying why a
// request that looks like one is not ("" when it does not look like one).
func (g *Guard) safeOperationOf(ctx context.Context, f *facts) (SafeOperation, string) {
	gr := f.resource.GroupResource()
	switch {
	case mayBeRolloutRestart(f):
		return isRolloutRestart(f)
	case f.operation == admissionv1.Delete && gr == schema.GroupResource{Resource: "pods"}:
		return isControlledPodDelete(f)
	case (f.operation == admissionv1.Create || f.operation == admissionv1.Delete) && gr == schema.GroupResource{Group: "batch", Resource: "jobs"}:
		return g.isJobFromCronJob(ctx, f)
	}
	return "", ""
}

// mayBeRolloutRestart reports whether a request is an update of a kind kubectl rollout restart
// restarts: the only requests whose pod template the guard reads.
func mayBeRolloutRestart(f *facts) bool {
	return f.operation == admissionv1.Update && f.resource.Group == "apps" && restartable[f.resource.Resource]
}

// isRolloutRestart reports whether an update changes nothing but the pod template's
// restartedAt annotation, apart from what the API server maintains itself.
func isRolloutRestart(f *facts) (SafeOperation, string) {
	// Most updates are not restarts: the fast path reads the two annotations without decoding
	// the objects (scan.go), and only a restart is compared whole.
	if s, ok := f.scan(scanNew); ok {
		at := restartedAt(s)
		if at == "" {
			return "", ""
		}
		if sOld, ok := f.scan(scanOld); ok && at == restartedAt(sOld) {
			return "", ""
		}
	}
	var obj, old map[string]any
	if json.Unmarshal(f.rawObject, &obj) != nil || json.Unmarshal(f.rawOldObject, &old) != nil {
		return "", ""
	}
	at, _, _ := unstructured.NestedString(obj, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
	was, _, _ := unstructured.NestedString(old, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
	if at == "" || at == was {
		return "", ""
	}
	stripForRestart(obj)
	stripForRestart(old)
	if !reflect.DeepEqual(obj, old) {
		return "", "a rollout restart may change only spec.template.metadata.annotations[" + AnnotationRestartedAt + "]; this request changes more"
	}
	return SafeRolloutRestart, ""
}

// stripForRestart removes from a workload what a rollout restart changes and what the API
// server maintains: the restartedAt annotation, the resource version, generation and
// managed fields, and the status (which an update of the main resource cannot change).
func stripForRestart(u map[string]any) {
	unstructured.RemoveNestedField(u, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u, "metadata", "generation")
	unstructured.RemoveNestedField(u, "metadata", "managedFields")
	unstructured.RemoveNestedField(u, "status")
	path := []string{"spec", "template", "metadata", "annotations"}
	unstructured.RemoveNestedField(u, append(path, AnnotationRestartedAt)...)
	if ann, found, _ := unstructured.NestedMap(u, path...); found && len(ann) == 0 {
		unstructured.RemoveNestedField(u, path...)
	}
}

// controllerRef returns the controller owner reference of m, or nil.
func controllerRef(m *objectMeta) *metav1.OwnerReference {
	if m == nil {
		return nil
	}
	for i, o := range m.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// groupKindOf returns the group and kind an owner reference names.
func groupKindOf(ref *metav1.OwnerReference) schema.GroupKind {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupKind{Kind: ref.Kind}
	}
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
}

// isControlledPodDelete reports whether a delete is of a pod that a controller recreates: one
// with a controller owner reference to a ReplicaSet, StatefulSet, DaemonSet or Job, and not
// applied from Git.
func isControlledPodDelete(f *facts) (SafeOperation, string) {
	pod := f.oldObjectMeta()
	if pod == nil {
		return "", ""
	}
	const onlyControlled = "only a pod that a ReplicaSet, StatefulSet, DaemonSet or Job controls may be deleted without break-glass"
	if src := pod.Labels[v1alpha1.LabelSource]; src != "" {
		return "", onlyControlled + "; this pod is applied from Git (source " + src + ")"
	}
	ref := controllerRef(pod)
	if ref == nil {
		return "", onlyControlled + "; this pod has no controller"
	}
	if !podControllers[groupKindOf(ref)] {
		return "", onlyControlled + "; this pod's controller is a " + ref.Kind
	}
	return SafeControlledPodDelete, ""
}

// isJobFromCronJob reports whether a create is of a Job that kubectl created from a CronJob a
// source applied, with the CronJob's pod template, or a delete is of such a Job.
func (g *Guard) isJobFromCronJob(ctx context.Context, f *facts) (SafeOperation, string) {
	job := f.newObject()
	if f.operation == admissionv1.Delete {
		job = f.oldObjectMeta()
	}
	if job == nil || job.Annotations[AnnotationInstantiate] != "manual" {
		return "", ""
	}
	const only = "only a Job created from a CronJob applied from Git (kubectl create job --from=cronjob/NAME) may be created or deleted without break-glass"
	if src := job.Labels[v1alpha1.LabelSource]; src != "" {
		return "", only + "; this Job carries " + v1alpha1.LabelSource + "=" + src
	}
	ref := controllerRef(job)
	if ref == nil || groupKindOf(ref) != cronJobKind {
		return "", only + "; this Job has no CronJob as its controller"
	}
	reader, ok := g.parents.(ObjectReader)
	if !ok {
		return "", only + "; the guard cannot read CronJobs"
	}
	cj, err := reader.Object(ctx, cronJobsResource, f.namespace, ref.Name)
	if err != nil {
		return "", fmt.Sprintf("%s; could not read cronjobs/%s: %v", only, ref.Name, err)
	}
	if string(cj.GetUID()) != string(ref.UID) {
		return "", only + "; cronjobs/" + ref.Name + " is not the CronJob the Job names"
	}
	if cj.GetLabels()[v1alpha1.LabelSource] == "" {
		return "", only + "; cronjobs/" + ref.Name + " is not applied from Git"
	}
	if f.operation == admissionv1.Create {
		var obj map[string]any
		if json.Unmarshal(f.rawObject, &obj) != nil {
			return "", ""
		}
		for _, path := range [][]string{{"spec"}, {"metadata", "annotations"}} {
			want, _, _ := unstructured.NestedFieldNoCopy(cj.Object, append([]string{"spec", "jobTemplate", "spec", "template"}, path...)...)
			got, _, _ := unstructured.NestedFieldNoCopy(obj, append([]string{"spec", "template"}, path...)...)
			// Compared as JSON: the client decodes integers as int64, the request as float64.
			wantJSON, err1 := json.Marshal(want)
			gotJSON, err2 := json.Marshal(got)
			if err1 != nil || err2 != nil || !bytes.Equal(wantJSON, gotJSON) {
				return "", only + "; the Job's pod template " + strings.Join(path, ".") + " differs from the CronJob's"
			}
		}
	}
	return SafeJobFromCronJob, ""
}
