package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GitSourceKind is the kind of a Git source object.
const GitSourceKind = "GitSource"

// GitSourceResource is the plural resource name of GitSource objects.
const GitSourceResource = "gitsources"

// GroupVersion is the API group and version of the Driftless objects.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// GitSourceGVR is the resource of GitSource objects, for dynamic clients.
var GitSourceGVR = GroupVersion.WithResource(GitSourceResource)

// AddToScheme registers GitSource and GitSourceList in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &GitSource{}, &GitSourceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Condition types of a GitSource, as `kubectl wait --for=condition=...` names them.
const (
	// ConditionReady is True when the last sync applied the source's revision, False when it
	// failed or the source is suspended, and Unknown while the first sync runs.
	ConditionReady = "Ready"
	// ConditionReconciling is True while a sync of a new generation or a requested sync runs.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the source cannot make progress without a change to its
	// spec or annotations: an invalid secret, keyring or suspend annotation.
	ConditionStalled = "Stalled"
)

// Reasons of the GitSource conditions besides the reconciler's sync results (Applied,
// FetchFailed, VerificationFailed, RenderFailed, PolicyDenied, PolicyFailed, ApplyFailed,
// PruneRefused, PruneFailed).
const (
	// ReasonSucceeded: the last sync applied the revision.
	ReasonSucceeded = "Succeeded"
	// ReasonProgressing: a sync is running.
	ReasonProgressing = "Progressing"
	// ReasonSuspended: spec.suspend or a valid suspend annotation stops syncing and self-heal.
	ReasonSuspended = "Suspended"
	// ReasonInvalidSpec: the source cannot run as specified (such as a missing Secret).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInvalidSuspend: the suspend annotations are present but do not hold; they are
	// ignored.
	ReasonInvalidSuspend = "InvalidSuspend"
)

// Annotations on GitSource objects.
const (
	// AnnotationReconcileRequestedAt requests a sync now: the controller syncs when its value
	// (any string, by convention an RFC 3339 time) differs from
	// status.lastHandledReconcileAt, then records it there. It changes no desired state.
	AnnotationReconcileRequestedAt = Group + "/reconcile-requested-at"
	// AnnotationSuspend suspends syncing and self-heal of a source, like a break-glass: it
	// carries the reason, such as a ticket id, and needs AnnotationSuspendUntil.
	AnnotationSuspend = Group + "/suspend"
	// AnnotationSuspendUntil carries the RFC 3339 time at which a suspension expires; it must
	// be in the future and within the guard's break-glass maximum duration.
	AnnotationSuspendUntil = Group + "/suspend-until"
	// AnnotationSuspendBy records who suspended the source.
	AnnotationSuspendBy = Group + "/suspend-by"
	// LabelFromConfig marks a GitSource that `driftless run` mirrors from a source in the
	// DriftlessConfig file; its value is "true". GitSources without it are never overwritten
	// or deleted by the mirror.
	LabelFromConfig = Group + "/from-config"
)

// MaxHistory is how many revisions a GitSource's status.history keeps.
const MaxHistory = 10

// GitSource is a Git repository path that the reconciler renders, checks against policy,
// applies, prunes and heals. Only GitSources in the reconciler's own namespace are
// reconciled: a GitSource applies with the reconciler's rights, so creating one must need
// the rights of that namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=gitsources,shortName=gs,singular=gitsource,categories=driftless
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.lastAppliedRevision`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`,priority=1
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:object:generate=true
type GitSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says what to apply and how.
	Spec GitSourceSpec `json:"spec"`
	// Status is what the reconciler last did.
	// +optional
	Status GitSourceStatus `json:"status,omitempty"`
}

// GitSourceList is a list of GitSources.
//
// +kubebuilder:object:root=true
// +kubebuilder:object:generate=true
type GitSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the GitSources.
	Items []GitSource `json:"items"`
}

