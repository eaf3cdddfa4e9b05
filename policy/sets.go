package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Sets holds one compiled Engine per configured policy set, so that the reconciler's gate
// and the guard evaluate one compilation of each set. Load recompiles every set in place; a
// set that does not compile keeps serving its last good version. Sets is safe for concurrent
// use.
type Sets struct {
	mu       sync.RWMutex
	engines  map[string]*Engine
	contexts map[string]EvalContext
	// guardSet is the set the guard evaluates at admission, empty for none.
	guardSet string
}

// NewSets returns Sets without any policy set: every evaluation fails until Load.
func NewSets() *Sets {
	return &Sets{engines: map[string]*Engine{}, contexts: map[string]EvalContext{}}
}

// Load compiles every policy set of c and makes c's guard.policySet the one Evaluate uses.
// It returns the problems of the sets that did not compile, each naming its set; the others
// are swapped in.
func (s *Sets) Load(ctx context.Context, c *v1alpha1.DriftlessConfig) error {
	var errs []error
	for _, ps := range c.PolicySets {
		opts, ec, err := OptionsFromConfig(ps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		engine, ok := s.engines[ps.Name]
		if !ok {
			engine = New()
			s.engines[ps.Name] = engine
		}
		s.contexts[ps.Name] = ec
		s.mu.Unlock()
		if err := engine.Load(ctx, opts); err != nil {
			errs = append(errs, fmt.Errorf("load policy set %q: %w", ps.Name, err))
		}
	}
	s.mu.Lock()
	s.guardSet = c.Guard.PolicySet
	s.mu.Unlock()
	return errors.Join(errs...)
}

// get returns the engine and the evaluation context of the named set.
func (s *Sets) get(name string) (*Engine, EvalContext, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	engine, ok := s.engines[name]
	if !ok {
		return nil, EvalContext{}, fmt.Errorf("policy set %q is not configured", name)
	}
	return engine, s.contexts[name], nil
}

// Evaluate evaluates obj against the guard's admission policy set (guard.policySet), with
// ec as given. A set that is not configured is an error, so the guard fails closed.
func (s *Sets) Evaluate(ctx context.Context, obj map[string]any, ec EvalContext) (Result, error) {
	s.mu.RLock()
	name := s.guardSet
	s.mu.RUnlock()
	engine, _, err := s.get(name)
	if err != nil {
		return Result{}, err
	}
	return engine.Evaluate(ctx, obj, ec)
}

// EvaluateAll evaluates every object of one revision against the named set, with the set's
// evaluation context (its environment), as the reconciler's gate does; results[i] is the
// result of objs[i]. A set that is not configured is an error.
func (s *Sets) EvaluateAll(ctx context.Context, name string, objs []map[string]any) ([]Result, error) {
	engine, ec, err := s.get(name)
	if err != nil {
		return nil, err
	}
	results, err := engine.EvaluateAll(ctx, objs, ec)
	if err != nil {
		return nil, fmt.Errorf("policy set %q: %w", name, err)
	}
	return results, nil
}
