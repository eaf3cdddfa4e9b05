package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The sandbox: policies must decide the same way in CI, in the reconciler and at admission,
// so they may call only built-ins whose result depends on their arguments alone. The allowed
// set is an allow-list, OPA's built-ins for this version minus every one OPA marks
// non-deterministic (time.now_ns, rand.intn, uuid.rfc4122, http.send, net.lookup_ip_addr,
// opa.runtime, io.jwt.encode_sign, JSON schema checks that may fetch a $ref, ...) and the few
// that read the clock without saying so; a built-in a newer OPA adds is allowed only if OPA
// declares it deterministic. trace and print stay allowed: they do not change a decision.

// refused reports whether policies may not call b.
func refused(b *ast.Builtin) bool {
	switch b.Name {
	case ast.CryptoX509ParseAndVerifyCertificates.Name, ast.CryptoX509ParseAndVerifyCertificatesWithOptions.Name:
		// They check validity against the current time, though OPA does not mark them.
		return true
	}
	return b.Nondeterministic
}

// capabilities returns the compiler capabilities of the sandbox: OPA's for this version with
// only the allowed built-ins, plus extra (Driftless' own built-ins).
func capabilities(extra ...*ast.Builtin) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	allowed := make([]*ast.Builtin, 0, len(caps.Builtins)+len(extra))
	for _, b := range caps.Builtins {
		if !refused(b) {
			allowed = append(allowed, b)
		}
	}
	caps.Builtins = append(allowed, extra...)
	return caps
}

// refusedCalls returns a Problem at every call of a refused built-in in modules, so that the
// author reads which built-in is refused and why rather than OPA's "undefined function".
func refusedCalls(modules map[string]*ast.Module) []Problem {
	var problems []Problem
	report := func(operator *ast.Term, loc *ast.Location) {
		ref, ok := operator.Value.(ast.Ref)
		if !ok {
			return
		}
		b, ok := ast.BuiltinMap[ref.String()]
		if !ok || !refused(b) {
			return
		}
		p := Problem{Message: fmt.Sprintf("%s: %s is not allowed in policies: its result depends on more than its arguments (the clock, randomness, the network or the environment), and a policy must decide the same way in CI, in the reconciler and at admission", ast.CompileErr, b.Name)}
		if loc != nil {
			p.File, p.Line, p.Col = loc.File, loc.Row, loc.Col
		}
		problems = append(problems, p)
	}
	for _, m := range modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				report(e.OperatorTerm(), e.Location)
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
				report(call[0], t.Location)
			}
			return false
		})
	}
	return problems
}
