package reconciler

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Gate decides whether a rendered revision may be applied. The policy package is adapted to
// it; a test can implement it with a plain function.
type Gate interface {
	// Check evaluates the policy set named policySet against every object of one revision,
	// as rendered, and returns every violation. An error means the gate could not decide; the
	// revision is then not applied either.
	Check(ctx context.Context, policySet string, objs []*unstructured.Unstructured) ([]Violation, error)
}

// GateFunc adapts a function to [Gate].
type GateFunc func(ctx context.Context, policySet string, objs []*unstructured.Unstructured) ([]Violation, error)

// Check implements [Gate].
func (f GateFunc) Check(ctx context.Context, policySet string, objs []*unstructured.Unstructured) ([]Violation, error) {
	return f(ctx, policySet, objs)
}

// Violation is one policy rule one object breaks.
type Violation struct {
	// Object names the object, such as "Deployment.apps prod/web".
	Object string `json:"object"`
	// Rule names the policy rule.
	Rule string `json:"rule"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// String formats the violation as "object: rule: message".
func (v Violation) String() string {
	return fmt.Sprintf("%s: %s: %s", v.Object, v.Rule, v.Message)
}

// formatViolations lists violations one a line.
func formatViolations(vs []Violation) string {
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = v.String()
	}
	return strings.Join(lines, "\n")
}