// GitSourceSpec is what a GitSource applies and how.
//
// +kubebuilder:validation:XValidation:rule="!has(self.timeout) || duration(self.timeout) > duration('0s')",message="timeout must be more than 0"
// +kubebuilder:object:generate=true
type GitSourceSpec struct {
	// URL of the Git repository: https://, http://, ssh://, file:// or an absolute path. It
	// must not carry a password; use secretRef.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') || self.matches('^(https|http|ssh|file)://')",message="url must start with https://, http://, ssh://, file:// or /"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-z]+://[^/@]*:[^/@]*@')",message="url must not carry a password; use secretRef"
	URL string `json:"url"`
	// Ref selects what to apply: exactly one of branch, tag or commit. Defaults to branch main.
	// +kubebuilder:default={branch: "main"}
	// +optional
	Ref GitRef `json:"ref,omitzero"`
	// Path inside the repository to render. Defaults to the repository root.
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.startsWith('..')",message="path must be a relative path inside the repository"
	// +optional
	Path string `json:"path,omitempty"`
	// Interval between syncs, at least 1s. Defaults to one minute.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="interval must be at least 1s"
	// +optional
	Interval metav1.Duration `json:"interval,omitzero"`
	// Timeout bounds one fetch, render and apply. Defaults to five minutes.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +optional
	Timeout metav1.Duration `json:"timeout,omitzero"`
	// SecretRef names a Secret in the GitSource's namespace with the credentials for the
	// repository: username and password (HTTPS basic authentication), bearerToken, or
	// identity and known_hosts (SSH; the key unencrypted, the known_hosts pinning the server);
	// ca.crt adds certificates to trust for an HTTPS server. Empty for public repositories.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
	// Verify, when set, refuses commits not signed by a key in the keyring it names.
	// +optional
	Verify *GitSourceVerification `json:"verify,omitempty"`
	// Prune deletes objects that left Git. Defaults to true.
	// +kubebuilder:default=true
	// +optional
	Prune *bool `json:"prune,omitempty"`
	// PruneOnDelete deletes the source's objects, within the same ownership rules as prune,
	// when the GitSource is deleted. Defaults to false: a deleted GitSource orphans its
	// objects (they stay, labelled, no longer managed) and an Event says so.
	// +optional
	PruneOnDelete bool `json:"pruneOnDelete,omitempty"`
	// SelfHeal reverts changes made to applied objects outside Git. Defaults to true.
	// +kubebuilder:default=true
	// +optional
	SelfHeal *bool `json:"selfHeal,omitempty"`
	// TargetNamespace is set on namespaced objects that name no namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// PolicySet names the policy set of the DriftlessConfig every revision must pass before
	// it is applied.
	// +optional
	PolicySet string `json:"policySet,omitempty"`
	// Adopt lets the source take over existing objects it declares that do not carry its
	// label, as if each were annotated driftless.dev/adopt: "true". Defaults to false.
	// +optional
	Adopt bool `json:"adopt,omitempty"`
	// Limits bound what the source reads from Git. Every limit has a default.
	// +optional
	Limits Limits `json:"limits,omitzero"`
	// Suspend stops syncing and self-heal while true. Set it in Git, where it is reviewed;
	// for a time-boxed suspension use the driftless.dev/suspend annotations instead.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// Receiver, when set, names a Secret in the GitSource's namespace whose key token is the
	// shared secret the Git push receiver checks for this source.
	// +optional
	Receiver *GitSourceReceiver `json:"receiver,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
//
// +kubebuilder:object:generate=true
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// GitSourceVerification names the armored OpenPGP keyrings a commit must be signed by a key
// of: every key of the Secret or ConfigMap is a keyring.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.configMapRef)",message="exactly one of secretRef or configMapRef must be set"
// +kubebuilder:object:generate=true
type GitSourceVerification struct {
	// SecretRef names a Secret in the GitSource's namespace holding the keyrings.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
	// ConfigMapRef names a ConfigMap in the GitSource's namespace holding the keyrings.
	// +optional
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`
}

// GitSourceReceiver configures how the Git push receiver authenticates pushes for a source.
//
// +kubebuilder:object:generate=true
type GitSourceReceiver struct {
	// SecretRef names a Secret in the GitSource's namespace whose key token is the shared
	// secret (the GitHub webhook secret, the GitLab token or the generic HMAC key).
	SecretRef LocalObjectReference `json:"secretRef"`
}

