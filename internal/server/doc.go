// Package server is the wiring of `driftless run`: one controller-runtime manager holding the
// guard's webhook server (every replica), the reconcilers of the configured sources (the
// elected leader only), the policy sets both evaluate, the configuration reloader, metrics and
// health endpoints. Run is all the command calls.
//
// It wires parts and decides nothing itself: admission decisions live in webhook, policy in
// policy, syncing in reconciler, the configuration in config/v1alpha1 (read with its one
// loader and size limit). It must not parse flags or exit the process, and never imports
// test/... code.
package server
