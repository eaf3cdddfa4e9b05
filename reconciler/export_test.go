package reconciler

import (
	"context"

	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler/source"
)

// NewWithSource is [New] with s instead of the source src's configuration declares, so that
// tests can drive the reconciler with a kind of source that has no configuration type yet.
func NewWithSource(src v1alpha1.Source, s source.Source, opts Options) (*Reconciler, error) {
	r, err := New(src, opts)
	if err != nil {
		return nil, err
	}
	return newReconciler(r.env, s, opts.Gate), nil
}

// InventoryText returns the inventory of source name in the encoding of the inventory
// ConfigMaps of versions before sources were GitSources (one JSON object a line), so that
// tests can look for entries in it; empty when the source has none.
func InventoryText(ctx context.Context, client dynamic.Interface, namespace, name string) (string, error) {
	inv, _, found, err := readInventoryOf(ctx, client, namespace, name)
	if err != nil || !found {
		return "", err
	}
	return inv.encode(), nil
}
