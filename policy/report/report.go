package report

import (
	"fmt"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// CheckReportKind is the kind of the document `driftless check --output json` prints; its
// apiVersion is v1alpha1.APIVersion.
const CheckReportKind = "CheckReport"

// Report is the outcome of `driftless check`, and with --output json its output document:
//
//	{
//	  "apiVersion": "driftless.dev/v1alpha1",
//	  "kind": "CheckReport",
//	  "environment": "production",
//	  "failOnWarn": false,
//	  "passed": false,
//	  "summary": {"targets": 1, "objects": 3, "denials": 1, "warnings": 0},
//	  "rules": [{"id": "images_pinned", "package": "driftless.library.images_pinned",
//	             "rule": "deny", "severity": "deny", "title": "...", "description": "..."}],
//	  "targets": [{"path": "overlays/production", "objects": [{
//	    "file": "overlays/production/kustomization.yaml", "line": 0,
//	    "kustomization": "overlays/production",
//	    "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "production",
//	    "name": "payment-gateway",
//	    "violations": [{"ruleId": "images_pinned", "package": "driftless.library.images_pinned",
//	                    "rule": "deny", "severity": "deny", "message": "...",
//	                    "details": {"container": "gateway", "image": "..."}}]}]}]
//	}
//
// The schema is stable within apiVersion driftless.dev/v1alpha1: fields are only ever added.
// Every field is always present except details, which is omitted when a rule reports only a
// message. Targets come in the order of the PATH arguments, objects in render order,
// violations deny before warn, then by package, rule and message.
type Report struct {
	// APIVersion is v1alpha1.APIVersion.
	APIVersion string `json:"apiVersion"`
	// Kind is CheckReportKind.
	Kind string `json:"kind"`
	// Environment is what policies saw as data.driftless.context.environment.
	Environment string `json:"environment"`
	// FailOnWarn says whether warnings fail the check.
	FailOnWarn bool `json:"failOnWarn"`
	// Passed is false when an object was denied, or warned with FailOnWarn.
	Passed bool `json:"passed"`
	// Summary counts targets, objects and violations.
	Summary Summary `json:"summary"`
	// Rules are the rules evaluated, sorted by package and rule.
	Rules []RuleReport `json:"rules"`
	// Targets are the checked paths, in argument order.
	Targets []Target `json:"targets"`
}

// Summary counts what a check saw.
type Summary struct {
	// Targets is the number of PATH arguments.
	Targets int `json:"targets"`
	// Objects is the number of rendered objects.
	Objects int `json:"objects"`
	// Denials is the number of violations with severity deny.
	Denials int `json:"denials"`
	// Warnings is the number of violations with severity warn.
	Warnings int `json:"warnings"`
}

// String returns "3 denials, 1 warning in 12 objects".
func (s Summary) String() string {
	return fmt.Sprintf("%s, %s in %s", plural(s.Denials, "denial"), plural(s.Warnings, "warning"), plural(s.Objects, "object"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// RuleReport describes one evaluated rule.
type RuleReport struct {
	// ID names the rule in reports: the built-in rule's name ("images_pinned") for the
	// library's deny rules, "<rule name>.<rule>" for its other rules, and "<package>.<rule>"
	// for user policies ("main.deny").
	ID string `json:"id"`
	// Package is the rule's Rego package.
	Package string `json:"package"`
	// Rule is the rule's name in its package, for example "deny" or "warn_labels".
	Rule string `json:"rule"`
	// Severity is "deny" or "warn".
	Severity string `json:"severity"`
	// Title is the built-in rule's title; for user rules, "data.<package>.<rule>".
	Title string `json:"title"`
	// Description is the built-in rule's description; empty for user rules.
	Description string `json:"description"`
}

// Target is the outcome for one PATH argument.
type Target struct {
	// Path is the PATH argument as given.
	Path string `json:"path"`
	// Objects are the rendered objects, in render order.
	Objects []ObjectReport `json:"objects"`
}

// ObjectReport is one rendered object and its violations.
type ObjectReport struct {
	// File is where the object comes from, slash-separated and relative to the repository
	// root (or, outside a repository, joined to PATH): its YAML file, or for kustomize output
	// the source file from kustomize's origin annotation or else the kustomization file.
	File string `json:"file"`
	// Line is the 1-based line where the object starts in File, 0 when unknown.
	Line int `json:"line"`
	// Kustomization is the kustomization directory that built the object; empty for plain
	// YAML.
	Kustomization string `json:"kustomization"`
	// APIVersion is the object's apiVersion as rendered.
	APIVersion string `json:"apiVersion"`
	// Kind is the object's kind.
	Kind string `json:"kind"`
	// Namespace is metadata.namespace as rendered (after a kustomize namespace), empty for
	// cluster-scoped objects.
	Namespace string `json:"namespace"`
	// Name is metadata.name as rendered (after kustomize name prefixes and suffixes).
	Name string `json:"name"`
	// Violations are sorted deny before warn, then by package, rule and message.
	Violations []ViolationReport `json:"violations"`
}

// Ref returns "Kind namespace/name", or "Kind name" for cluster-scoped objects.
func (o ObjectReport) Ref() string {
	return policy.ObjectRef{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}.String()
}

// Location returns "file:line", or "file" when the line is unknown.
func (o ObjectReport) Location() string {
	if o.Line > 0 {
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	return o.File
}

// ViolationReport is one violation of one object.
type ViolationReport struct {
	// RuleID is the RuleReport.ID of the rule.
	RuleID string `json:"ruleId"`
	// Package is the rule's Rego package.
	Package string `json:"package"`
	// Rule is the rule's name in its package.
	Rule string `json:"rule"`
	// Severity is "deny" or "warn".
	Severity string `json:"severity"`
	// Message is the rule's message.
	Message string `json:"message"`
	// Details are the other fields of an object-valued result, for example "container".
	Details map[string]any `json:"details,omitempty"`
}

// New starts a report with the rules of the loaded set: the evaluated rules, described from
// the built-in library where they come from it, and no targets yet. Add targets, then call
// Finish.
func New(rules []policy.RuleRef, environment string, failOnWarn bool) (*Report, error) {
	lib, err := policy.Library()
	if err != nil {
		return nil, err
	}
	byPackage := make(map[string]policy.LibraryRule, len(lib))
	for _, r := range lib {
		byPackage[r.Package()] = r
	}
	report := &Report{
		APIVersion:  v1alpha1.APIVersion,
		Kind:        CheckReportKind,
		Environment: environment,
		FailOnWarn:  failOnWarn,
		Rules:       make([]RuleReport, 0, len(rules)),
		Targets:     []Target{},
	}
	for _, r := range rules {
		rr := RuleReport{ID: policy.RuleID(r.Package, r.Rule), Package: r.Package, Rule: r.Rule, Severity: string(r.Severity), Title: r.String()}
		if lr, ok := byPackage[r.Package]; ok {
			rr.Title, rr.Description = lr.Title, lr.Description
		}
		report.Rules = append(report.Rules, rr)
	}
	return report, nil
}

// NewObject reports one evaluated object declared at file:line (line 0 when unknown), built
// by the kustomization directory kustomization (empty for plain YAML).
func NewObject(res policy.Result, file string, line int, kustomization string) ObjectReport {
	obj := ObjectReport{
		File:          file,
		Line:          line,
		Kustomization: kustomization,
		APIVersion:    res.Object.APIVersion,
		Kind:          res.Object.Kind,
		Namespace:     res.Object.Namespace,
		Name:          res.Object.Name,
		Violations:    make([]ViolationReport, 0, len(res.Violations)),
	}
	for _, v := range res.Violations {
		obj.Violations = append(obj.Violations, ViolationReport{
			RuleID:   v.RuleID(),
			Package:  v.Package,
			Rule:     v.Rule,
			Severity: string(v.Severity),
			Message:  v.Message,
			Details:  v.Details,
		})
	}
	return obj
}

// Finish counts the targets' objects and violations and decides Passed.
func (r *Report) Finish() {
	r.Summary = Summary{Targets: len(r.Targets)}
	for _, t := range r.Targets {
		r.Summary.Objects += len(t.Objects)
		for _, o := range t.Objects {
			for _, v := range o.Violations {
				if v.Severity == string(policy.SeverityDeny) {
					r.Summary.Denials++
				} else {
					r.Summary.Warnings++
				}
			}
		}
	}
	r.Passed = r.Summary.Denials == 0 && (!r.FailOnWarn || r.Summary.Warnings == 0)
}
