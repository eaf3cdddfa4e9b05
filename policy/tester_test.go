package policy

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRunTests(t *testing.T) {
	dir := filepath.Join("testdata", "regotests")
	file := filepath.Join(dir, "labels_test.rego")
	report, err := RunTests(t.Context(), TestOptions{Paths: []string{dir}, Parameters: map[string]any{"team": "shop"}})
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if report.Passed != 3 || report.Failed != 1 || report.Errored != 1 || report.Skipped != 1 || report.OK() {
		t.Errorf("report = %d passed, %d failed, %d errored, %d skipped, OK %v; want 3, 1, 1, 1, false",
			report.Passed, report.Failed, report.Errored, report.Skipped, report.OK())
	}
	tests := []struct {
		name     string
		outcome  TestOutcome
		location string
	}{
		{"test_missing_team_denied", TestPass, file + ":5:1"},
		{"test_team_label_passes", TestPass, file + ":9:1"},
		{"test_expectation_is_wrong", TestFail, file + ":14:1"},
		{"test_runtime_error", TestError, file + ":18:1"},
		{"todo_test_later", TestSkip, file + ":26:1"},
		{"test_parameters_visible", TestPass, file + ":30:1"},
	}
	if len(report.Results) != len(tests) {
		t.Fatalf("results = %v, want %d", report.Results, len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := report.Results[i]
			if got.Package != "team.labels_test" || got.Name != tc.name || got.Outcome != tc.outcome || got.Location != tc.location {
				t.Errorf("result = %+v, want %s %s at %s", got, tc.name, tc.outcome, tc.location)
			}
			if (got.Err != nil) != (tc.outcome == TestError) {
				t.Errorf("Err = %v for outcome %s", got.Err, got.Outcome)
			}
		})
	}
	var failed []string
	for _, f := range report.Failures() {
		failed = append(failed, f.Name)
	}
	if want := []string{"test_expectation_is_wrong", "test_runtime_error"}; !slices.Equal(failed, want) {
		t.Errorf("Failures() = %v, want %v", failed, want)
	}
	if s := report.Failures()[0].String(); !strings.HasPrefix(s, file+":14:1: data.team.labels_test.test_expectation_is_wrong: fail") {
		t.Errorf("String() = %q", s)
	}
}

func TestRunTestsOptions(t *testing.T) {
	dir := filepath.Join("testdata", "regotests")
	tests := []struct {
		name       string
		opts       TestOptions
		wantPassed int
		wantFailed int
	}{
		{"filter", TestOptions{Paths: []string{dir}, Run: "team_label|missing_team"}, 2, 0},
		{"conftest policy tests", TestOptions{Paths: []string{filepath.Join("testdata", "conftest")}}, 3, 0},
		{"library with user tests", TestOptions{Paths: []string{dir}, Library: true, Run: `team\.labels_test\.test_(missing|team)|images_pinned_test`}, 9, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			report, err := RunTests(t.Context(), tc.opts)
			if err != nil {
				t.Fatalf("RunTests: %v", err)
			}
			if report.Passed != tc.wantPassed || report.Failed != tc.wantFailed || report.Errored != 0 {
				t.Errorf("passed %d, failed %d, errored %d; want %d, %d, 0\n%v", report.Passed, report.Failed, report.Errored, tc.wantPassed, tc.wantFailed, report.Results)
			}
		})
	}
}

func TestRunTestsErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		ctx     func(t *testing.T) context.Context
		want    string
		wantLoc string
	}{
		{
			name:    "broken test file",
			files:   map[string]string{"p_test.rego": "package p_test\n\ntest_x if {\n\t1 ==\n}\n"},
			wantLoc: "p_test.rego:5:1",
		},
		{
			name:    "test calling an unknown function",
			files:   map[string]string{"p_test.rego": "package p_test\n\ntest_x if {\n\tnope(1)\n}\n"},
			wantLoc: "p_test.rego:4:2",
		},
		{
			name:    "test calling the clock",
			files:   map[string]string{"p_test.rego": "package p_test\n\ntest_x if {\n\ttime.now_ns() > 0\n}\n"},
			want:    "time.now_ns is not allowed in policies",
			wantLoc: "p_test.rego:4:2",
		},
		{
			name:  "cancelled",
			files: map[string]string{"p_test.rego": "package p_test\n\ntest_x if true\n"},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			want: context.Canceled.Error(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			_, err := RunTests(ctx, TestOptions{Paths: []string{dir}})
			if err == nil {
				t.Fatal("RunTests succeeded, want an error")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
			if tc.wantLoc != "" {
				var ce *CompileError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v (%T) is not a *CompileError", err, err)
				}
				if !strings.HasPrefix(ce.Problems[0].String(), filepath.Join(dir, tc.wantLoc)) {
					t.Errorf("problem = %q, want it to start with %s", ce.Problems[0], filepath.Join(dir, tc.wantLoc))
				}
			}
		})
	}
}
