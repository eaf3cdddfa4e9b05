package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/webhook"
)

// policySets holds one compiled engine per configured policy set, shared by the reconciler's
// gate and the guard. A reload recompiles every set in place; a set that does not compile
// keeps serving its last good version.
type policySets struct {
	mu       sync.RWMutex
	engines  map[string]*policy.Engine
	contexts map[string]policy.EvalContext
	// guardSet is the set the guard evaluates at admission, empty for none.
	guardSet string
}

var (
	_ reconciler.Gate         = (*policySets)(nil)
	_ webhook.PolicyEvaluator = (*policySets)(nil)
)

func newPolicySets() *policySets {
	return &policySets{engines: map[string]*policy.Engine{}, contexts: map[string]policy.EvalContext{}}
}

// load compiles every policy set of c. It returns the problems of the sets that did not
// compile, each naming its set; the others are swapped in.
func (p *policySets) load(ctx context.Context, c *v1alpha1.DriftlessConfig) error {
	var errs []error
	for _, ps := range c.PolicySets {
		opts, ec, err := policy.OptionsFromConfig(ps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.mu.Lock()
		engine, ok := p.engines[ps.Name]
		if !ok {
			engine = policy.New()
			p.engines[ps.Name] = engine
		}
		p.contexts[ps.Name] = ec
		p.mu.Unlock()
		if err := engine.Load(ctx, opts); err != nil {
			errs = append(errs, fmt.Errorf("load policy set %q: %w", ps.Name, err))
		}
	}
	p.mu.Lock()
	p.guardSet = c.Guard.PolicySet
	p.mu.Unlock()
	return errors.Join(errs...)
}

func (p *policySets) get(name string) (*policy.Engine, policy.EvalContext, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	engine, ok := p.engines[name]
	if !ok {
		return nil, policy.EvalContext{}, fmt.Errorf("policy set %q is not configured", name)
	}
	return engine, p.contexts[name], nil
}

// Evaluate evaluates obj against the guard's admission policy set.
func (p *policySets) Evaluate(ctx context.Context, obj map[string]any, ec policy.EvalContext) (policy.Result, error) {
	p.mu.RLock()
	engine, ok := p.engines[p.guardSet]
	name := p.guardSet
	p.mu.RUnlock()
	if !ok {
		return policy.Result{}, fmt.Errorf("policy set %q is not configured", name)
	}
	return engine.Evaluate(ctx, obj, ec)
}

// Check is the reconciler's gate: every object of a revision against the source's set.
func (p *policySets) Check(ctx context.Context, policySet string, objs []*unstructured.Unstructured) ([]reconciler.Violation, error) {
	engine, ec, err := p.get(policySet)
	if err != nil {
		return nil, err
	}
	inputs := make([]map[string]any, len(objs))
	for i, o := range objs {
		inputs[i] = o.Object
	}
	results, err := engine.EvaluateAll(ctx, inputs, ec)
	if err != nil {
		return nil, fmt.Errorf("policy set %q: %w", policySet, err)
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
}
