// Package ledger is Driftless's durable record of what happened outside Git's approval: every
// guard decision other than a plain allow (denials, warnings, dry-run records, break-glass
// uses, safe operations), every drift revert, every break-glass session end and every applied
// revision. `driftless audit` reads it back as compliance evidence.
//
// Records are taken on the admission path only as far as appending them to a bounded
// in-memory buffer: a full buffer drops the record and counts it, it never blocks. A loop
// off that path turns the buffer into records (the changed top-level fields are computed
// there), writes them as JSON lines to ConfigMaps in the installation's namespace, one series
// of ConfigMaps per replica and day, each under 256 KiB, and removes ConfigMaps past the
// retention or beyond the total size bound. The buffer is written every flush interval and
// once more on shutdown; a crash loses what was buffered since the last write.
//
// An optional sink sends the same records to an HTTPS webhook, signed with HMAC-SHA256, from
// its own bounded queue with retries and exponential backoff; a dead sink shows in metrics,
// never in admission latency.
//
// The package must never record a value of a Secret (only its name), never block or fail an
// admission, and never write outside the ConfigMaps it names driftless-ledger-*. It imports
// config and client libraries only: the guard and the reconciler call it, not the reverse.
package ledger
