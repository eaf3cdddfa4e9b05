package source

import (
	"context"
	"errors"
	"time"
)

// Source yields the artifact a configured source declares now: a revision id and a local
// directory of manifests to render. The reconciler speaks only this interface; [Git] is one
// implementation. A new kind of source (an OCI artifact, a Helm chart) is a new
// implementation, built from its own configuration type in the reconciler's one source
// factory.
type Source interface {
	// Fetch returns the artifact the source declares now. It fails with an error wrapping
	// [ErrVerification] when the artifact must be refused for its signature, and with one
	// wrapping [ErrLimitExceeded] when it is over one of the source's limits; any other
	// error means the artifact could not be fetched. A failed fetch leaves every artifact
	// returned before untouched.
	Fetch(ctx context.Context) (Artifact, error)
	// Location says where the source fetches from, without credentials, for the status and
	// the log.
	Location() Location
}

// Artifact is one fetched revision of a source.
type Artifact struct {
	// Revision identifies the artifact's content, such as a commit SHA or an image digest;
	// it is the driftless.dev/revision annotation of every object applied from it.
	Revision string
	// Dir holds the artifact's files and nothing else. It is never modified, and stays on
	// disk at least until a fetch of a second, different newer revision succeeds.
	Dir string
	// Metadata describes the revision for the status and the log.
	Metadata Metadata
	// Entries names the content of the artifact's paths without reading it, so that a
	// render can be reused for a revision in which nothing it read changed; nil when the
	// kind of source cannot tell.
	Entries *Entries
}

// Metadata describes a revision for people: who made it, when and why, and who vouched for
// it.
type Metadata struct {
	// Author made the revision, as "Name <email>"; empty when the kind of source has none.
	Author string
	// Committer recorded the revision, as "Name <email>", where the kind of source tells
	// author and committer apart; empty otherwise.
	Committer string
	// Subject is a one-line description, such as the first line of a commit message.
	Subject string
	// Created is when the revision was made, such as the commit time.
	Created time.Time
	// SignedBy names the key whose signature was verified; empty when the source verifies
	// none.
	SignedBy string
	// Fetched is when the fetch that returned the artifact ended.
	Fetched time.Time
}

// Location says where a source fetches from.
type Location struct {
	// URL is where the source is, without credentials.
	URL string
	// Ref says what at URL, such as "branch main" or "tag v1.2.0".
	Ref string
}

// ErrVerification is wrapped by every error that refuses an artifact for its signature:
// unsigned, or not signed by a trusted key ([ErrUnsigned], [ErrUntrusted] for Git).
var ErrVerification = errors.New("artifact failed verification")

// verificationError is a sentinel that is also [ErrVerification], keeping its own message.
type verificationError struct{ msg string }

func (e *verificationError) Error() string { return e.msg }

// Is makes the error match [ErrVerification].
func (e *verificationError) Is(target error) bool { return target == ErrVerification }
