package app

import (
	"bytes"
	"strings"
	"testing"
)

// TestBreakGlassUsage checks the help says how the command is used: --end is a switch on the
// object, --for has a default.
func TestBreakGlassUsage(t *testing.T) {
	cmd := newBreakGlassCommand()
	usage := cmd.UseLine()
	for _, want := range []string{"KIND/NAME (--reason REASON [--for DURATION, default 1h] | --end)", "--list", "--history"} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage %q does not say %q", usage, want)
		}
	}
	if strings.Contains(usage, "--end KIND/NAME") {
		t.Errorf("usage %q makes --end take KIND/NAME as its value; it is a switch", usage)
	}
	if got := cmd.Flags().Lookup("for").DefValue; got != "1h0m0s" {
		t.Errorf("--for defaults to %s, the usage says 1h", got)
	}
	var help bytes.Buffer
	cmd.SetOut(&help)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(help.String(), "how long the break-glass lasts, within the guard's maximum (default 1h0m0s)") {
		t.Errorf("the --for help does not state its default:\n%s", help.String())
	}
}

// TestBreakGlassFlagsOnlyWhereTheyMeanSomething: --reason and --for open a break-glass; with
// --end, --list or --history they would be ignored, so they are a usage error, refused before
// any request (the kubeconfig names a server nothing listens on).
func TestBreakGlassFlagsOnlyWhereTheyMeanSomething(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"end with a reason", []string{"configmap/x", "--end", "--reason", "INC-1"}, "--reason opens a break-glass; --end takes no --reason"},
		{"end with a duration", []string{"configmap/x", "--end", "--for", "5m"}, "--for opens a break-glass; --end takes no --for"},
		{"end with both", []string{"-n", "production", "configmap/x", "--end", "--reason", "x", "--for", "5m"}, "--end takes no --reason"},
		{"end with the default duration spelled out", []string{"configmap/x", "--end", "--for", "1h"}, "--end takes no --for"},
		{"list with a reason", []string{"--list", "--reason", "INC-1"}, "--list takes no --reason"},
		{"history with a duration", []string{"--history", "--for", "5m"}, "--history takes no --for"},
		{"two modes", []string{"configmap/x", "--end", "--list"}, "--list, --end and --history exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newBreakGlassCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append(tt.args, "--server", "https://127.0.0.1:1", "--request-timeout", "1s"))
			err := cmd.ExecuteContext(t.Context())
			if err == nil || ExitCode(err) != exitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (exit code %d), want a usage error (exit code %d) saying %q\n%s", err, ExitCode(err), exitUsage, tt.want, out.String())
			}
		})
	}
}
