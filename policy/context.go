package policy

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// How data.driftless.context reaches prepared queries: the engine compiles
// one extra module,
//
//	package driftless
//	context := driftless.internal.context()
//
// whose builtin returns the EvalContext that Evaluate stored in the Go
// context of the evaluation. The document is computed once per evaluation
// (virtual-document cache) and policies read it like any other data, so unit
// tests can still replace it with `with data.driftless.context as {...}`.
// RunTests does not load the module: there data.driftless.context is an
// empty EvalContext in the store, the same value Evaluate gives it by default.

const (
	// contextBuiltinName is the builtin behind data.driftless.context.
	contextBuiltinName = "driftless.internal.context"
	// contextModuleName names the generated module in problems.
	contextModuleName = builtinPrefix + "driftless/context.rego"
	// contextModule defines data.driftless.context for the engine.
	contextModule = `package driftless

# context is the EvalContext of the current evaluation.
context := driftless.internal.context()
`
)

// evalContextKey carries an evaluation's context term in its context.Context.
type evalContextKey struct{}

// withEvalContext returns ctx carrying the term the context builtin returns.
func withEvalContext(ctx context.Context, term *ast.Term) context.Context {
	return context.WithValue(ctx, evalContextKey{}, term)
}

// contextBuiltin declares the builtin for the compiler.
func contextBuiltin() *ast.Builtin {
	return &ast.Builtin{Name: contextBuiltinName, Decl: types.NewFunction(nil, types.A)}
}

// contextFunction registers the builtin's implementation with rego.
func contextFunction() func(*rego.Rego) {
	return rego.FunctionDyn(&rego.Function{
		Name:    contextBuiltinName,
		Decl:    types.NewFunction(nil, types.A),
		Memoize: true,
	}, func(bctx rego.BuiltinContext, _ []*ast.Term) (*ast.Term, error) {
		if t, ok := bctx.Context.Value(evalContextKey{}).(*ast.Term); ok {
			return t, nil
		}
		return EvalContext{}.term(), nil
	})
}

// term renders the context the way policies see data.driftless.context.
func (ec EvalContext) term() *ast.Term {
	groups := make([]*ast.Term, len(ec.User.Groups))
	for i, g := range ec.User.Groups {
		groups[i] = ast.StringTerm(g)
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("source"), ast.StringTerm(ec.Source)),
		ast.Item(ast.StringTerm("environment"), ast.StringTerm(ec.Environment)),
		ast.Item(ast.StringTerm("operation"), ast.StringTerm(ec.Operation)),
		ast.Item(ast.StringTerm("user"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("username"), ast.StringTerm(ec.User.Username)),
			ast.Item(ast.StringTerm("groups"), ast.ArrayTerm(groups...)),
		)),
	)
}
