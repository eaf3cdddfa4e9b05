package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// ReasonPolicy is the reason of a request denied by the admission policy set.
const ReasonPolicy Reason = "policy-violation"

// PolicyEvaluator evaluates one object against the compiled admission policy set.
// *policy.Engine implements it.
type PolicyEvaluator interface {
	Evaluate(ctx context.Context, obj map[string]any, ec policy.EvalContext) (policy.Result, error)
}

var _ PolicyEvaluator = (*policy.Engine)(nil)

// errPolicyUnavailable marks policy failures the guard cannot decide past; it fails closed.
var errPolicyUnavailable = errors.New("admission policy could not be evaluated")

// inScope reports whether the guard protects the request's object: it is in a protected
// namespace, or a cluster-scoped object that a source applied.
func (r *rules) inScope(f *facts) bool {
	if f.namespace != "" {
		return r.isProtectedNamespace(f.namespace)
	}
	return f.sourceName() != ""
}

// wantsPolicy reports whether the admission policy set must pass for a request the guard did
// not deny: creates and updates of whole objects in protected scope, whoever makes them.
func (r *rules) wantsPolicy(f *facts, d decision) bool {
	if r.policySet == "" || f.subResource != "" || (d.deny && r.mode == v1alpha1.ModeEnforce) {
		return false
	}
	if f.operation != admissionv1.Create && f.operation != admissionv1.Update {
		return false
	}
	return r.inScope(f)
}

// checkPolicy evaluates the new object against the admission policy set and folds the result
// into the decision: denials deny (by the guard's mode), warnings become admission warnings.
func (g *Guard) checkPolicy(ctx context.Context, r *rules, f *facts, d decision) (decision, error) {
	if g.policy == nil {
		return d, fmt.Errorf("%w: policy set %q is configured but no policy engine is loaded", errPolicyUnavailable, r.policySet)
	}
	var obj map[string]any
	if err := json.Unmarshal(f.rawObject, &obj); err != nil {
		if f.err == nil {
			f.err = fmt.Errorf("decode object: %w", err)
		}
		return d, nil
	}
	res, err := g.policy.Evaluate(ctx, obj, policy.EvalContext{
		Source:      f.sourceName(),
		Environment: r.policyEnvironment,
		Operation:   string(f.operation),
		User:        policy.User{Username: f.user, Groups: f.groups},
	})
	if err != nil {
		return d, fmt.Errorf("%w: policy set %q: %w", errPolicyUnavailable, r.policySet, err)
	}
	for _, w := range res.Warnings() {
		d.policyWarnings = append(d.policyWarnings, "policy "+violationLine(w))
	}
	if denials := res.Denials(); len(denials) > 0 {
		d.deny, d.reason, d.breakGlass = true, ReasonPolicy, nil
		d.violations = denials
		d.problem = fmt.Sprintf("policy set %q denies it (%d violation(s))", r.policySet, len(denials))
	}
	return d, nil
}

func violationLine(v policy.Violation) string {
	return v.Rule + " (" + v.Package + "): " + v.Message
}

// policyMessage explains a policy denial: every violation, and how to reproduce it in CI.
func (r *rules) policyMessage(f *facts, d decision) string {
	var b strings.Builder
	b.WriteString("driftless: ")
	b.WriteString(f.user)
	b.WriteString(" may not ")
	b.WriteString(f.what())
	if f.namespace != "" && f.resource.GroupResource() != namespacesResource {
		b.WriteString(" in namespace ")
		b.WriteString(f.namespace)
	}
	b.WriteString(": ")
	b.WriteString(d.problem)
	b.WriteString(":\n")
	for _, v := range d.violations {
		b.WriteString("  - ")
		b.WriteString(violationLine(v))
		b.WriteByte('\n')
	}
	b.WriteString("Fix the manifest in Git; the same policies run before merge with: driftless check --config <driftless.yaml> --policy-set ")
	b.WriteString(r.policySet)
	b.WriteString(" <path>")
	return b.String()
}
