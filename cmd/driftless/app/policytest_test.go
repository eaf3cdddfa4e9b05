package app

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyTest(t *testing.T) {
	samplePolicies := filepath.Join(sampleRepo, "policies")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
		notStdout  []string
	}{
		{
			name:       "sample policies pass",
			args:       []string{samplePolicies},
			wantStdout: []string{"5 passed, 0 failed, 0 errored, 0 skipped\n"},
			notStdout:  []string{"PASS", "FAIL"},
		},
		{
			name: "--verbose lists every test",
			args: []string{"--verbose", samplePolicies},
			wantStdout: []string{
				"PASS " + filepath.ToSlash(samplePolicies) + "/payments_test.rego:19:1: data.main.test_production_configmap_without_owner_denied\n",
				"5 passed, 0 failed, 0 errored, 0 skipped\n",
			},
		},
		{
			name:       "--run selects tests",
			args:       []string{"--run", "configmap", samplePolicies},
			wantStdout: []string{"3 passed, 0 failed, 0 errored, 0 skipped\n"},
		},
		{
			name:       "the built-in library's own tests",
			args:       []string{"--library"},
			wantStdout: []string{" passed, 0 failed, 0 errored, 0 skipped\n"},
		},
		{
			name:       "sample policies with the library",
			args:       []string{"--library", samplePolicies},
			wantStdout: []string{" passed, 0 failed, 0 errored, 0 skipped\n"},
		},
		{
			name: "a failing test is named with file:line",
			args: []string{"testdata/policytest/failing"},
			wantStdout: []string{
				"FAIL testdata/policytest/failing/labels_test.rego:10:1: data.team.labels_test.test_unlabelled_pod_allowed\n",
				"FAIL testdata/policytest/failing/labels_test.rego:14:1: data.team.labels_test.test_parameter_team\n",
				"1 passed, 2 failed, 0 errored, 0 skipped\n",
			},
			notStdout:  []string{"test_missing_team_denied"},
			wantStderr: []string{"driftless: policy tests failed: 1 passed, 2 failed, 0 errored, 0 skipped"},
			wantCode:   1,
		},
		{
			name:       "--param reaches the tests",
			args:       []string{"--param", "team=payments", "testdata/policytest/failing"},
			wantStdout: []string{"2 passed, 1 failed, 0 errored, 0 skipped\n"},
			notStdout:  []string{"test_parameter_team"},
			wantCode:   1,
		},
		{
			name:       "no test matches --run",
			args:       []string{"--run", "nothing_matches", samplePolicies},
			wantStderr: []string{"driftless: no tests ran"},
			wantCode:   1,
		},
		{
			name:       "broken Rego names file:line:col",
			args:       []string{"testdata/policytest/broken"},
			wantStderr: []string{"driftless: compile policies: testdata/policytest/broken/owner_test.rego:4:17: rego_parse_error: unexpected equal token"},
			wantCode:   2,
		},
		{name: "no DIR", args: nil, wantStderr: []string{"missing DIR"}, wantCode: 2},
		{name: "missing DIR", args: []string{"testdata/policytest/none"}, wantStderr: []string{"testdata/policytest/none"}, wantCode: 2},
		{name: "bad --run", args: []string{"--run", "(", samplePolicies}, wantStderr: []string{`--run "(": error parsing regexp`}, wantCode: 2},
		{name: "unknown flag", args: []string{"--frobnicate", samplePolicies}, wantStderr: []string{"unknown flag: --frobnicate"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runDriftless(t, append([]string{"policy", "test"}, tt.args...)...)
			got.expect(t, tt.wantCode, tt.wantStdout, tt.notStdout, tt.wantStderr)
		})
	}
}

func TestPolicyCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{name: "help", args: []string{"policy"}, want: "test"},
		{name: "unknown subcommand", args: []string{"policy", "lint"}, wantCode: 2, want: `unknown command "lint" for "driftless policy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runDriftless(t, tt.args...)
			if got.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", got.code, tt.wantCode)
			}
			if !strings.Contains(got.stdout+got.stderr, tt.want) {
				t.Errorf("output does not contain %q:\n%s%s", tt.want, got.stdout, got.stderr)
			}
		})
	}
}
