// Package app is the driftless command tree: each subcommand parses its flags, calls one
// function of the package that owns the concept (internal/check, internal/server,
// internal/doctor, policy, reconciler, webhook) and turns the result into output and an exit
// code. It holds no decision logic of its own, and never imports test/... code.
//
// The version variables set at build time (-ldflags -X .../app.version, .../app.commit) live
// here.
package app
