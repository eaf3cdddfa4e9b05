package v1alpha1

import (
	"encoding/json"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group is the API group of the Driftless configuration and the prefix of its labels and
// annotations.
const Group = "driftless.dev"

// Version is the version of this configuration API.
const Version = "v1alpha1"

// Kind is the kind of the configuration object.
const Kind = "DriftlessConfig"

// APIVersion is the apiVersion a configuration file must carry.
const APIVersion = Group + "/" + Version

// Labels and annotations that Driftless reads and writes. They are part of the public contract.
const (
	// LabelSource names the source that applied an object. The reconciler sets it on every
	// object it applies; the guard treats cluster-scoped objects carrying it as protected.
	LabelSource = Group + "/source"
	// AnnotationRevision records the commit an object was last applied from.
	AnnotationRevision = Group + "/revision"
	// AnnotationBreakGlass carries the reason for a break-glass change, such as a ticket id.
	AnnotationBreakGlass = Group + "/break-glass"
	// AnnotationBreakGlassUntil carries the RFC 3339 time at which a break-glass expires.
	AnnotationBreakGlassUntil = Group + "/break-glass-until"
	// AnnotationBreakGlassBy records who started a break-glass. Optional; when a request sets
	// it, the guard requires it to name the requester, so it can be trusted.
	AnnotationBreakGlassBy = Group + "/break-glass-by"
	// AnnotationBreakGlassGroup records the break-glass group the requester acted as.
	// Optional; when a request sets it, the guard requires it to be a break-glass group the
	// requester is a member of.
	AnnotationBreakGlassGroup = Group + "/break-glass-group"
	// AnnotationPrune set to PruneDisabled keeps an object from ever being pruned; set to
	// PruneConfirm on the live object it allows pruning an object that is otherwise only
	// orphaned: an adopted object, a Namespace, a PersistentVolumeClaim or a
	// CustomResourceDefinition.
	AnnotationPrune = Group + "/prune"
	// PruneDisabled is the value of AnnotationPrune that disables pruning.
	PruneDisabled = "disabled"
	// PruneConfirm is the value of AnnotationPrune that confirms the pruning of an adopted
	// object, a Namespace, a PersistentVolumeClaim or a CustomResourceDefinition.
	PruneConfirm = "confirm"
	// AnnotationAdopt set to AdoptAllowed on an existing object lets a source that declares it
	// take it over although it does not carry the source's label.
	AnnotationAdopt = Group + "/adopt"
	// AdoptAllowed is the value of AnnotationAdopt that allows adoption.
	AdoptAllowed = "true"
)

// DriftlessConfig is the whole configuration of a Driftless installation: who the reconciler
// is, which Git sources it applies, how the guard protects the cluster and which policy sets
// the manifests must pass.
type DriftlessConfig struct {
	metav1.TypeMeta `json:",inline"`

	// Reconciler is the identity the reconciler acts as. The guard allows its requests.
	Reconciler Reconciler `json:"reconciler"`

	// Sources are the Git repositories the reconciler applies.
	Sources []Source `json:"sources,omitempty"`

	// Guard configures the admission webhook.
	Guard Guard `json:"guard"`

	// PolicySets are named groups of Rego policies that sources and admission refer to.
	PolicySets []PolicySet `json:"policySets,omitempty"`

	// Ledger configures the durable record of the guard's decisions, drift reverts, break-glass
	// sessions and applied revisions, and its optional outbound notifications.
	Ledger Ledger `json:"ledger"`
}

// Ledger configures the durable record that `driftless audit` reads: every guard decision
// other than a plain allow, every drift revert, every break-glass session end and every
// applied revision, kept in ConfigMaps in the reconciler's namespace.
type Ledger struct {
	// Disabled turns the ledger (and its sink) off.
	Disabled bool `json:"disabled,omitempty"`
	// Retention is how long records are kept. Defaults to 90 days (2160h).
	Retention metav1.Duration `json:"retention,omitempty"`
	// MaxSize bounds the total size of the records kept in the cluster; the oldest go first.
	// Defaults to 64Mi.
	MaxSize resource.Quantity `json:"maxSize"`
	// FlushInterval is how often buffered records are written to the cluster. Defaults to 10s.
	FlushInterval metav1.Duration `json:"flushInterval,omitempty"`
	// BufferSize bounds the records held in memory between writes; when it is full, new
	// records are dropped and counted instead of slowing admission. Defaults to 10000.
	BufferSize int `json:"bufferSize,omitempty"`
	// Sink, when set, also sends every record to an HTTPS webhook, signed with HMAC-SHA256.
	Sink *LedgerSink `json:"sink,omitempty"`
}

// LedgerSink is an HTTPS endpoint that receives ledger records as JSON, signed with a shared
// key, such as a SIEM's or a chat tool's inbound webhook.
type LedgerSink struct {
	// URL is the https:// address records are POSTed to. It must not carry credentials.
	URL string `json:"url"`
	// KeyFile holds the HMAC-SHA256 key (such as a mounted Secret); it is read again for
	// every delivery, so a rotated key takes effect without a restart.
	KeyFile string `json:"keyFile"`
	// CAFile holds PEM certificates to trust for the endpoint besides the system's.
	CAFile string `json:"caFile,omitempty"`
	// Timeout bounds one delivery. Defaults to 10s.
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// QueueSize bounds the records waiting for delivery; when it is full, new ones are
	// dropped and counted. Defaults to 10000.
	QueueSize int `json:"queueSize,omitempty"`
	// MaxBackoff is the longest wait between retries of a failed delivery. Defaults to 5m.
	MaxBackoff metav1.Duration `json:"maxBackoff,omitempty"`
}

// Reconciler identifies the reconciler's service account.
type Reconciler struct {
	// ServiceAccount is the namespace and name of the reconciler's service account.
	// Defaults to driftless-system/driftless.
	ServiceAccount ServiceAccountRef `json:"serviceAccount"`
}

// ServiceAccountRef names a Kubernetes service account.
type ServiceAccountRef struct {
	// Namespace of the service account.
	Namespace string `json:"namespace"`
	// Name of the service account.
	Name string `json:"name"`
}

// Username is the name the API server gives requests authenticated as the service account.
func (s ServiceAccountRef) Username() string {
	return "system:serviceaccount:" + s.Namespace + ":" + s.Name
}

// Source is one Git repository path that the reconciler renders, checks and applies.
type Source struct {
	// Name identifies the source; it is the value of the driftless.dev/source label.
	Name string `json:"name"`
	// URL of the Git repository (https://, ssh://, file:// or a local path).
	URL string `json:"url"`
	// Ref selects what to apply: exactly one of branch, tag or commit. Defaults to branch main.
	Ref GitRef `json:"ref"`
	// Path inside the repository to render. Defaults to the repository root.
	Path string `json:"path,omitempty"`
	// Interval between syncs. Defaults to one minute.
	Interval metav1.Duration `json:"interval,omitempty"`
	// Timeout bounds one fetch, render and apply. Defaults to five minutes.
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// Auth reads credentials from files, such as a mounted Secret. Empty for public repositories.
	Auth *GitAuth `json:"auth,omitempty"`
	// Verify, when set, refuses commits not signed by a key in the keyring.
	Verify *Verification `json:"verify,omitempty"`
	// Prune deletes objects that left Git. Defaults to true.
	Prune *bool `json:"prune,omitempty"`
	// SelfHeal reverts changes made to applied objects outside Git. Defaults to true.
	SelfHeal *bool `json:"selfHeal,omitempty"`
	// TargetNamespace is set on namespaced objects that name no namespace.
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// PolicySet names the policy set every revision must pass before it is applied.
	PolicySet string `json:"policySet,omitempty"`
	// Adopt lets the source take over existing objects it declares that do not carry its
	// label, as if each were annotated driftless.dev/adopt: "true". Adopted objects are
	// never pruned unless annotated driftless.dev/prune: confirm. Defaults to false.
	Adopt bool `json:"adopt,omitempty"`
	// Limits bound what the source reads from Git. Every limit has a default.
	Limits Limits `json:"limits"`
}

// Limits bound what a source reads from Git, so that a commit cannot exhaust the
// reconciler's memory or disk. A revision over a limit is refused and the source keeps its
// last good revision.
//
// +kubebuilder:object:generate=true
type Limits struct {
	// MaxRepositorySize bounds the fetched Git objects on disk and, separately, the total size
	// of the files of one checked-out commit. Defaults to 256Mi.
	// +optional
	MaxRepositorySize resource.Quantity `json:"maxRepositorySize"`
	// MaxFileSize bounds one file of a commit, checked from the Git object header before its
	// content is read. Defaults to 16Mi.
	// +optional
	MaxFileSize resource.Quantity `json:"maxFileSize"`
	// MaxFiles bounds the number of files (and symlinks) in a commit. Defaults to 20000.
	// +optional
	MaxFiles int64 `json:"maxFiles"`
	// MaxRenderedSize bounds the rendered objects, as JSON. Defaults to 64Mi.
	// +optional
	MaxRenderedSize resource.Quantity `json:"maxRenderedSize"`
	// MaxObjects bounds the number of rendered objects. Defaults to 10000.
	// +optional
	MaxObjects int64 `json:"maxObjects"`
}

// GitAuth reads Git credentials from files. Use either HTTPS (username with passwordFile, or
// bearerTokenFile) or SSH (sshPrivateKeyFile with sshKnownHostsFile).
type GitAuth struct {
	// Username for HTTPS basic authentication.
	Username string `json:"username,omitempty"`
	// PasswordFile holds the HTTPS password or access token for Username.
	PasswordFile string `json:"passwordFile,omitempty"`
	// BearerTokenFile holds a token sent as an HTTP bearer token.
	BearerTokenFile string `json:"bearerTokenFile,omitempty"`
	// SSHPrivateKeyFile holds an unencrypted SSH private key.
	SSHPrivateKeyFile string `json:"sshPrivateKeyFile,omitempty"`
	// SSHKnownHostsFile pins the SSH server's host key. Required with SSHPrivateKeyFile.
	SSHKnownHostsFile string `json:"sshKnownHostsFile,omitempty"`
	// CAFile holds PEM certificates to trust for an HTTPS server.
	CAFile string `json:"caFile,omitempty"`
}

// Verification configures OpenPGP verification of the commit to apply.
type Verification struct {
	// KeyringFiles are armored OpenPGP public keyrings; a commit signed by any key in them passes.
	KeyringFiles []string `json:"keyringFiles"`
}

// PruneEnabled reports whether the source prunes objects that left Git.
func (s *Source) PruneEnabled() bool { return s.Prune == nil || *s.Prune }

// SelfHealEnabled reports whether the source reverts drift.
func (s *Source) SelfHealEnabled() bool { return s.SelfHeal == nil || *s.SelfHeal }

// GitRef selects a commit: exactly one of its fields is set.
//
// +kubebuilder:object:generate=true
// +kubebuilder:validation:XValidation:rule="[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1",message="exactly one of branch, tag or commit must be set"
type GitRef struct {
	// Branch to follow.
	Branch string `json:"branch,omitempty"`
	// Tag to apply.
	Tag string `json:"tag,omitempty"`
	// Commit SHA to apply, all 40 hexadecimal digits.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{40}$`
	Commit string `json:"commit,omitempty"`
}

// Mode is how the guard acts on a change it would deny.
type Mode string

// The guard's modes.
const (
	// ModeEnforce denies the change.
	ModeEnforce Mode = "enforce"
	// ModeWarn allows the change and returns the denial as a warning that kubectl prints.
	ModeWarn Mode = "warn"
	// ModeDryRun allows the change silently and records what would have been denied.
	ModeDryRun Mode = "dry-run"
)

// Guard configures the admission webhook that keeps manual changes out of protected scope.
type Guard struct {
	// Mode is enforce, warn or dry-run. Defaults to enforce.
	Mode Mode `json:"mode,omitempty"`

	// ProtectedNamespaces lists the namespaces the guard protects. Empty means every namespace
	// except ExemptNamespaces.
	ProtectedNamespaces []string `json:"protectedNamespaces,omitempty"`

	// ExemptNamespaces are never protected. Defaults to kube-system, kube-public,
	// kube-node-lease and the reconciler's own namespace.
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`

	// ControllerIdentities are other controllers that may change protected objects (for
	// example an autoscaler). The API server does not call the webhook for them.
	ControllerIdentities Identities `json:"controllerIdentities,omitempty"`

	// IgnoredResources are runtime resources that are not desired state, such as events and
	// leases. The API server does not call the webhook for them. Defaults to events
	// (core and events.k8s.io) and coordination.k8s.io leases.
	IgnoredResources []GroupResource `json:"ignoredResources,omitempty"`

	// BreakGlass configures the on-call way around the guard.
	BreakGlass BreakGlass `json:"breakGlass,omitempty"`

	// PolicySet names the policy set that creates and updates in protected scope must pass at
	// admission, including the reconciler's own. Empty checks no policy at admission.
	PolicySet string `json:"policySet,omitempty"`

	// SafeOperations are routine operations that change no desired state, which the guard
	// allows in protected scope without break-glass and records.
	SafeOperations SafeOperations `json:"safeOperations"`
}

// SafeOperations configures the day-2 operations the guard allows without break-glass. Each
// is on by default.
type SafeOperations struct {
	// RolloutRestart allows an update of a Deployment, StatefulSet or DaemonSet whose only
	// change is the pod template's kubectl.kubernetes.io/restartedAt annotation (kubectl
	// rollout restart).
	RolloutRestart SafeOperation `json:"rolloutRestart"`
	// DeleteControlledPods allows deleting a Pod that a ReplicaSet, StatefulSet, DaemonSet or
	// Job controls, so that its controller recreates it.
	DeleteControlledPods SafeOperation `json:"deleteControlledPods"`
	// JobFromCronJob allows creating a Job from a CronJob that a source applied (kubectl
	// create job --from=cronjob/NAME), and deleting such Jobs.
	JobFromCronJob SafeOperation `json:"jobFromCronJob"`
}

// SafeOperation switches one safe operation on or off and restricts who may use it.
type SafeOperation struct {
	// Enabled switches the operation on. Defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// Groups restricts the operation to members of these groups. Empty allows it to everyone
	// the guard decides about.
	Groups []string `json:"groups,omitempty"`
}

// AllowedFor reports whether the operation is on and a member of groups may use it.
func (o SafeOperation) AllowedFor(groups []string) bool {
	if o.Enabled != nil && !*o.Enabled {
		return false
	}
	if len(o.Groups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(o.Groups, g) {
			return true
		}
	}
	return false
}

// Identities lists users and groups.
type Identities struct {
	// Usernames as the API server authenticates them, such as
	// system:serviceaccount:autoscaling:cluster-autoscaler.
	Usernames []string `json:"usernames,omitempty"`
	// Groups whose members are included.
	Groups []string `json:"groups,omitempty"`
}

// GroupResource names a resource in an API group; Group is empty for the core group.
type GroupResource struct {
	// Group is the API group, empty for the core group.
	Group string `json:"group"`
	// Resource is the plural resource name, such as events.
	Resource string `json:"resource"`
}

// BreakGlass configures who may change protected objects in an incident, and for how long.
type BreakGlass struct {
	// Groups whose members may break glass. Empty disables break-glass.
	Groups []string `json:"groups,omitempty"`
	// MaxDuration is the longest a break-glass may last, measured from the change that sets or
	// uses it. Defaults to four hours.
	MaxDuration metav1.Duration `json:"maxDuration,omitempty"`
	// Retention is how long the record of a break-glass session is kept after it ended.
	// Defaults to 90 days.
	Retention metav1.Duration `json:"retention,omitempty"`
}

// PolicySet is a named group of Rego policies: the built-in production library, switched on
// or off rule by rule, plus policy directories.
type PolicySet struct {
	// Name identifies the policy set.
	Name string `json:"name"`
	// Library configures the built-in library. It is on by default.
	Library Library `json:"library,omitempty"`
	// Paths are directories (or .rego files) of policies, such as a mounted ConfigMap.
	// Relative paths are resolved against the configuration file's directory.
	Paths []string `json:"paths,omitempty"`
	// Packages are the Rego packages whose deny, violation and warn rules are evaluated.
	// Defaults to [main], as in conftest.
	Packages []string `json:"packages,omitempty"`
	// Environment is what policies see as data.driftless.context.environment, for example
	// production.
	Environment string `json:"environment,omitempty"`
	// Parameters are what policies see as data.driftless.parameters, for example
	// allowed_registries.
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
}

// Library configures the built-in policy library.
type Library struct {
	// Disabled turns the whole library off.
	Disabled bool `json:"disabled,omitempty"`
	// DisabledRules switches single rules off by name, for example images_pinned.
	DisabledRules []string `json:"disabledRules,omitempty"`
}

// namedSafeOperation is a safe operation with its field name, for defaulting and validation.
type namedSafeOperation struct {
	name string
	op   *SafeOperation
}

// all returns the safe operations with their field names, in a fixed order.
func (s *SafeOperations) all() []namedSafeOperation {
	return []namedSafeOperation{
		{"rolloutRestart", &s.RolloutRestart},
		{"deleteControlledPods", &s.DeleteControlledPods},
		{"jobFromCronJob", &s.JobFromCronJob},
	}
}
