package source

import (
	"context"
	"time"
)

// Git is the [Source] of one Git repository and ref: it fetches with a [Fetcher] and
// yields the commit as an [Artifact]. Make one with [NewGit].
type Git struct {
	spec    Spec
	fetcher Fetcher
	now     func() time.Time
}

var _ Source = (*Git)(nil)

// NewGit returns the source that fetches spec with fetcher; now stamps the artifacts'
// [Metadata.Fetched] (nil is time.Now). The fetcher validates the spec on every fetch, so
// that a bad one fails the fetch and names the field.
func NewGit(spec Spec, fetcher Fetcher, now func() time.Time) *Git {
	if now == nil {
		now = time.Now
	}
	return &Git{spec: spec, fetcher: fetcher, now: now}
}

// Fetch implements [Source]: the commit the ref resolves to, checked out.
func (g *Git) Fetch(ctx context.Context) (Artifact, error) {
	rev, err := g.fetcher.Fetch(ctx, g.spec)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{
		Revision: rev.Commit,
		Dir:      rev.Dir,
		Entries:  rev.Entries,
		Metadata: Metadata{Author: rev.Author, Committer: rev.Committer, Subject: rev.Subject, Created: rev.Time, SignedBy: rev.SignedBy, Fetched: g.now()},
	}, nil
}

// Location implements [Source]: the repository URL without credentials and the ref.
func (g *Git) Location() Location {
	return Location{URL: RedactURL(g.spec.URL), Ref: g.spec.Ref.String()}
}
