package reconciler

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// SyncResult is the outcome of one sync of a source.
type SyncResult string

// The outcomes of a sync.
const (
	// ResultApplied: the revision was applied and what left Git was pruned.
	ResultApplied SyncResult = "Applied"
	// ResultFetchFailed: the repository could not be fetched; the last good revision stays.
	ResultFetchFailed SyncResult = "FetchFailed"
	// ResultVerificationFailed: the commit is unsigned or not signed by a trusted key.
	ResultVerificationFailed SyncResult = "VerificationFailed"
	// ResultRenderFailed: the revision could not be rendered (broken YAML, kustomize error).
	ResultRenderFailed SyncResult = "RenderFailed"
	// ResultPolicyDenied: objects of the revision violate the source's policy set.
	ResultPolicyDenied SyncResult = "PolicyDenied"
	// ResultPolicyFailed: the policy gate could not decide.
	ResultPolicyFailed SyncResult = "PolicyFailed"
	// ResultApplyFailed: the API server refused an object (in the dry-run, nothing was applied).
	ResultApplyFailed SyncResult = "ApplyFailed"
	// ResultPruneRefused: the revision renders no objects; nothing was applied or pruned.
	ResultPruneRefused SyncResult = "PruneRefused"
	// ResultPruneFailed: the revision was applied but an object that left Git could not be
	// deleted.
	ResultPruneFailed SyncResult = "PruneFailed"
)

// Status is the state of one source, as kept in the status of its GitSource (and, before
// sources were GitSources, in its status ConfigMap).
type Status struct {
	// Source is the source's name.
	Source string `json:"source"`
	// URL is the repository URL without credentials.
	URL string `json:"url,omitempty"`
	// Ref is the configured ref, such as "branch main".
	Ref string `json:"ref,omitempty"`
	// Path is the rendered path inside the repository.
	Path string `json:"path,omitempty"`

	// Revision is the last commit applied in full.
	Revision string `json:"revision,omitempty"`
	// Author is Revision's author, as "Name <email>".
	Author string `json:"author,omitempty"`
	// CommitTime is Revision's commit time.
	CommitTime time.Time `json:"commitTime,omitzero"`
	// Subject is the first line of Revision's message.
	Subject string `json:"subject,omitempty"`
	// LastApplied is when Revision was applied.
	LastApplied time.Time `json:"lastApplied,omitzero"`

	// LastAttempt is when the last sync ended.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	// AttemptedRevision is the commit the last sync fetched; empty when the fetch failed.
	AttemptedRevision string `json:"attemptedRevision,omitempty"`
	// Result is the outcome of the last sync.
	Result SyncResult `json:"result,omitempty"`
	// Message says what the last sync did, or why it failed.
	Message string `json:"message,omitempty"`
	// Violations are the policy violations that stopped the last sync.
	Violations []Violation `json:"violations,omitempty"`
	// LastChange says what the latest sync or revert that changed the cluster did, which
	// later syncs that change nothing do not overwrite.
	LastChange string `json:"lastChange,omitempty"`
	// LastChangeTime is when LastChange happened.
	LastChangeTime time.Time `json:"lastChangeTime,omitzero"`

	// ObjectsManaged is the number of objects in the source's inventory.
	ObjectsManaged int `json:"objectsManaged"`
	// ObjectsApplied counts the objects the last sync created or changed.
	ObjectsApplied int `json:"objectsApplied"`
	// ObjectsPruned counts the objects the last sync deleted.
	ObjectsPruned int `json:"objectsPruned"`
	// DriftReverts counts the out-of-band changes reverted since the source was first synced.
	DriftReverts int64 `json:"driftReverts"`
	// BreakGlass lists the objects left alone under an active break-glass.
	BreakGlass []BreakGlassObject `json:"breakGlass,omitempty"`

	// SignedBy is the fingerprint of the key that signed Revision, when it was verified.
	SignedBy string `json:"signedBy,omitempty"`
	// ObservedGeneration is the generation of the GitSource the last sync ran with.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastHandledReconcileAt is the driftless.dev/reconcile-requested-at value the last
	// requested sync answered.
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
	// Conditions are the GitSource's Ready, Reconciling and Stalled conditions.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// History lists the last syncs, newest first.
	History []v1alpha1.RevisionRecord `json:"history,omitempty"`
	// Suspension describes the active suspension; nil when the source is not suspended.
	Suspension *v1alpha1.SuspensionStatus `json:"suspension,omitempty"`
}

// Labels of the ConfigMaps the reconciler keeps its state in.
const (
	labelManagedBy  = "app.kubernetes.io/managed-by"
	labelComponent  = "app.kubernetes.io/component"
	componentStatus = "status"
	componentInv    = "inventory"
)

// StatusConfigMapName is the name of the status ConfigMap of a source, as versions before
// sources were GitSources wrote it; the first sync of the GitSource moves it into its status
// and deletes it.
func StatusConfigMapName(sourceName string) string { return "driftless-status-" + sourceName }

