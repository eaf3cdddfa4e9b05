// Package app is the driftless command tree: flags, wiring and the run loop of each
// subcommand. It holds no decision logic of its own; that lives in the webhook, policy and
// reconciler packages.
package app
