package reconciler

import (
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
