// Package webhook is Driftless's guard: a validating admission handler that keeps manual
// changes out of protected scope.
//
// A request goes through four steps: the AdmissionRequest is decoded into facts (who, what,
// where, which labels and annotations), the facts are matched against the rules derived from
// the configuration, the decision is turned into an admission response, and the decision is
// recorded as one log line, metrics and, for denials, break-glass uses and safe operations
// (rollout restart, deleting a controller-owned Pod, a Job from a CronJob in Git), a
// Kubernetes Event, and for every decision but a plain allow a ledger record
// (internal/ledger, buffered: the guard never waits for it). The handler fails closed:
// anything it cannot decide is denied.
//
// The package also builds the objects that put the guard in front of the API server, from the
// same configuration as the handler: the ValidatingWebhookConfiguration (matchConditions,
// namespaceSelector), and the ValidatingAdmissionPolicy and binding that protect the
// installation itself, which webhooks cannot see (SelfProtection). It checks that a
// cert-manager Certificate covers the webhook Service and reports its readiness.
//
// ReviewHandler decodes each AdmissionReview once, checking all of it as JSON (objects
// included: well formed, valid UTF-8, no key twice), and leaves the objects where they are in
// the body. Objects are read only when a decision needs them, so a request decided on identity
// or namespace alone costs no JSON reading. When one is needed, one pass over the object's JSON,
// relying on that check, reads the metadata fields and the pod template's restartedAt
// annotation and stops (scan.go); encoding/json decodes the whole object only where that pass
// does not apply or a decision needs more (a rollout restart compared, a policy evaluated).
//
// It must not apply, prune or fetch anything; it reads the cluster only to look up the object
// a scale or CONNECT request is for (break-glass) and the CronJob a Job names (safe
// operations), and writes only Events (and hands records to the ledger, which writes them
// elsewhere).
package webhook
