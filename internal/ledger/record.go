package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"
)

// Type says what a record is about.
type Type string

// The types of records.
const (
	// TypeAdmission is a guard decision other than a plain allow.
	TypeAdmission Type = "admission"
	// TypeRevert is a drift revert by the reconciler.
	TypeRevert Type = "revert"
	// TypeBreakGlassEnd is the end of a break-glass session.
	TypeBreakGlassEnd Type = "break-glass-end"
	// TypeRevision is a revision the reconciler applied for the first time.
	TypeRevision Type = "revision"
)

// Decisions of records that are not admissions.
const (
	// DecisionReverted: a change made out of band was reverted to Git.
	DecisionReverted = "reverted"
	// DecisionRecreated: an object deleted out of band was created again from Git.
	DecisionRecreated = "recreated"
	// DecisionApplied: a revision was applied.
	DecisionApplied = "applied"
)

// Record is one entry of the ledger. It says who did what to which object, when, what was
// decided and why; it never holds an object's values, and of a Secret only the name.
type Record struct {
	// Time is when it happened, by the clock of the part that recorded it.
	Time time.Time `json:"time"`
	// Type says what the record is about.
	Type Type `json:"type"`
	// Decision is the guard's result (denied, warned, recorded, allowed), or for other types
	// reverted, recreated, applied or how a break-glass session ended.
	Decision string `json:"decision"`
	// Reason is the row of the decision table (a guard reason such as protected-namespace),
	// or the reconciler's Event reason (DriftReverted, BreakGlassExpired).
	Reason string `json:"reason,omitempty"`
	// Message says why a request was denied, in one sentence.
	Message string `json:"message,omitempty"`
	// User is who made the request, or who broke glass.
	User string `json:"user,omitempty"`
	// Groups are the user's groups.
	Groups []string `json:"groups,omitempty"`
	// By names who made a change the reconciler reverted: the break-glass user or the field
	// managers.
	By string `json:"by,omitempty"`
	// Operation is CREATE, UPDATE, DELETE or CONNECT.
	Operation string `json:"operation,omitempty"`
	// Object is the object concerned.
	Object Object `json:"object,omitzero"`
	// Fields are the top-level fields an update changed (metadata by its keys, such as
	// metadata.labels); never their values, and none for a Secret.
	Fields []string `json:"fields,omitempty"`
	// Source is the source that owns the object, from its driftless.dev/source label.
	Source string `json:"source,omitempty"`
	// Violations are the admission policy's denials, one line each.
	Violations []string `json:"violations,omitempty"`
	// BreakGlass describes the break-glass of a use or a session end.
	BreakGlass *BreakGlass `json:"breakGlass,omitempty"`
	// Revision is the applied revision, or the commit an object was reverted to.
	Revision *Revision `json:"revision,omitempty"`
	// Replica is the Driftless replica that wrote the record.
	Replica string `json:"replica,omitempty"`
}

// Object names an object.
type Object struct {
	// APIVersion and Kind of the object (of the request, for an admission).
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	// Resource is the resource, as resource.group, for an admission.
	Resource string `json:"resource,omitempty"`
	// Subresource is the subresource of an admission, such as scale.
	Subresource string `json:"subresource,omitempty"`
	// Namespace is empty for cluster-scoped objects.
	Namespace string `json:"namespace,omitempty"`
	// Name of the object.
	Name string `json:"name,omitempty"`
}

// String names the object for reports: "configmaps production/app".
func (o Object) String() string {
	what := o.Resource
	if what == "" {
		what = o.Kind
	}
	if o.Subresource != "" {
		what += "/" + o.Subresource
	}
	if o.Namespace == "" {
		return what + " " + o.Name
	}
	return what + " " + o.Namespace + "/" + o.Name
}

// BreakGlass describes a break-glass use or session.
type BreakGlass struct {
	// Reason is the break-glass reason, such as a ticket id (left out for a Secret).
	Reason string `json:"reason,omitempty"`
	// Group is the break-glass group the user acted as.
	Group string `json:"group,omitempty"`
	// Start is when a session began.
	Start time.Time `json:"start,omitzero"`
	// Until is the expiry.
	Until time.Time `json:"until,omitzero"`
	// End is when a session ended.
	End time.Time `json:"end,omitzero"`
	// Problem says why an invalid break-glass stopped holding.
	Problem string `json:"problem,omitempty"`
}