// Keys of the Secret a GitSource's secretRef names, as Flux names them.
const (
	SecretKeyUsername    = "username"
	SecretKeyPassword    = "password"
	SecretKeyBearerToken = "bearerToken"
	SecretKeyIdentity    = "identity"
	SecretKeyKnownHosts  = "known_hosts"
	SecretKeyCA          = "ca.crt"
	// SecretKeyReceiverToken is the key of the receiver's Secret.
	SecretKeyReceiverToken = "token"
)

// GitSourceStatus is what the reconciler last did with a GitSource.
//
// +kubebuilder:object:generate=true
type GitSourceStatus struct {
	// ObservedGeneration is the generation of the spec the last sync ran with.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Ready, Reconciling and Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// URL is the repository URL without credentials.
	// +optional
	URL string `json:"url,omitempty"`
	// Ref is the ref synced, such as "branch main".
	// +optional
	Ref string `json:"ref,omitempty"`
	// LastAppliedRevision is the last commit applied in full.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAppliedTime is when LastAppliedRevision was applied.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`
	// LastAppliedCommit describes LastAppliedRevision.
	// +optional
	LastAppliedCommit *CommitInfo `json:"lastAppliedCommit,omitempty"`
	// LastAttemptedRevision is the commit the last sync fetched; empty when the fetch failed.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// LastSyncTime is when the last sync ended.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// LastSyncResult is the outcome of the last sync, such as Applied or PolicyDenied.
	// +optional
	LastSyncResult string `json:"lastSyncResult,omitempty"`
	// LastHandledReconcileAt is the value of the driftless.dev/reconcile-requested-at
	// annotation the last requested sync answered.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
	// LastChange says what the latest sync or revert that changed the cluster did.
	// +optional
	LastChange string `json:"lastChange,omitempty"`
	// LastChangeTime is when LastChange happened.
	// +optional
	LastChangeTime *metav1.Time `json:"lastChangeTime,omitempty"`
	// ObjectsManaged is the number of objects in the source's inventory.
	// +optional
	ObjectsManaged int `json:"objectsManaged,omitempty"`
	// ObjectsApplied counts the objects the last sync created or changed.
	// +optional
	ObjectsApplied int `json:"objectsApplied,omitempty"`
	// ObjectsPruned counts the objects the last sync deleted.
	// +optional
	ObjectsPruned int `json:"objectsPruned,omitempty"`
	// DriftReverts counts the out-of-band changes reverted since the source was first synced.
	// +optional
	DriftReverts int64 `json:"driftReverts,omitempty"`
	// Violations are the policy violations that stopped the last sync.
	// +listType=atomic
	// +optional
	Violations []PolicyViolation `json:"violations,omitempty"`
	// BreakGlass lists the objects left alone under an active break-glass.
	// +listType=atomic
	// +optional
	BreakGlass []BreakGlassStatus `json:"breakGlass,omitempty"`
	// Suspension describes the active suspension; nil when the source is not suspended.
	// +optional
	Suspension *SuspensionStatus `json:"suspension,omitempty"`
	// History lists the last revisions synced, newest first, at most ten.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	History []RevisionRecord `json:"history,omitempty"`
	// Inventory lists the objects the source applied, in apply order: what it may prune.
	// +optional
	Inventory *Inventory `json:"inventory,omitempty"`
}

