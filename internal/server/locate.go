package server

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/webhook"
)

// gitSourceLocator finds a source's repository and path in its GitSource, through the
// manager's cache, for the guard's denial messages.
type gitSourceLocator struct {
	reader    client.Reader
	namespace string
}

var _ webhook.SourceLocator = gitSourceLocator{}

// locateTimeout bounds a lookup: the first one starts the cache's GitSource informer; a
// denial that cannot wait names the source only.
const locateTimeout = 2 * time.Second

// LocateSource implements webhook.SourceLocator.
func (l gitSourceLocator) LocateSource(ctx context.Context, name string) (string, string, bool) {
	ctx, cancel := context.WithTimeout(ctx, locateTimeout)
	defer cancel()
	var gs v1alpha1.GitSource
	if err := l.reader.Get(ctx, client.ObjectKey{Namespace: l.namespace, Name: name}, &gs); err != nil {
		return "", "", false
	}
	path := gs.Spec.Path
	if path == "" {
		path = "."
	}
	return gs.Spec.URL, path, true
}
