package reconciler

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	// watch is the healer's watch of the applied objects while it runs; nil otherwise. Live
	// objects are read from its cache.
	watch *watcher
}

// load reads the inventory, the status and the break-glass record of the source from the
// cluster, once; the caller holds st.mu. Until the inventory is read, nothing is applied: a
// reconciler that forgot what it applied could never prune it.
func (st *state) load(ctx context.Context, e *env) error {
	if st.loaded {
		return nil
	}
	inv, found, err := e.readInventory(ctx)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if found {
		st.inv = inv
	}
	saved, found, err := ReadSourceStatus(ctx, e.client, e.namespace, e.src.Name)
	if err != nil {
		// The status is a report; an unreadable one is replaced.
		logr.FromContextOrDiscard(ctx).Error(err, "ignoring unreadable status")
	} else if found {
		st.status.Revision, st.status.Author, st.status.CommitTime, st.status.Subject = saved.Revision, saved.Author, saved.CommitTime, saved.Subject
		st.status.LastApplied = saved.LastApplied
		st.status.DriftReverts = saved.DriftReverts
		st.status.LastChange, st.status.LastChangeTime = saved.LastChange, saved.LastChangeTime
	}
	if err := st.loadSessions(ctx, e); err != nil {
		// Without the record, a session's patch after a restart would be against the
		// current Git and could undo others' commits: do not start without it.
		return err
	}
	st.status.ObjectsManaged = len(st.inv.refs)
	st.loaded = true
	return nil
}

// saveInventory writes inv to the cluster and makes it the source's inventory; the caller
// holds st.mu.
func (st *state) saveInventory(ctx context.Context, e *env, inv *inventory) error {
	_, err := applyConfigMap(ctx, e.client, e.namespace, InventoryConfigMapName(e.src.Name), componentInv, map[string]string{
		"source":     e.src.Name,
		inventoryKey: inv.encode(),
	})
	if err != nil {
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
		d, found, err := readConfigMap(ctx, c.e.client, c.e.namespace, InventoryConfigMapName(owner))
		if err != nil {
			return "", err
		}
		keys = map[objKey]bool{}
		if found {
			inv, err := decodeInventory(d[inventoryKey])
			if err != nil {
				return "", fmt.Errorf("inventory of source %s: %w", owner, err)
			}
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
