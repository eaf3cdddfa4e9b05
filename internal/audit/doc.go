// Package audit builds the compliance report of `driftless audit`: for a time window, and
// optionally one namespace, the revisions the reconciler applied, the attempts the guard
// denied (by actor), the break-glass sessions with their reason, duration and patch to
// commit, the changes made under break-glass, the safe operations and the drift reverts. It
// reads the ledger (internal/ledger) and the reconciler's status and break-glass record
// ConfigMaps, and writes the report as text, JSON or CSV.
//
// It only reads; it must never change the cluster.
package audit
