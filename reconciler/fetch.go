package reconciler

import (
	"context"
	"errors"

	"github.com/driftless-dev/driftless/reconciler/source"
)

// fetcher gets the artifact of a source. It reads none of the state, so a fetch never holds
// up a heal, however long the source takes.
type fetcher struct {
	*env
	source source.Source
}

// fetch returns the source's artifact now, or why it cannot be had: a verification failure,
// a limit, or anything else that kept the artifact from being fetched.
func (f *fetcher) fetch(ctx context.Context) (source.Artifact, SyncResult, error) {
	art, err := f.source.Fetch(ctx)
	switch {
	case err == nil:
		return art, "", nil
	case errors.Is(err, source.ErrVerification):
		return art, ResultVerificationFailed, err
	case errors.Is(err, source.ErrLimitExceeded):
		return art, ResultLimitExceeded, err
	}
	return art, ResultFetchFailed, err
}
