// Package receiver is the Git push receiver of `driftless run`: an HTTP handler that a Git
// host calls when a branch moves, so that the source syncs now instead of at its next
// interval.
//
// A push only ever requests a sync. The receiver reads nothing from the request but its
// signature: the reconciler still fetches the commit itself, from the URL the source names,
// and verifies it as configured, so a receiver call can neither choose what is applied nor
// skip the commit signature check. What it costs an attacker who can reach it is bounded:
// every request is limited in size and time, the signature is checked in constant time, an
// unknown source, a source without a receiver secret and a bad or missing signature all get
// the same 401 (so the receiver does not tell which sources exist), and accepted requests
// are rate-limited per source and in total.
//
// Three ways of signing are accepted, each checked against the source's own secret:
//   - GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>;
//   - GitLab: X-Gitlab-Token: <the secret itself>;
//   - any other sender: X-Driftless-Signature-256: sha256=<hex HMAC-SHA256 of the body>.
//
// The package must not fetch, apply or keep anything itself, must not log secrets, request
// bodies or signatures, and must never request a sync for a request whose signature it has
// not verified.
package receiver
