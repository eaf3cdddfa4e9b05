package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// inventoryKey is the ConfigMap key holding a source's inventory.
const inventoryKey = "objects"

// inventory lists the objects a source has applied, in apply order. It is what the source
// may prune: an object is only ever deleted because it is in the inventory and no longer in
// Git. It persists in a ConfigMap so that a restart never forgets, and never prunes, anything.
type inventory struct {
	refs []ObjectRef
	// origins says, for the objects whose origin is known, whether the source created or
	// adopted them. Inventories written before origins were recorded have none: their objects
	// count as created when the live object carries the source's label.
	origins map[objKey]origin
}

// origin is how an object came to be in a source's inventory.
type origin string

const (
	// originUnknown: recorded by a version that did not record origins.
	originUnknown origin = ""
	// originCreated: the source created the object, or found it carrying its label.
	originCreated origin = "c"
	// originAdopted: the object existed without the source's label and was adopted.
	originAdopted origin = "a"
)

// origin returns how the inventory's object k came to it.
func (inv *inventory) origin(k objKey) origin { return inv.origins[k] }

// setOrigin records how the object k came to the inventory.
func (inv *inventory) setOrigin(k objKey, o origin) {
	if o == originUnknown {
		delete(inv.origins, k)
		if len(inv.origins) == 0 {
			inv.origins = nil
		}
		return
	}
	if inv.origins == nil {
		inv.origins = map[objKey]origin{}
	}
	inv.origins[k] = o
}

// keys returns the set of keys in the inventory.
func (inv *inventory) keys() map[objKey]bool {
	m := make(map[objKey]bool, len(inv.refs))
	for _, r := range inv.refs {
		m[r.key()] = true
	}
	return m
}

// union returns the inventory followed by the refs it does not hold yet, with the origins
// of both; where both know an object's origin, the inventory's wins.
func (inv *inventory) union(refs []ObjectRef, origins map[objKey]origin) *inventory {
	have := inv.keys()
	out := &inventory{refs: append([]ObjectRef(nil), inv.refs...)}
	for _, r := range refs {
		if !have[r.key()] {
			out.refs = append(out.refs, r)
			have[r.key()] = true
		}
	}
	for k, o := range origins {
		if have[k] {
			out.setOrigin(k, o)
		}
	}
	for k, o := range inv.origins {
		out.setOrigin(k, o)
	}
	return out
}

// differs reports whether inv and other list other objects, or other origins.
func (inv *inventory) differs(other *inventory) bool {
	if len(inv.refs) != len(other.refs) || len(inv.origins) != len(other.origins) {
		return true
	}
	for i, r := range inv.refs {
		if r != other.refs[i] || inv.origin(r.key()) != other.origin(r.key()) {
			return true
		}
	}
	return false
}

// inventoryEntry is the stored form of one reference, kept short: an inventory of thousands
// of objects must fit in one ConfigMap.
type inventoryEntry struct {
	APIVersion string `json:"v"`
	Kind       string `json:"k"`
	Namespace  string `json:"ns,omitempty"`
	Name       string `json:"n"`
	// Origin is "c" (created) or "a" (adopted); empty in inventories written before origins
	// were recorded.
	Origin origin `json:"o,omitempty"`
}

// encode returns the inventory as a JSON array with one object a line.
func (inv *inventory) encode() string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range inv.refs {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n")
		gv := r.Version
		if r.Group != "" {
			gv = r.Group + "/" + r.Version
		}
		e, _ := json.Marshal(inventoryEntry{APIVersion: gv, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Origin: inv.origin(r.key())})
		b.Write(e)
	}
	b.WriteString("\n]\n")
	return b.String()
}

// decodeInventory reads an encoded inventory, in the current format or the one before
// origins were recorded. Every entry must name a version, a kind and a name.
func decodeInventory(s string) (*inventory, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	var entries []inventoryEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("decode inventory: %w", err)
	}
	inv := &inventory{refs: make([]ObjectRef, 0, len(entries))}
	for i, e := range entries {
		group, version, ok := strings.Cut(e.APIVersion, "/")
		if !ok {
			group, version = "", e.APIVersion
		}
		if version == "" || e.Kind == "" || e.Name == "" || strings.Contains(version, "/") {
			return nil, fmt.Errorf("decode inventory: entry %d (%q %q %q): needs an apiVersion, a kind and a name", i, e.APIVersion, e.Kind, e.Name)
		}
		switch e.Origin {
		case originUnknown, originCreated, originAdopted:
		default:
			return nil, fmt.Errorf("decode inventory: entry %d (%q %q %q): origin %q is neither %q nor %q", i, e.APIVersion, e.Kind, e.Name, e.Origin, originCreated, originAdopted)
		}
		ref := ObjectRef{Group: group, Version: version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
		inv.refs = append(inv.refs, ref)
		inv.setOrigin(ref.key(), e.Origin)
	}
	return inv, nil
}

// readInventory reads the source's inventory from the cluster; found is false when the source
// has none yet. It is the one place that knows where an inventory is kept.
func (e *env) readInventory(ctx context.Context) (*inventory, bool, error) {
	inv, _, found, err := readInventoryOf(ctx, e.client, e.namespace, e.src.Name)
	if err != nil || !found {
		return &inventory{}, false, err
	}
	return inv, true, nil
}
