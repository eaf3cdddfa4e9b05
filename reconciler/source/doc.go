// Package source is where the reconciler gets what it renders: a [Source] yields an
// [Artifact], a revision id with a local directory of manifests and [Metadata] about the
// revision (author, subject, time, the verified signing key, when it was fetched). The
// reconciler speaks only these types.
//
// [Git] is the one kind of source today. A [Fetcher] turns a [Spec] (URL, one ref, a cache
// directory, credentials and optional OpenPGP verification) into a [Revision]: the resolved
// commit and a directory holding that commit's files. [GitFetcher] implements it with
// go-git: it clones into the cache directory once and fetches only what changed after that
// (depth 1 where the server allows it), bounded by the context. HTTPS (basic auth or bearer
// token), SSH (private key and pinned known_hosts), file:// URLs and plain local paths are
// supported; local repositories are read in place, without a clone.
//
// An artifact also carries [Entries]: the Git blob and tree hashes of its paths, read from
// tree objects without the files, so that a render can be reused for a commit in which
// nothing it read changed.
//
// An artifact directory is written completely before it is made visible and is never
// modified afterwards, so a failed fetch, an unreachable server or a rejected signature
// leaves the caller's last good revision untouched. Every refusal for a signature wraps
// [ErrVerification], every limit [ErrLimitExceeded], whatever the kind of source.
//
// This package must not shell out to git (go-git's file transport would, so local
// repositories are opened directly), must not log or return credentials (URLs are redacted
// with [RedactURL]), and knows nothing of rendering or applying: it only produces a
// directory.
package source
