package webhook

import (
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// Reason says which row of the decision table decided a request. Reasons are metric label
// values and appear in logs; they are stable.
type Reason string

// The reasons a request is allowed or denied.
const (
	ReasonReconciler          Reason = "reconciler"
	ReasonKubernetes          Reason = "kubernetes-component"
	ReasonController          Reason = "controller-identity"
	ReasonStatus              Reason = "status-subresource"
	ReasonNotGuarded          Reason = "operation-not-guarded"
	ReasonIgnoredResource     Reason = "ignored-resource"
	ReasonUnprotected         Reason = "unprotected-namespace"
	ReasonUnmanagedCluster    Reason = "unmanaged-cluster-object"
	ReasonBreakGlass          Reason = "break-glass"
	ReasonProtected           Reason = "protected-namespace"
	ReasonConnect             Reason = "protected-namespace-connect"
	ReasonManagedCluster      Reason = "managed-cluster-object"
	ReasonBreakGlassNotMember Reason = "break-glass-not-member"
	ReasonBreakGlassInvalid   Reason = "break-glass-invalid"
	ReasonBadRequest          Reason = "bad-request"
	ReasonInternalError       Reason = "internal-error"
)

// Result is what the guard did with a request.
type Result string

// The guard's results. A would-be denial is denied in enforce mode, warned in warn mode and
// recorded in dry-run mode.
const (
	ResultAllowed  Result = "allowed"
	ResultDenied   Result = "denied"
	ResultWarned   Result = "warned"
	ResultRecorded Result = "recorded"
	ResultErrored  Result = "errored"
)

// decision is the outcome of the decision table for one request.
type decision struct {
	// deny is true when the request violates the guard; the mode decides what that means.
	deny   bool
	reason Reason
	// problem says why a request is denied, in one sentence.
	problem string
	// breakGlass is set when the request is allowed under break-glass.
	breakGlass *breakGlassUse
	// violations are the admission policy's denials, when the policy denied.
	violations []policy.Violation
	// policyWarnings are the admission policy's warnings, as admission warnings.
	policyWarnings []string
}

type breakGlassUse struct {
	group  string
	reason string
	until  time.Time
}

func allow(r Reason) decision { return decision{reason: r} }

// decide applies the decision table of the guard to a request at time now.
func (r *rules) decide(f *facts, now time.Time) decision {
	switch {
	case f.operation == admissionv1.Connect && !guardsConnect(f):
		return allow(ReasonNotGuarded)
	case f.user == r.reconciler:
		return allow(ReasonReconciler)
	case isKubernetes(f.user, f.groups):
		return allow(ReasonKubernetes)
	case r.isController(f.user, f.groups):
		return allow(ReasonController)
	case f.subResource == "status":
		return allow(ReasonStatus)
	case r.ignored.Has(f.resource.GroupResource()):
		return allow(ReasonIgnoredResource)
	}

	denied := decision{deny: true, reason: ReasonProtected}
	switch {
	case f.namespace != "":
		if !r.isProtectedNamespace(f.namespace) {
			return allow(ReasonUnprotected)
		}
		denied.problem = `namespace "` + f.namespace + `" is protected: its objects change only through Git`
		if f.operation == admissionv1.Connect {
			// exec, attach, port-forward and proxy: break-glass only, on the pod or Service.
			denied.reason = ReasonConnect
			denied.problem = `namespace "` + f.namespace + `" is protected: exec, attach, port-forward and proxy reach into its running pods outside Git`
		}
	case f.sourceName() != "":
		denied.reason = ReasonManagedCluster
		denied.problem = fmt.Sprintf("the object carries %s=%s: it changes only through Git", v1alpha1.LabelSource, f.sourceName())
	default:
		return allow(ReasonUnmanagedCluster)
	}

	group := r.breakGlassGroupOf(f.groups)
	if group == "" {
		if setsBreakGlass(f) {
			denied.reason = ReasonBreakGlassNotMember
			denied.problem = fmt.Sprintf("%s sets break-glass annotations but is not in a break-glass group (%s)", f.user, r.breakGlassGroupList())
		}
		return denied
	}
	target := f.target()
	use, problem := r.validBreakGlass(target, now)
	if use == nil && f.operation == admissionv1.Update && !hasBreakGlass(f.newObject()) {
		// Removing the annotations ends a break-glass early; allowed while it is still valid.
		if old, _ := r.validBreakGlass(f.oldObjectMeta(), now); old != nil {
			use = old
		}
	}
	if use != nil && setsBreakGlass(f) {
		if by, ok := target.Annotations[v1alpha1.AnnotationBreakGlassBy]; ok && by != f.user {
			use, problem = nil, fmt.Sprintf("%s=%q must name the requester, %s", v1alpha1.AnnotationBreakGlassBy, by, f.user)
		}
	}
	if use != nil {
		use.group = group
		return decision{reason: ReasonBreakGlass, breakGlass: use}
	}
	if problem != "" {
		denied.reason = ReasonBreakGlassInvalid
		denied.problem = problem
	}
	return denied
}

func (r *rules) breakGlassGroupList() string {
	if len(r.breakGlassGroups) == 0 {
		return "break-glass is not enabled"
	}
	return "groups: " + strings.Join(r.breakGlassGroups, ", ")
}

// validBreakGlass checks the break-glass annotations of m at time now. It returns the use when
// they are valid, otherwise a sentence saying what is wrong ("" when there are none).
func (r *rules) validBreakGlass(m *objectMeta, now time.Time) (*breakGlassUse, string) {
	if !hasBreakGlass(m) {
		return nil, ""
	}
	reason := strings.TrimSpace(m.Annotations[v1alpha1.AnnotationBreakGlass])
	rawUntil, hasUntil := m.Annotations[v1alpha1.AnnotationBreakGlassUntil]
	switch {
	case reason == "":
		return nil, fmt.Sprintf("break-glass needs a reason in %s, such as a ticket id", v1alpha1.AnnotationBreakGlass)
	case !hasUntil:
		return nil, fmt.Sprintf("break-glass needs an expiry in %s (RFC 3339, at most %s ahead)", v1alpha1.AnnotationBreakGlassUntil, shortDuration(r.maxBreakGlass))
	}
	until, err := time.Parse(time.RFC3339, rawUntil)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%s=%q is not an RFC 3339 time such as %s", v1alpha1.AnnotationBreakGlassUntil, rawUntil, now.Add(time.Hour).UTC().Format(time.RFC3339))
	case !until.After(now):
		return nil, fmt.Sprintf("the break-glass expired at %s (now %s); a member of a break-glass group may start a new one", until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case until.Sub(now) > r.maxBreakGlass:
		return nil, fmt.Sprintf("%s=%s is more than the maximum of %s ahead (latest allowed now: %s)", v1alpha1.AnnotationBreakGlassUntil, rawUntil, shortDuration(r.maxBreakGlass), now.Add(r.maxBreakGlass).UTC().Format(time.RFC3339))
	}
	return &breakGlassUse{reason: reason, until: until}, ""
}

func hasBreakGlass(m *objectMeta) bool {
	if m == nil {
		return false
	}
	_, a := m.Annotations[v1alpha1.AnnotationBreakGlass]
	_, b := m.Annotations[v1alpha1.AnnotationBreakGlassUntil]
	return a || b
}

// setsBreakGlass reports whether the request adds or changes break-glass annotations.
func setsBreakGlass(f *facts) bool {
	obj := f.newObject()
	if !hasBreakGlass(obj) {
		return false
	}
	old := f.oldObjectMeta()
	if old == nil {
		return true
	}
	for _, k := range []string{v1alpha1.AnnotationBreakGlass, v1alpha1.AnnotationBreakGlassUntil, v1alpha1.AnnotationBreakGlassBy} {
		if obj.Annotations[k] != old.Annotations[k] {
			return true
		}
	}
	return false
}