// InventoryConfigMapName is the name of the inventory ConfigMap of a source, as versions
// before sources were GitSources wrote it; the first sync of the GitSource moves it into its
// status and deletes it.
func InventoryConfigMapName(sourceName string) string { return "driftless-inventory-" + sourceName }

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// Keys of the status ConfigMap. Scalars are plain strings, lists are YAML, so that
// `kubectl get configmap -o yaml` reads well.
const (
	keySource, keyURL, keyRef, keyPath                = "source", "url", "ref", "path"
	keyRevision, keyAuthor, keyCommitTime, keySubject = "revision", "author", "commitTime", "subject"
	keyLastApplied, keyLastAttempt, keyAttempted      = "lastApplied", "lastAttempt", "attemptedRevision"
	keyResult, keyMessage, keyViolations              = "result", "message", "violations"
	keyManaged, keyApplied, keyPruned, keyReverts     = "objectsManaged", "objectsApplied", "objectsPruned", "driftReverts"
	keyBreakGlass, keyLastChange, keyLastChangeTime   = "breakGlass", "lastChange", "lastChangeTime"
)

// encodeStatus returns the ConfigMap data of s.
func encodeStatus(s Status) (map[string]string, error) {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	d := map[string]string{
		keySource: s.Source, keyURL: s.URL, keyRef: s.Ref, keyPath: s.Path,
		keyRevision: s.Revision, keyAuthor: s.Author, keyCommitTime: tm(s.CommitTime), keySubject: s.Subject,
		keyLastApplied: tm(s.LastApplied), keyLastAttempt: tm(s.LastAttempt), keyAttempted: s.AttemptedRevision,
		keyResult: string(s.Result), keyMessage: s.Message,
		keyLastChange: s.LastChange, keyLastChangeTime: tm(s.LastChangeTime),
		keyManaged: strconv.Itoa(s.ObjectsManaged), keyApplied: strconv.Itoa(s.ObjectsApplied),
		keyPruned: strconv.Itoa(s.ObjectsPruned), keyReverts: strconv.FormatInt(s.DriftReverts, 10),
	}
	if len(s.Violations) > 0 {
		b, err := yaml.Marshal(s.Violations)
		if err != nil {
			return nil, fmt.Errorf("encode violations: %w", err)
		}
		d[keyViolations] = string(b)
	}
	if len(s.BreakGlass) > 0 {
		b, err := yaml.Marshal(s.BreakGlass)
		if err != nil {
			return nil, fmt.Errorf("encode break-glass objects: %w", err)
		}
		d[keyBreakGlass] = string(b)
	}
	for k, v := range d {
		if v == "" {
			delete(d, k)
		}
	}
	return d, nil
}

// decodeStatus reads the ConfigMap data of a status. Errors name the key.
func decodeStatus(d map[string]string) (Status, error) {
	s := Status{
		Source: d[keySource], URL: d[keyURL], Ref: d[keyRef], Path: d[keyPath],
		Revision: d[keyRevision], Author: d[keyAuthor], Subject: d[keySubject],
		AttemptedRevision: d[keyAttempted], Result: SyncResult(d[keyResult]), Message: d[keyMessage],
		LastChange: d[keyLastChange],
	}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{keyCommitTime, &s.CommitTime}, {keyLastApplied, &s.LastApplied}, {keyLastAttempt, &s.LastAttempt}, {keyLastChangeTime, &s.LastChangeTime}} {
		if v := d[f.key]; v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return s, fmt.Errorf("status key %s: %w", f.key, err)
			}
			*f.dst = t
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{keyManaged, &s.ObjectsManaged}, {keyApplied, &s.ObjectsApplied}, {keyPruned, &s.ObjectsPruned}} {
		if v := d[f.key]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return s, fmt.Errorf("status key %s: %w", f.key, err)
			}
			*f.dst = n
		}
	}
	if v := d[keyReverts]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("status key %s: %w", keyReverts, err)
		}
		s.DriftReverts = n
	}
	if v := d[keyViolations]; v != "" {
		if err := yaml.UnmarshalStrict([]byte(v), &s.Violations); err != nil {
			return s, fmt.Errorf("status key %s: %w", keyViolations, err)
		}
	}
	if v := d[keyBreakGlass]; v != "" {
		if err := yaml.UnmarshalStrict([]byte(v), &s.BreakGlass); err != nil {
			return s, fmt.Errorf("status key %s: %w", keyBreakGlass, err)
		}
	}
	return s, nil
}

// ReadStatus reads the status of every source from the GitSources in namespace (the
// namespace Driftless runs in), sorted by source name. It is what `driftless status` shows.
func ReadStatus(ctx context.Context, client dynamic.Interface, namespace string) ([]Status, error) {
	list, err := client.Resource(v1alpha1.GitSourceGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list gitsources in %s: %w", namespace, err)
	}
	out := make([]Status, 0, len(list.Items))
	for i := range list.Items {
		gs, err := decodeGitSource(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, statusFromGitSource(gs))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out, nil
}

// ReadSourceStatus reads the status of one source from its GitSource; found is false when
// there is no such GitSource.
func ReadSourceStatus(ctx context.Context, client dynamic.Interface, namespace, sourceName string) (s Status, found bool, err error) {
	gs, found, err := getGitSource(ctx, client, namespace, sourceName)
	if err != nil || !found {
		return Status{}, found, err
	}
	return statusFromGitSource(gs), true, nil
}

// readLegacyStatus reads the status ConfigMap a version before sources were GitSources
// wrote; found is false when there is none.
func readLegacyStatus(ctx context.Context, client dynamic.Interface, namespace, sourceName string) (s Status, found bool, err error) {
	d, found, err := readConfigMap(ctx, client, namespace, StatusConfigMapName(sourceName))
	if err != nil || !found {
		return Status{}, found, err
	}
	s, err = decodeStatus(d)
	if err != nil {
		return Status{}, true, fmt.Errorf("configmap %s/%s: %w", namespace, StatusConfigMapName(sourceName), err)
	}
	return s, true, nil
}