// Revision describes a commit.
type Revision struct {
	// Commit is the full SHA.
	Commit string `json:"commit"`
	// Author is "Name <email>".
	Author string `json:"author,omitempty"`
	// Committer is "Name <email>", when the reconciler reports it.
	Committer string `json:"committer,omitempty"`
	// SignedBy is the key that signed the commit, when it was verified and the reconciler
	// reports it.
	SignedBy string `json:"signedBy,omitempty"`
	// Subject is the first line of the commit message.
	Subject string `json:"subject,omitempty"`
	// CommitTime is the commit's time.
	CommitTime time.Time `json:"commitTime,omitzero"`
}

// Session is a break-glass session as the reconciler ends it.
type Session struct {
	Source, Object, Kind, Namespace, Name string
	By, Group, Reason                     string
	Start, Until, End                     time.Time
	// Ending says how it ended; Problem why an invalid one stopped holding.
	Ending, Problem string
	// Revision is the commit the object was reverted to.
	Revision string
}

// Bounds of one record, so that no caller can make one large.
const (
	maxString     = 512
	maxMessage    = 1024
	maxListItems  = 32
	maxRecordSize = 16 << 10
)

// isSecret reports whether the record is about a Secret.
func (r *Record) isSecret() bool {
	o := r.Object
	return o.Resource == "secrets" || (o.Kind == "Secret" && (o.APIVersion == "v1" || o.APIVersion == ""))
}

// sanitize bounds the record and removes everything of a Secret but its name.
func (r *Record) sanitize() {
	if r.isSecret() {
		r.Fields, r.Message, r.Violations = nil, "", nil
		if r.BreakGlass != nil {
			r.BreakGlass.Reason, r.BreakGlass.Problem = "", ""
		}
	}
	r.Message = truncate(r.Message, maxMessage)
	for _, s := range []*string{&r.User, &r.By, &r.Reason, &r.Source, &r.Object.Name, &r.Object.Namespace, &r.Replica} {
		*s = truncate(*s, maxString)
	}
	r.Groups = truncateList(r.Groups)
	r.Fields = truncateList(r.Fields)
	r.Violations = truncateList(r.Violations)
	if bg := r.BreakGlass; bg != nil {
		bg.Reason, bg.Problem = truncate(bg.Reason, maxString), truncate(bg.Problem, maxString)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func truncateList(l []string) []string {
	if len(l) > maxListItems {
		l = append(l[:maxListItems:maxListItems], "...")
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = truncate(s, maxString)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// metadataIgnored reports whether k is a metadata key the API server changes on every write.
func metadataIgnored(k string) bool {
	switch k {
	case "resourceVersion", "managedFields", "generation", "creationTimestamp", "uid", "selfLink":
		return true
	}
	return false
}

// changedFields returns the top-level fields that differ between two objects, metadata by
// its keys ("metadata.labels"), sorted. It never looks at more than the keys.
func changedFields(before, after map[string]any) []string {
	var out []string
	for _, k := range unionKeys(before, after) {
		if k == "metadata" {
			bm, _ := before[k].(map[string]any)
			am, _ := after[k].(map[string]any)
			for _, mk := range unionKeys(bm, am) {
				if !metadataIgnored(mk) && !reflect.DeepEqual(bm[mk], am[mk]) {
					out = append(out, "metadata."+mk)
				}
			}
			continue
		}
		if !reflect.DeepEqual(before[k], after[k]) {
			out = append(out, k)
		}
	}
	return out
}

// changedFieldsJSON is changedFields for two objects as the API server encodes them, which
// is deterministic: it compares the encoded values instead of decoding them, so that a large
// object costs one scan. Nil when either is not an object.
func changedFieldsJSON(before, after []byte) []string {
	var b, a map[string]json.RawMessage
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return nil
	}
	var out []string
	for _, k := range unionKeys(b, a) {
		if k != "metadata" {
			if !bytes.Equal(b[k], a[k]) {
				out = append(out, k)
			}
			continue
		}
		var bm, am map[string]json.RawMessage
		_ = json.Unmarshal(b[k], &bm)
		_ = json.Unmarshal(a[k], &am)
		for _, mk := range unionKeys(bm, am) {
			if !metadataIgnored(mk) && !bytes.Equal(bm[mk], am[mk]) {
				out = append(out, "metadata."+mk)
			}
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
