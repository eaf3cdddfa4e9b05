// Package sources holds what people and the push receiver do to GitSource objects from the
// outside, with the caller's own identity and RBAC: list them, request a sync now and wait
// for its result, suspend a source for a time (an exception like break-glass) and resume it.
// The command line, the push receiver and the web view call it; the reconciler's controller
// answers what it writes.
//
// Every change it makes is a merge patch of annotations only (field manager
// driftless-sources), so that it never changes what Git declares: the self-protection policy
// lets anyone RBAC allows patch a GitSource's driftless.dev/reconcile-requested-at
// annotation, and only the break-glass groups set the suspension annotations, which must name
// the requester.
//
// It must not write a GitSource's spec or status, and must not wait without a deadline.
package sources
