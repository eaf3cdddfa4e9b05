package server

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
)

// Gate is the reconciler's policy gate on sets: every object of a revision against the
// source's policy set, each denial a reconciler.Violation. `driftless run` and `driftless
// diff` gate with it.
func Gate(sets *policy.Sets) reconciler.Gate {
	return reconciler.GateFunc(func(ctx context.Context, policySet string, objs []*unstructured.Unstructured) ([]reconciler.Violation, error) {
		inputs := make([]map[string]any, len(objs))
		for i, o := range objs {
			inputs[i] = o.Object
		}
		results, err := sets.EvaluateAll(ctx, policySet, inputs)
		if err != nil {
			return nil, err
		}
		var out []reconciler.Violation
		for i, res := range results {
			for _, v := range res.Denials() {
				o := objs[i]
				name := o.GetKind() + " " + o.GetName()
				if o.GetNamespace() != "" {
					name = o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
				}
				out = append(out, reconciler.Violation{Object: name, Rule: v.RuleID(), Message: v.Message})
			}
		}
		return out, nil
	})
}
