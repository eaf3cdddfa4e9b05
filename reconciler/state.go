package reconciler

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// state is what the parts of one source's reconciler share, guarded by mu. A sync holds mu
// only to plan, apply and prune, and a heal only to check and revert one object, so that a
// heal never waits behind a fetch or a render. Every method of a part that reads or writes
// these fields says that its caller holds mu.
type state struct {
	mu sync.Mutex
	// loaded is true once the inventory, the status and the break-glass record were read
	// from the cluster.
	loaded bool
	// inv is what the source applied: what it may prune. The sync writes it.
	inv *inventory
	// desired holds the objects of the last applied revision, which the healer keeps.
	desired map[objKey]*object
	// status is the source's status; the status writer writes it to the cluster.
	status Status
	// failures counts consecutive failed syncs, for the backoff.
	failures int
	// bg holds the objects left alone under an active break-glass; the healer keeps it.
	bg map[objKey]BreakGlassObject
	// sessions are the open break-glass sessions, history the ended ones still kept; both
	// are written to the break-glass record with the status when sessionsDirty.
	sessions      map[objKey]*storedSession
	history       []storedSession
	sessionsDirty bool
	// legacy is true while the source's ConfigMaps of a version before sources were
	// GitSources wait to be deleted, after the next status write.
	legacy bool
	// watch is the healer's watch of the applied objects while it runs; nil otherwise. Live
	// objects are read from its cache.
	watch *watcher
}

// load reads the inventory, the status and the break-glass record of the source from the
// cluster, once; the caller holds st.mu. Until the inventory is read, nothing is applied: a
// reconciler that forgot what it applied could never prune it.
//
// The inventory and the status live in the status of the source's GitSource. When it has no
// inventory yet but a version before sources were GitSources left the source's inventory and
// status ConfigMaps, load takes both from them and writes the inventory into the GitSource at
// once; the status writer deletes the ConfigMaps after it wrote the status. Nothing is pruned
// or re-created by the move.
func (st *state) load(ctx context.Context, e *env) error {
	if st.loaded {
		return nil
	}
	gs, found, err := getGitSource(ctx, e.client, e.namespace, e.src.Name)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if !found {
		return fmt.Errorf("read inventory: gitsource %s/%s not found: the status and inventory of source %s live in it", e.namespace, e.src.Name, e.src.Name)
	}
	legacy := false
	if gs.Status.Inventory != nil {
		inv, err := inventoryFromStatus(gs.Status.Inventory)
		if err != nil {
			return fmt.Errorf("gitsource %s/%s: %w", e.namespace, e.src.Name, err)
		}
		st.inv = inv
		st.restoreStatus(statusFromGitSource(gs))
	} else {
		inv, isLegacy, found, err := readInventoryOf(ctx, e.client, e.namespace, e.src.Name)
		if err != nil {
			return fmt.Errorf("read inventory: %w", err)
		}
		if found && isLegacy {
			legacy = true
			st.inv = inv
		}
		saved, found, err := readLegacyStatus(ctx, e.client, e.namespace, e.src.Name)
		if err != nil {
			// The status is a report; an unreadable one is replaced.
			logr.FromContextOrDiscard(ctx).Error(err, "ignoring unreadable status")
		} else if found {
			legacy = true
			st.restoreStatus(saved)
		}
		st.restoreStatus(statusFromGitSource(gs))
	}
	if err := st.loadSessions(ctx, e); err != nil {
		// Without the record, a session's patch after a restart would be against the
		// current Git and could undo others' commits: do not start without it.
		return err
	}
	if legacy {
		// Move the inventory before anything else is written, so that no sync runs on an
		// inventory that is only in the old ConfigMap.
		if err := st.saveInventory(ctx, e, st.inv); err != nil {
			return err
		}
		st.legacy = true
		logr.FromContextOrDiscard(ctx).Info("moved the inventory and status of the source from its ConfigMaps into its GitSource",
			"inventory", InventoryConfigMapName(e.src.Name), "status", StatusConfigMapName(e.src.Name), "objects", len(st.inv.refs))
	}
	st.status.ObjectsManaged = len(st.inv.refs)
	st.loaded = true
	return nil
}

// restoreStatus keeps what a restart must not forget of a saved status: the applied revision,
// the drift count, the last change, the history, the conditions and the last handled sync
// request. Fields saved empty leave what is known.
func (st *state) restoreStatus(saved Status) {
	s := &st.status
	if saved.Revision != "" {
		s.Revision, s.Author, s.CommitTime, s.Subject, s.SignedBy = saved.Revision, saved.Author, saved.CommitTime, saved.Subject, saved.SignedBy
		s.LastApplied = saved.LastApplied
	}
	s.DriftReverts = max(s.DriftReverts, saved.DriftReverts)
	if saved.LastChange != "" {
		s.LastChange, s.LastChangeTime = saved.LastChange, saved.LastChangeTime
	}
	if len(saved.History) > 0 {
		s.History = saved.History
	}
	if len(saved.Conditions) > 0 {
		s.Conditions = saved.Conditions
	}
	if saved.LastHandledReconcileAt != "" {
		s.LastHandledReconcileAt = saved.LastHandledReconcileAt
	}
}

// saveInventory writes inv to the status of the source's GitSource and makes it the source's
// inventory; the caller holds st.mu.
func (st *state) saveInventory(ctx context.Context, e *env, inv *inventory) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(inv.toStatus())
	if err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	if len(inv.refs) == 0 {
		// An empty inventory is an empty list of entries, which says "nothing applied"; an
		// empty object would reach the API server as null, "no inventory yet".
		m = map[string]any{"entries": []any{}}
	}
	if _, err := applyGitSourceStatus(ctx, e.client, e.namespace, e.src.Name, inventoryFieldManager, map[string]any{"inventory": m}); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	st.inv = inv
	return nil
}

// claims reads which objects other sources claim, from their inventories, once per source
// for the life of the value. An object labelled with another source that lists it in its
// inventory belongs to that source.
type claims struct {
	e    *env
	mu   sync.Mutex
	invs map[string]map[objKey]bool
}

// claimedByOther returns the other source that claims live's object, or "" when none does:
// the label names no other source, or that source's inventory does not list the object (it
// dropped or abandoned it, or the label was set by hand).
func (c *claims) claimedByOther(ctx context.Context, live *unstructured.Unstructured) (string, error) {
	owner := live.GetLabels()[v1alpha1.LabelSource]
	if owner == "" || owner == c.e.src.Name {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, ok := c.invs[owner]
	if !ok {
		inv, _, found, err := readInventoryOf(ctx, c.e.client, c.e.namespace, owner)
		if err != nil {
			return "", fmt.Errorf("inventory of source %s: %w", owner, err)
		}
		keys = map[objKey]bool{}
		if found {
			keys = inv.keys()
		}
		if c.invs == nil {
			c.invs = map[string]map[objKey]bool{}
		}
		c.invs[owner] = keys
	}
	if keys[keyOf(live)] {
		return owner, nil
	}
	return "", nil
}
