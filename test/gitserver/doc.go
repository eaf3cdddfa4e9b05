// Package gitserver runs a real Git server on loopback for tests.
//
// A [Server] serves the bare repositories under one directory over Git's
// smart HTTP protocol, using the git-http-backend program shipped with the
// git package behind [net/http/cgi] and an [httptest.Server]. It can demand
// HTTP basic authentication or a bearer token, and it can be stopped and started again on the
// same address to simulate an outage. An [SSHServer] serves the same
// repositories over SSH to clients holding an authorized key, for tests of
// key authentication and host-key pinning.
//
// A [Repo] is a bare repository on disk. Its helpers create commits (signed
// with an OpenPGP [Key] when asked), tags and configuration, so a test can
// move a branch and then watch a consumer fetch the change. Repos work on
// their own too, for tests that read them through file:// URLs or plain
// paths.
//
// The package is for tests only. It shells out to the git command line,
// which product code must never do, and it reports every failure through
// the [testing.TB] it is given rather than returning errors.
package gitserver
