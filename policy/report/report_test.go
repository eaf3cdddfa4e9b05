package report

import (
	"bytes"
	"testing"

	"github.com/driftless-dev/driftless/policy"
)

func TestSARIFURI(t *testing.T) {
	tests := []struct{ file, want string }{
		{"base/deployment.yaml", "base/deployment.yaml"},
		{"apps/my app/web.yaml", "apps/my%20app/web.yaml"},
		{"a:b/web.yaml", "./a:b/web.yaml"},
		{"/tmp/repo/web.yaml", "file:///tmp/repo/web.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if got := sarifURI(tt.file); got != tt.want {
				t.Errorf("sarifURI(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		s    Summary
		want string
	}{
		{Summary{}, "0 denials, 0 warnings in 0 objects"},
		{Summary{Objects: 1, Denials: 1, Warnings: 1}, "1 denial, 1 warning in 1 object"},
		{Summary{Objects: 12, Denials: 3, Warnings: 1}, "3 denials, 1 warning in 12 objects"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRuleID(t *testing.T) {
	tests := []struct{ pkg, rule, want string }{
		{"driftless.library.images_pinned", "deny", "images_pinned"},
		{"driftless.library.images_pinned", "warn", "images_pinned.warn"},
		{"main", "deny", "main.deny"},
		{"kubernetes.admission", "deny_latest_tag", "kubernetes.admission.deny_latest_tag"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := policy.RuleID(tt.pkg, tt.rule); got != tt.want {
				t.Errorf("RuleID(%q, %q) = %q, want %q", tt.pkg, tt.rule, got, tt.want)
			}
		})
	}
}

// TestTextReportIsOneLinePerViolation checks that multi-line messages stay on their line.
func TestTextReportIsOneLinePerViolation(t *testing.T) {
	r := &Report{Targets: []Target{{Path: "p", Objects: []ObjectReport{{
		File: "a.yaml", Line: 3, Kind: "ConfigMap", Namespace: "ns", Name: "c",
		Violations: []ViolationReport{{RuleID: "main.deny", Severity: "deny", Message: "first\n  second"}},
	}}}}}
	r.Finish()
	var b bytes.Buffer
	if err := writeText(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "a.yaml:3: deny main.deny: ConfigMap ns/c: first second\n1 denial, 0 warnings in 1 object\n"
	if b.String() != want {
		t.Errorf("text = %q, want %q", b.String(), want)
	}
}
