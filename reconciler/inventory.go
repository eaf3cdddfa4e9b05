package reconciler

import (
	"bytes"
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
}

// has reports whether the inventory holds k.
func (inv *inventory) has(k objKey) bool {
	for _, r := range inv.refs {
		if r.key() == k {
			return true
		}
	}
	return false
}

// keys returns the set of keys in the inventory.
func (inv *inventory) keys() map[objKey]bool {
	m := make(map[objKey]bool, len(inv.refs))
	for _, r := range inv.refs {
		m[r.key()] = true
	}
	return m
}

// union returns the inventory followed by the refs it does not hold yet.
func (inv *inventory) union(refs []ObjectRef) *inventory {
	have := inv.keys()
	out := &inventory{refs: append([]ObjectRef(nil), inv.refs...)}
	for _, r := range refs {
		if !have[r.key()] {
			out.refs = append(out.refs, r)
			have[r.key()] = true
		}
	}
	return out
}

// inventoryEntry is the stored form of one reference, kept short: an inventory of thousands
// of objects must fit in one ConfigMap.
type inventoryEntry struct {
	APIVersion string `json:"v"`
	Kind       string `json:"k"`
	Namespace  string `json:"ns,omitempty"`
	Name       string `json:"n"`
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
		e, _ := json.Marshal(inventoryEntry{APIVersion: gv, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name})
		b.Write(e)
	}
	b.WriteString("\n]\n")
	return b.String()
}

// decodeInventory reads an encoded inventory. Every entry must name a version, a kind and a
// name.
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
		inv.refs = append(inv.refs, ObjectRef{Group: group, Version: version, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
	}
	return inv, nil
}
