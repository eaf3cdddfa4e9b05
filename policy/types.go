package policy

import (
	"errors"
	"fmt"
)

// ErrNoPolicy is returned by Evaluate, EvaluateAll and Rules while no Load has
// ever succeeded. Callers that gate on policy treat it as "deny": an engine
// without policy must never allow.
var ErrNoPolicy = errors.New("no compiled policy loaded")

// Options says which policies an Engine compiles. It is plain data so that
// every caller maps its own configuration onto it; the zero value compiles
// the whole built-in library with its default parameters.
type Options struct {
	// DisableLibrary turns the built-in library off entirely. The helper
	// package data.driftless.lib.kubernetes stays available either way.
	DisableLibrary bool
	// DisabledRules names built-in rules to leave out, for example
	// "images_pinned" (see LibraryRules). An unknown name is an error.
	DisabledRules []string
	// Paths are extra policy directories, walked recursively for *.rego files,
	// or single .rego files. Files named *_test.rego are not evaluated.
	Paths []string
	// Namespaces are the Rego packages, besides the built-in library's, whose
	// deny, violation and warn rules are evaluated, for example "main" or
	// "kubernetes.admission". Empty means "main", as in conftest.
	Namespaces []string
	// Parameters become data.driftless.parameters. Values must be
	// representable as JSON. See Library for the parameters built-in rules read.
	Parameters map[string]any
}

// EvalContext describes where and why an object is evaluated. Policies read it
// as data.driftless.context.
type EvalContext struct {
	// Source is the name of the Driftless source that owns the object, if any.
	Source string
	// Environment names the target environment, for example "production".
	Environment string
	// Operation is the admission operation (CREATE, UPDATE, DELETE); empty
	// outside admission.
	Operation string
	// User is the requester at admission; empty elsewhere.
	User User
}

// User is the identity behind an admission request.
type User struct {
	// Username is the authenticated user name.
	Username string
	// Groups are the user's groups.
	Groups []string
}

// Severity says whether a violation blocks (deny) or only warns.
type Severity string

const (
	// SeverityDeny marks violations of deny and violation rules; they block.
	SeverityDeny Severity = "deny"
	// SeverityWarn marks violations of warn rules; they are reported only.
	SeverityWarn Severity = "warn"
)

// Violation is one message produced by one policy rule for one object.
type Violation struct {
	// Package is the Rego package of the rule, for example "main" or
	// "driftless.library.images_pinned".
	Package string
	// Rule is the rule's name, for example "deny" or "warn_labels".
	Rule string
	// Severity is SeverityDeny for deny and violation rules, SeverityWarn for
	// warn rules.
	Severity Severity
	// Message is the rule's message.
	Message string
	// Details holds the fields of an object-valued result other than msg.
	Details map[string]any
}

// String returns "package.rule: message".
func (v Violation) String() string {
	return fmt.Sprintf("%s.%s: %s", v.Package, v.Rule, v.Message)
}

// ObjectRef identifies the evaluated object in a Result.
type ObjectRef struct {
	// APIVersion is the object's apiVersion.
	APIVersion string
	// Kind is the object's kind.
	Kind string
	// Namespace is metadata.namespace, empty for cluster-scoped objects.
	Namespace string
	// Name is metadata.name.
	Name string
}

// String returns "Kind namespace/name" or "Kind name".
func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s", o.Kind, o.Name)
	}
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

// Result is the outcome of evaluating one object.
type Result struct {
	// Object identifies the evaluated object.
	Object ObjectRef
	// Violations are sorted: deny before warn, then by package, rule and
	// message.
	Violations []Violation
}

// Denied reports whether any violation has SeverityDeny.
func (r Result) Denied() bool {
	for _, v := range r.Violations {
		if v.Severity == SeverityDeny {
			return true
		}
	}
	return false
}

// Denials returns the violations with SeverityDeny.
func (r Result) Denials() []Violation {
	return r.filter(SeverityDeny)
}

// Warnings returns the violations with SeverityWarn.
func (r Result) Warnings() []Violation {
	return r.filter(SeverityWarn)
}

func (r Result) filter(s Severity) []Violation {
	var out []Violation
	for _, v := range r.Violations {
		if v.Severity == s {
			out = append(out, v)
		}
	}
	return out
}

// RuleRef names one rule an Engine evaluates.
type RuleRef struct {
	// Package is the rule's Rego package, for example "main".
	Package string
	// Rule is the rule's name, for example "deny".
	Rule string
	// Severity is the severity of the rule's violations.
	Severity Severity
}

// String returns "data.package.rule".
func (r RuleRef) String() string {
	return "data." + r.Package + "." + r.Rule
}
