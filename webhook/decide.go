package webhook

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	ReasonBreakGlassCreate    Reason = "break-glass-create"
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
	// safeOperation is set when the request is allowed as a safe operation (unless the
	// admission policy denies it after all).
	safeOperation SafeOperation
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
	case f.subResource == "status" && !statusChangesMetadata(f):
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

	if f.subResource == "status" {
		// The API server keeps what a status write changes in the object's metadata.
		denied.problem += "; a status write may change the status only, not labels, annotations, owner references or finalizers"
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
		if by, ok := target.Annotations[v1alpha1.AnnotationBreakGlassBy]; ok && strings.TrimSpace(by) != f.user {
			use, problem = nil, fmt.Sprintf("%s=%q must name the requester, %s", v1alpha1.AnnotationBreakGlassBy, by, f.user)
		} else if g, ok := target.Annotations[v1alpha1.AnnotationBreakGlassGroup]; ok && !r.isBreakGlassGroupOf(strings.TrimSpace(g), f.groups) {
			use, problem = nil, fmt.Sprintf("%s=%q must name a break-glass group %s is in (%s)", v1alpha1.AnnotationBreakGlassGroup, g, f.user, r.breakGlassGroupList())
		}
	}
	if use != nil && f.operation == admissionv1.Create && f.subResource == "" {
		// An object created under break-glass would outlive it: nothing in Git reverts it.
		denied.reason = ReasonBreakGlassCreate
		denied.problem = "break-glass covers changes to objects that exist; a new object must come from Git"
		return denied
	}
	if use != nil && f.operation == admissionv1.Delete && f.resource.GroupResource() == namespacesResource {
		// Deleting a Namespace deletes what is in it, Git's or not (volumes' claims, Secrets
		// controllers made): nothing brings that back when the session ends.
		denied.reason = ReasonBreakGlassInvalid
		denied.problem = "break-glass does not cover deleting a protected Namespace: everything in it would go, also what Git does not hold"
		return denied
	}
	if use != nil {
		if manager := keptWriter(f); manager != "" {
			// The reconciler would leave its fields in place when the session ends.
			denied.reason = ReasonBreakGlassInvalid
			denied.problem = fmt.Sprintf("under break-glass, a change must be written by a field manager whose fields go back to Git when the session ends, not %q (a controller's name, or a subresource); use kubectl's own, or --field-manager with another name", manager)
			return denied
		}
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

// validBreakGlass checks the break-glass annotations of m at time now with the contract the
// reconciler and the command line share ([v1alpha1.ReadBreakGlass]). It returns the use when
// they hold, otherwise a sentence saying what is wrong ("" when there are none).
func (r *rules) validBreakGlass(m *objectMeta, now time.Time) (*breakGlassUse, string) {
	if m == nil {
		return nil, ""
	}
	c := v1alpha1.ReadBreakGlass(m.Annotations, now, r.maxBreakGlass)
	if !c.Holds() {
		return nil, c.Problem
	}
	return &breakGlassUse{reason: c.Reason, until: c.Until}, ""
}

func hasBreakGlass(m *objectMeta) bool {
	return m != nil && v1alpha1.HasBreakGlass(m.Annotations)
}

// statusChangesMetadata reports whether a status write changes more than the status: the API
// server keeps the labels, annotations, owner references and finalizers it changes on many
// resources (Pods, Services, Namespaces among them), which could relabel a pod into another
// Service, hand an object to the garbage collector or set break-glass annotations unseen. An
// object that cannot be read counts as changed.
func statusChangesMetadata(f *facts) bool {
	old, obj := f.oldObjectMeta(), f.newObject()
	if old == nil || obj == nil {
		return true
	}
	if !maps.Equal(old.Labels, obj.Labels) || !maps.Equal(old.Annotations, obj.Annotations) ||
		!slices.EqualFunc(old.OwnerReferences, obj.OwnerReferences, func(a, b metav1.OwnerReference) bool { return reflect.DeepEqual(a, b) }) {
		return true
	}
	before, ok := readExtraMeta(f.rawOldObject)
	after, ok2 := readExtraMeta(f.rawObject)
	return !ok || !ok2 || !slices.Equal(before.Finalizers, after.Finalizers)
}

// keptWriter returns the field manager of an update whose fields the reconciler would not take
// over when a break-glass session ends ([v1alpha1.IsControllerFieldManager], or one that wrote
// metadata through status), "" when there is none. The API server has recorded the write in
// the new object's managedFields before it asks the guard: an entry that is new or changed
// there is this request's. Only break-glass writes are read this way, which are rare.
func keptWriter(f *facts) string {
	if f.operation != admissionv1.Update {
		return ""
	}
	before, ok := readExtraMeta(f.rawOldObject)
	after, ok2 := readExtraMeta(f.rawObject)
	if !ok || !ok2 {
		return "(unreadable managedFields)"
	}
	for _, e := range after.ManagedFields {
		if slices.ContainsFunc(before.ManagedFields, e.same) {
			continue
		}
		switch {
		case e.Subresource == "status":
			// Metadata written through status would stay (a status-only write never gets here).
			return e.Manager + " (through status)"
		case e.Subresource != "":
			// scale, resize and ephemeralcontainers are break-glass's own: Git's replicas and
			// resources are applied back, and an ephemeral container cannot be removed.
			continue
		case v1alpha1.IsControllerFieldManager(e.Manager):
			return e.Manager
		}
	}
	return ""
}

// managedFieldsEntry is what keptWriter reads of a managedFields entry.
type managedFieldsEntry struct {
	Manager     string          `json:"manager"`
	Operation   string          `json:"operation"`
	Subresource string          `json:"subresource"`
	Time        string          `json:"time"`
	FieldsV1    json.RawMessage `json:"fieldsV1"`
}

func (e managedFieldsEntry) same(o managedFieldsEntry) bool {
	return e.Manager == o.Manager && e.Operation == o.Operation && e.Subresource == o.Subresource &&
		e.Time == o.Time && string(e.FieldsV1) == string(o.FieldsV1)
}

// extraMeta is the metadata the fast path does not read, decoded with encoding/json for the
// rare requests that need it: status writes and break-glass writes by people.
type extraMeta struct {
	Finalizers    []string             `json:"finalizers"`
	ManagedFields []managedFieldsEntry `json:"managedFields"`
}

// readExtraMeta decodes the extraMeta of the object in raw; ok is false when it does not
// decode.
func readExtraMeta(raw []byte) (m extraMeta, ok bool) {
	var o struct {
		Metadata extraMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return extraMeta{}, false
	}
	return o.Metadata, true
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
	for _, k := range v1alpha1.BreakGlassAnnotations {
		if obj.Annotations[k] != old.Annotations[k] {
			return true
		}
	}
	return false
}
