package app

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageErrorsExitTwo: bad flags, bad arguments and names that are not commands could not
// decide anything, so every command exits 2 on them, as the root help says (diff's 1 would
// read as a difference). A command that only groups others prints its help and exits 0 when
// given nothing, and names what it does not know.
func TestUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{args: []string{"--bogus"}, wantCode: 2, want: "unknown flag: --bogus"},
		{args: []string{"chek"}, wantCode: 2, want: `unknown command "chek" for "driftless"; did you mean check? (driftless --help lists its commands)`},
		{args: []string{"get", "pods"}, wantCode: 2, want: `unknown command "pods" for "driftless get"`},
		{args: []string{"manifests", "foo"}, wantCode: 2, want: `unknown command "foo" for "driftless manifests"`},
		{args: []string{"policy", "tst"}, wantCode: 2, want: "did you mean test?"},
		{args: []string{"diff", "--bogus"}, wantCode: 2, want: "unknown flag: --bogus"},
		{args: []string{"status", "--bogus"}, wantCode: 2, want: "unknown flag: --bogus"},
		{args: []string{"audit", "--since", "yesterday"}, wantCode: 2, want: "yesterday"},
		{args: []string{"break-glass", "--for", "5"}, wantCode: 2, want: `invalid argument "5" for "--for" flag`},
		{args: []string{"version", "extra"}, wantCode: 2, want: "extra"},
		{args: nil, want: "Exit codes, for every command"},
		{args: []string{"get"}, want: "sources"},
		{args: []string{"policy"}, want: "test"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"driftless"}, tt.args...), " "), func(t *testing.T) {
			cmd := NewCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(tt.args)
			err := cmd.ExecuteContext(t.Context())
			code, text := 0, out.String()
			if err != nil {
				code, text = ExitCode(err), err.Error()
			}
			if code != tt.wantCode || !strings.Contains(text, tt.want) {
				t.Fatalf("exit %d, %q; want exit %d containing %q", code, text, tt.wantCode, tt.want)
			}
		})
	}
}