// PolicyViolation is one policy violation that stopped a sync.
//
// +kubebuilder:object:generate=true
type PolicyViolation struct {
	// Object names the object, such as "Deployment.apps prod/web".
	Object string `json:"object"`
	// Rule names the policy rule.
	Rule string `json:"rule"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// BreakGlassStatus is an object the reconciler leaves alone under an active break-glass.
//
// +kubebuilder:object:generate=true
type BreakGlassStatus struct {
	// Object names the object.
	Object string `json:"object"`
	// By is who started the break-glass.
	// +optional
	By string `json:"by,omitempty"`
	// Group is the break-glass group they acted as.
	// +optional
	Group string `json:"group,omitempty"`
	// Reason is the break-glass reason.
	Reason string `json:"reason"`
	// Since is when the break-glass began.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// Until is when the break-glass expires and the object is reverted to Git.
	Until metav1.Time `json:"until"`
	// Managers names the field managers that set the break-glass and changed the object.
	// +optional
	Managers string `json:"managers,omitempty"`
	// Patch is the change made under the break-glass, to commit to the overlay.
	// +optional
	Patch string `json:"patch,omitempty"`
	// Conflicts are the fields both the break-glass and Git changed since it began.
	// +listType=atomic
	// +optional
	Conflicts []BreakGlassConflictStatus `json:"conflicts,omitempty"`
}

// BreakGlassConflictStatus is a field both a break-glass and Git changed.
//
// +kubebuilder:object:generate=true
type BreakGlassConflictStatus struct {
	// Field is the field's path.
	Field string `json:"field"`
	// Yours is the value the break-glass set, as JSON, or "(removed)".
	Yours string `json:"yours"`
	// Git is the value Git has now, as JSON, or "(removed)".
	Git string `json:"git"`
}

// CommitInfo describes a commit.
//
// +kubebuilder:object:generate=true
type CommitInfo struct {
	// Author is the commit's author, as "Name <email>".
	// +optional
	Author string `json:"author,omitempty"`
	// Subject is the first line of the commit message.
	// +optional
	Subject string `json:"subject,omitempty"`
	// CommitTime is the commit's time.
	// +optional
	CommitTime *metav1.Time `json:"commitTime,omitempty"`
	// SignedBy is the fingerprint of the key that signed the commit, when it was verified.
	// +optional
	SignedBy string `json:"signedBy,omitempty"`
}

// SuspensionStatus describes an active suspension.
//
// +kubebuilder:object:generate=true
type SuspensionStatus struct {
	// Reason is the suspend annotation's reason, or "spec.suspend".
	Reason string `json:"reason"`
	// By is who suspended the source, from the driftless.dev/suspend-by annotation.
	// +optional
	By string `json:"by,omitempty"`
	// Until is when an annotation suspension expires; nil for spec.suspend.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
}

// RevisionRecord is one sync of one revision in a GitSource's history.
//
// +kubebuilder:object:generate=true
type RevisionRecord struct {
	// Revision is the commit SHA; empty when the fetch failed.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Author is the commit's author, as "Name <email>".
	// +optional
	Author string `json:"author,omitempty"`
	// Subject is the first line of the commit message.
	// +optional
	Subject string `json:"subject,omitempty"`
	// SignedBy is the fingerprint of the key that signed the commit, when it was verified.
	// +optional
	SignedBy string `json:"signedBy,omitempty"`
	// Time is when the sync ended.
	Time metav1.Time `json:"time"`
	// Result is the sync's outcome, such as Applied or PolicyDenied.
	Result string `json:"result"`
	// Message says what the sync did, or why it failed, shortened.
	// +optional
	Message string `json:"message,omitempty"`
	// Created counts the objects the sync created.
	// +optional
	Created int `json:"created,omitempty"`
	// Changed counts the objects the sync changed.
	// +optional
	Changed int `json:"changed,omitempty"`
	// Pruned counts the objects the sync deleted.
	// +optional
	Pruned int `json:"pruned,omitempty"`
	// Count is how many syncs in a row had this revision and result; repeated syncs of the
	// same revision with the same result update one record.
	// +optional
	Count int `json:"count,omitempty"`
}

// Inventory lists the objects a source applied.
//
// +kubebuilder:object:generate=true
type Inventory struct {
	// Entries are the objects, in apply order.
	// +listType=atomic
	// +optional
	Entries []InventoryEntry `json:"entries,omitempty"`
}

// InventoryEntry identifies one object of an inventory.
//
// +kubebuilder:object:generate=true
type InventoryEntry struct {
	// ID is "<namespace>_<name>_<group>_<kind>", as Flux writes it.
	ID string `json:"id"`
	// Version is the object's API version.
	Version string `json:"v"`
	// Origin is "c" when the source created the object, "a" when it adopted it, empty when
	// unknown.
	// +optional
	Origin string `json:"o,omitempty"`
}

// PruneEnabled reports whether the source prunes objects that left Git.
func (s *GitSourceSpec) PruneEnabled() bool { return s.Prune == nil || *s.Prune }

// SelfHealEnabled reports whether the source reverts drift.
func (s *GitSourceSpec) SelfHealEnabled() bool { return s.SelfHeal == nil || *s.SelfHeal }
