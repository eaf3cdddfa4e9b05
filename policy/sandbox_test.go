package policy

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestSandboxKeepsDeterministicBuiltins loads a policy that calls deterministic built-ins,
// trace and print among them, and the Driftless context, and checks it decides.
func TestSandboxKeepsDeterministicBuiltins(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.rego", `package main

deny contains msg if {
	trace("checking the expiry")
	print("checking", input.metadata.name)
	until := time.parse_rfc3339_ns(input.metadata.annotations.until)
	until < time.parse_rfc3339_ns("2030-01-01T00:00:00Z")
	uuid.parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8").version == 1
	regex.match("^pay", input.metadata.name)
	msg := sprintf("%s expires in %s (%s)", [input.metadata.name, data.driftless.context.environment, crypto.sha256("x")])
}
`)
	e := loadEngine(t, Options{DisableLibrary: true, Paths: []string{dir}})
	res, err := e.Evaluate(t.Context(), map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "payments", "annotations": map[string]any{"until": "2026-01-01T00:00:00Z"}},
	}, EvalContext{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	want := "payments expires in production (2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881)"
	if got := messages(res); !slices.Equal(got, []string{want}) {
		t.Errorf("messages = %q, want %q", got, want)
	}
}

// TestSandboxRefusesEveryNondeterministicBuiltin checks the allow-list against OPA's own
// marks: no built-in OPA calls non-deterministic is allowed.
func TestSandboxRefusesEveryNondeterministicBuiltin(t *testing.T) {
	allowed := map[string]bool{}
	for _, b := range capabilities().Builtins {
		allowed[b.Name] = true
	}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if b.Nondeterministic && allowed[b.Name] {
			t.Errorf("the sandbox allows %s, which OPA marks non-deterministic", b.Name)
		}
	}
	for _, name := range []string{"http.send", "time.now_ns", "rand.intn", "uuid.rfc4122", "net.lookup_ip_addr", "opa.runtime", "io.jwt.encode_sign", "crypto.x509.parse_and_verify_certificates"} {
		if allowed[name] {
			t.Errorf("the sandbox allows %s", name)
		}
	}
	for _, name := range []string{"trace", "print", "sprintf", "time.parse_rfc3339_ns", "regex.match", "uuid.parse"} {
		if !allowed[name] {
			t.Errorf("the sandbox refuses %s, which is deterministic", name)
		}
	}
}
