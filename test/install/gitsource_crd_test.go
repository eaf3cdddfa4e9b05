package install

import (
	"strings"
	"testing"
)

// TestGitSourceValidation has the API server check GitSources against the generated
// CustomResourceDefinition (config/crd): its OpenAPI schema, defaults and CEL rules.
func TestGitSourceValidation(t *testing.T) {
	ctx := t.Context()
	const head = "apiVersion: driftless.dev/v1alpha1\nkind: GitSource\nmetadata:\n  name: x\n  namespace: default\nspec:\n"
	tests := []struct {
		name string
		spec string
		// wantErr is part of the API server's message; empty means accepted.
		wantErr string
	}{
		{"minimal", "  url: https://git.example.com/config.git\n", ""},
		{"local path", "  url: /srv/git/config\n", ""},
		{"branch", "  url: https://git.example.com/c.git\n  ref: {branch: prod}\n", ""},
		{"two refs", "  url: https://git.example.com/c.git\n  ref: {branch: prod, tag: v1}\n", "exactly one of branch, tag or commit"},
		{"empty ref", "  url: https://git.example.com/c.git\n  ref: {}\n", "exactly one of branch, tag or commit"},
		{"short commit", "  url: https://git.example.com/c.git\n  ref: {commit: abc123}\n", "spec.ref.commit"},
		{"ftp url", "  url: ftp://git.example.com/c.git\n", "url must start with"},
		{"password in url", "  url: https://me:secret@git.example.com/c.git\n", "must not carry a password"},
		{"interval too short", "  url: https://git.example.com/c.git\n  interval: 500ms\n", "interval must be at least 1s"},
		{"zero timeout", "  url: https://git.example.com/c.git\n  timeout: 0s\n", "timeout must be more than 0"},
		{"absolute path", "  url: https://git.example.com/c.git\n  path: /etc\n", "relative path"},
		{"parent path", "  url: https://git.example.com/c.git\n  path: ../x\n", "relative path"},
		{"verify both", "  url: https://git.example.com/c.git\n  verify: {secretRef: {name: a}, configMapRef: {name: b}}\n", "exactly one of secretRef or configMapRef"},
		{"verify none", "  url: https://git.example.com/c.git\n  verify: {}\n", "exactly one of secretRef or configMapRef"},
		{"bad target namespace", "  url: https://git.example.com/c.git\n  targetNamespace: Prod\n", "spec.targetNamespace"},
		{"no url", "  path: .\n", "spec.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cp.Admin.KubectlWith(ctx, []byte(head+tt.spec), nil, "create", "--dry-run=server", "-o", "yaml", "-f", "-")
			switch {
			case tt.wantErr == "" && r.Err != nil:
				t.Fatalf("rejected: %v\n%s", r.Err, r.Combined())
			case tt.wantErr != "" && r.Err == nil:
				t.Fatalf("accepted, want an error containing %q:\n%s", tt.wantErr, r.Stdout)
			case tt.wantErr != "" && !strings.Contains(r.Stderr, tt.wantErr):
				t.Fatalf("error does not contain %q:\n%s", tt.wantErr, r.Stderr)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		r := cp.Admin.KubectlWith(ctx, []byte(head+"  url: https://git.example.com/c.git\n"), nil, "create", "--dry-run=server", "-o", "jsonpath={.spec.ref.branch} {.spec.interval} {.spec.timeout} {.spec.prune} {.spec.selfHeal}", "-f", "-")
		if r.Err != nil {
			t.Fatalf("%v\n%s", r.Err, r.Combined())
		}
		if want := "main 1m 5m true true"; r.Stdout != want {
			t.Errorf("defaults are %q, want %q", r.Stdout, want)
		}
	})

	t.Run("printer columns", func(t *testing.T) {
		r := cp.Admin.Kubectl(ctx, "get", "gitsources", "-A")
		if r.Err != nil {
			t.Fatalf("%v\n%s", r.Err, r.Combined())
		}
		r = cp.Admin.KubectlWith(ctx, []byte(head+"  url: https://git.example.com/c.git\n"), nil, "create", "--dry-run=server", "-f", "-", "-o", "name")
		if r.Err != nil {
			t.Fatalf("%v\n%s", r.Err, r.Combined())
		}
		r = cp.Admin.Kubectl(ctx, "get", "crd", "gitsources.driftless.dev", "-o", "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}")
		if want := "Ready Revision Last Sync Age Message URL Suspended"; r.Stdout != want {
			t.Errorf("printer columns are %q, want %q", r.Stdout, want)
		}
	})
}
