// Package policy loads, compiles, evaluates and tests the Rego (OPA, Rego v1)
// policies that Kubernetes manifests must pass. The same Engine serves the
// three places Driftless gates on policy: `driftless check` in CI, the
// reconciler before it applies a rendered revision, and the admission webhook.
//
// # Loading and compiling
//
// An Engine compiles its policies once per Load into a single prepared query
// and serves every evaluation from it. Policies come from two places: the
// built-in library embedded in the binary (see Library) and the files and
// directories in Options.Paths, walked recursively for *.rego files. Files
// named *_test.rego are Rego unit tests: Load ignores them, RunTests runs them.
// Every module is parsed as Rego v1.
//
// Load swaps the compiled set atomically. When it fails (a parse or compile
// error, a bad option, a missing directory) the Engine keeps serving the last
// good set and Load returns the error; parse and compile problems come as a
// *CompileError whose message names each file:line:col. Until a Load has ever
// succeeded, Evaluate and EvaluateAll return ErrNoPolicy, so callers can fail
// closed.
//
// Policies run in a sandbox (sandbox.go): an allow-list of OPA's built-ins
// without the non-deterministic ones (time.now_ns, rand.intn, uuid.rfc4122,
// http.send, net.lookup_ip_addr, opa.runtime, ...). A call of a refused
// built-in fails the load with its file:line:col and the built-in's name, so a
// policy decides the same way in CI, in the reconciler and at admission.
//
// # Conventions (compatible with conftest)
//
// In every evaluated package the rules deny, violation and warn, and rules
// whose names start with deny_, violation_ or warn_, are queried. deny and
// violation rules report Severity SeverityDeny, warn rules SeverityWarn. A
// rule's values are either message strings or objects with a string "msg"
// field; the object's other fields are kept in Violation.Details. A boolean
// rule that is true reports one violation with a generic message.
//
// The evaluated packages are Options.Namespaces ("main" when empty) plus one
// package per enabled built-in rule, data.driftless.library.<rule>. A policy
// written for conftest (package main, `deny contains msg if { ... }`, reading
// the object as input) runs unchanged.
//
// # What a policy sees
//
//   - input is the Kubernetes object being checked, as rendered or admitted
//     (apiVersion, kind, metadata, spec, ...), without metadata.managedFields
//     (the API server's bookkeeping, never in rendered manifests, so a policy
//     reading it would decide differently in CI and at admission). status is
//     left out only when every rule queried for the object is built in; none
//     of them reads it.
//   - data.driftless.parameters is Options.Parameters, fixed per Load, for
//     example data.driftless.parameters.allowed_registries.
//   - data.driftless.context is the evaluation's EvalContext, given per call:
//     {"source": string, "environment": string, "operation": string,
//     "user": {"username": string, "groups": [string]}}. Outside admission
//     operation and user are empty.
//   - data.driftless.lib.kubernetes holds helpers that user policies may
//     import: the pod spec of any workload kind, its containers and image
//     reference parsing.
//
// The context reaches prepared queries through the Go context: Evaluate puts
// the EvalContext into the context.Context it evaluates with, and the engine
// compiles one generated module,
//
//	package driftless
//	context := driftless.internal.context()
//
// whose builtin returns it. data.driftless.context is therefore an ordinary
// virtual document, computed once per evaluation, while input stays the bare
// object as conftest and `opa eval` expect. Unit tests set it the ordinary
// way, `with data.driftless.context as {...}`; RunTests serves an empty
// EvalContext there, the same value Evaluate uses by default. The
// alternatives were measured (BenchmarkContextDelivery): wrapping input as
// {object, context} and evaluating `with input as ... with
// data.driftless.context as ...` cost about 45% more per object with the whole
// library, and writing the context into the store per call needs a write
// transaction, which serialises concurrent evaluations. The packages under
// data.driftless are reserved: user modules may not declare them.
//
// # Evaluating
//
// Evaluate checks one object, EvaluateAll a whole rendered revision against
// the same compiled set; both are safe for concurrent use and stop when the
// caller's context is cancelled.
//
// Load prepares one query per set of rules that can fire on a kind: each
// built-in rule declares its kinds (custom.kinds in its package METADATA),
// rules of user packages are in every query, and an object is asked only the
// query of its kind; with the library alone a ConfigMap is not evaluated at
// all. The object becomes Rego input lazily: nested objects are converted
// when a rule reads them. Documents that depend only on the parameters are
// computed once per Load and given to every evaluation in its
// virtual-document cache (seed.go), a flat table the compiled set empties
// and reuses from one evaluation to the next. A rule defined only by
// `contains` rules is queried directly, without the comprehension that
// keeps an undefined rule from hiding the others, since it is never
// undefined. BenchmarkEngineVsOPA compares all this
// with OPA's own prepared evaluation of the same modules. A Result lists the object's violations in a
// deterministic order: deny before warn, then by package, rule and message.
//
// # Policy sets
//
// Sets holds one Engine per policy set of a DriftlessConfig, so that the guard (Evaluate, on
// guard.policySet) and the reconciler's gate (EvaluateAll, on a source's set) share one
// compilation of each; Load recompiles every set in place and keeps a set's last good version
// when it does not compile. Sets returns plain Results: callers adapt them to their own types.
//
// # Testing policies
//
// RunTests runs test_ rules in-process with OPA's tester, like `opa test`,
// over the given paths and, on request, the built-in library and its tests.
//
// Package policy knows nothing of HTTP, Git or Kubernetes clients: it takes
// objects as plain map[string]any and returns results; callers decide what a
// violation means (reject a request, fail a check, skip an apply).
package policy
