package webhook

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// What the self-protection policy lets people do to the GitSources in the Driftless
// namespace, which are desired state like everything else there:
//
//   - request a sync: an update whose only change is the driftless.dev/reconcile-requested-at
//     annotation is allowed to whoever RBAC lets patch GitSources (the shipped
//     driftless-sync-requester Role), since it changes nothing Git declares;
//   - suspend: setting the suspension annotations is a break-glass exception, so the first
//     validation already keeps it to the break-glass groups; the second requires the three
//     annotations together, a reason, an RFC 3339 expiry and driftless.dev/suspend-by naming
//     the requester, so that the record can be trusted. The reconciler bounds the expiry by
//     guard.breakGlass.maxDuration (admission policies have no clock). Removing all three
//     (resume) is always well-formed.

// gitSourceRequest matches a create or update of a GitSource itself (not its status).
const gitSourceRequest = "request.resource.group == '" + v1alpha1.Group + "' && request.resource.resource == 'gitsources'" +
	" && (!has(request.subResource) || request.subResource == '')"

// sourceAnnotationVariables give the annotations of the object and of the old object as maps,
// empty when absent or when there is no such object.
func sourceAnnotationVariables() []admissionregistrationv1.Variable {
	annotations := func(obj string) string {
		return fmt.Sprintf("%s != null && has(%s.metadata.annotations) ? %s.metadata.annotations : {}", obj, obj, obj)
	}
	return []admissionregistrationv1.Variable{
		{Name: "annotations", Expression: annotations("object")},
		{Name: "oldAnnotations", Expression: annotations("oldObject")},
	}
}

// syncRequestVariable allows an update of a GitSource that changes nothing but its
// reconcile-requested-at annotation.
func syncRequestVariable() admissionregistrationv1.Variable {
	key := celString(v1alpha1.AnnotationReconcileRequestedAt)
	same := func(field, empty string) string {
		return fmt.Sprintf("(has(object.metadata.%[1]s) ? object.metadata.%[1]s : %[2]s) == (has(oldObject.metadata.%[1]s) ? oldObject.metadata.%[1]s : %[2]s)", field, empty)
	}
	expr := strings.Join([]string{
		"request.operation == 'UPDATE'",
		gitSourceRequest,
		"object.spec == oldObject.spec",
		same("labels", "{}"),
		same("finalizers", "[]"),
		same("ownerReferences", "[]"),
		fmt.Sprintf("variables.annotations.all(k, k == %s || (k in variables.oldAnnotations && variables.oldAnnotations[k] == variables.annotations[k]))", key),
		fmt.Sprintf("variables.oldAnnotations.all(k, k == %s || k in variables.annotations)", key),
	}, " && ")
	return admissionregistrationv1.Variable{Name: "isSyncRequest", Expression: expr}
}

// suspensionValidation requires a suspension set on a GitSource to be whole and to name its
// requester.
func suspensionValidation(c *v1alpha1.DriftlessConfig) admissionregistrationv1.Validation {
	keys := []string{v1alpha1.AnnotationSuspend, v1alpha1.AnnotationSuspendUntil, v1alpha1.AnnotationSuspendBy}
	var unchanged, absent []string
	for _, k := range keys {
		q := celString(k)
		unchanged = append(unchanged, fmt.Sprintf("(%[1]s in variables.annotations) == (%[1]s in variables.oldAnnotations) && (!(%[1]s in variables.annotations) || variables.annotations[%[1]s] == variables.oldAnnotations[%[1]s])", q))
		absent = append(absent, fmt.Sprintf("!(%s in variables.annotations)", q))
	}
	reason, until, by := celString(keys[0]), celString(keys[1]), celString(keys[2])
	whole := fmt.Sprintf("%[1]s in variables.annotations && variables.annotations[%[1]s].trim() != '' && %[2]s in variables.annotations && timestamp(variables.annotations[%[2]s]) > timestamp('1970-01-01T00:00:00Z') && %[3]s in variables.annotations && variables.annotations[%[3]s] == request.userInfo.username",
		reason, until, by)
	expr := fmt.Sprintf("!(%s && (request.operation == 'CREATE' || request.operation == 'UPDATE')) || variables.isReconciler || (%s) || (%s) || (%s)",
		gitSourceRequest, strings.Join(unchanged, " && "), strings.Join(absent, " && "), whole)
	msg := fmt.Sprintf("driftless: a suspension of a GitSource needs %s (the reason), %s (an RFC 3339 time, at most %s away) and %s naming you; use driftless suspend <source> --reason ... --for ..., which sets them as you.",
		keys[0], keys[1], c.Guard.BreakGlass.MaxDuration.Duration, keys[2])
	return admissionregistrationv1.Validation{Expression: expr, Message: msg, Reason: ptr.To(metav1.StatusReasonForbidden)}
}
