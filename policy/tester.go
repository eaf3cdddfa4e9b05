package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions says which Rego unit tests RunTests runs.
type TestOptions struct {
	// Paths are directories (walked recursively) or .rego files holding
	// policies and their *_test.rego files.
	Paths []string
	// Library adds the built-in rules and runs the library's own tests too.
	// Without it user tests can still import data.driftless.lib.kubernetes.
	Library bool
	// Parameters become data.driftless.parameters, as in Options.
	Parameters map[string]any
	// Run, when set, is a regular expression selecting tests by their full
	// name (data.<package>.<test>), like `opa test --run`.
	Run string
	// Timeout bounds each test; zero means 5 seconds.
	Timeout time.Duration
}

// TestOutcome is the outcome of one Rego test.
type TestOutcome string

const (
	// TestPass means the test rule was true.
	TestPass TestOutcome = "pass"
	// TestFail means the test rule was false or undefined.
	TestFail TestOutcome = "fail"
	// TestError means evaluation failed (for example a runtime error or a
	// timeout).
	TestError TestOutcome = "error"
	// TestSkip means the test is named todo_test_...
	TestSkip TestOutcome = "skip"
)

// TestResult is the outcome of one test_ rule.
type TestResult struct {
	// Package is the test's Rego package, for example
	// "driftless.library.images_pinned_test".
	Package string
	// Name is the test rule's name, for example "test_latest_tag_denied".
	Name string
	// Location is where the test rule starts, as file:line:col.
	Location string
	// Outcome is pass, fail, error or skip.
	Outcome TestOutcome
	// Err is the evaluation error of a TestError outcome.
	Err error
	// FailedAt is the expression a TestFail outcome stopped at, as
	// "file:line:col: expression", when OPA reports it.
	FailedAt string
	// Output is what the test printed with print().
	Output string
	// Duration is how long the test ran.
	Duration time.Duration

	// file, line and col order results.
	file      string
	line, col int
}

// String returns "location: data.package.name: outcome".
func (r TestResult) String() string {
	s := fmt.Sprintf("%s: data.%s.%s: %s", r.Location, r.Package, r.Name, r.Outcome)
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	if r.FailedAt != "" {
		s += " at " + r.FailedAt
	}
	return s
}

// TestReport sums up one RunTests call.
type TestReport struct {
	// Passed, Failed, Errored and Skipped count the results by outcome.
	Passed, Failed, Errored, Skipped int
	// Results are sorted by package, then location.
	Results []TestResult
}

// OK reports whether no test failed or errored.
func (r TestReport) OK() bool {
	return r.Failed == 0 && r.Errored == 0
}

// Failures returns the results that failed or errored.
func (r TestReport) Failures() []TestResult {
	var out []TestResult
	for _, res := range r.Results {
		if res.Outcome == TestFail || res.Outcome == TestError {
			out = append(out, res)
		}
	}
	return out
}

func formatLocation(loc *ast.Location) string {
	return fmt.Sprintf("%s:%d:%d", loc.File, loc.Row, loc.Col)
}

// defaultTestTimeout bounds one test when TestOptions.Timeout is zero.
const defaultTestTimeout = 5 * time.Second

// RunTests runs every test_ rule in opts' policies in-process, like
// `opa test`, and reports each outcome. It returns an error, and no report,
// when the modules do not load or compile (a *CompileError naming
// file:line:col) or when ctx ends first. Failing tests are not an error: see
// TestReport.OK.
func RunTests(ctx context.Context, opts TestOptions) (TestReport, error) {
	srcs, err := librarySources(func(string) bool { return opts.Library }, opts.Library)
	if err != nil {
		return TestReport{}, err
	}
	userSrcs, err := readPaths(opts.Paths)
	if err != nil {
		return TestReport{}, err
	}
	srcs = append(srcs, userSrcs...)
	modules, err := parseSources(srcs)
	if err != nil {
		return TestReport{}, err
	}
	store, err := newStore(opts.Parameters, true)
	if err != nil {
		return TestReport{}, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = defaultTestTimeout
	}

	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return TestReport{}, fmt.Errorf("open policy store: %w", err)
	}
	defer store.Abort(ctx, txn)

	if problems := refusedCalls(modules); len(problems) > 0 {
		return TestReport{}, newCompileError(problems)
	}
	runner := tester.NewRunner().
		SetCompiler(newCompiler().WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		SetTimeout(timeout).
		Filter(opts.Run)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		var astErrs ast.Errors
		if errors.As(err, &astErrs) {
			return TestReport{}, newCompileError(problemsFrom(err))
		}
		return TestReport{}, fmt.Errorf("run policy tests: %w", err)
	}

	var report TestReport
	for r := range ch {
		res := TestResult{
			Package:  strings.TrimPrefix(r.Package, "data."),
			Name:     r.Name,
			Output:   string(r.Output),
			Duration: r.Duration,
		}
		if r.Location != nil {
			res.Location = formatLocation(r.Location)
			res.file, res.line, res.col = r.Location.File, r.Location.Row, r.Location.Col
		}
		if r.FailedAt != nil && r.FailedAt.Location != nil {
			res.FailedAt = formatLocation(r.FailedAt.Location) + ": " + r.FailedAt.String()
		}
		switch {
		case r.Skip:
			res.Outcome = TestSkip
			report.Skipped++
		case r.Error != nil:
			res.Outcome, res.Err = TestError, r.Error
			report.Errored++
		case r.Fail:
			res.Outcome = TestFail
			report.Failed++
		default:
			res.Outcome = TestPass
			report.Passed++
		}
		report.Results = append(report.Results, res)
	}
	if err := ctx.Err(); err != nil {
		return TestReport{}, fmt.Errorf("run policy tests: %w", err)
	}
	sort.Slice(report.Results, func(i, j int) bool {
		a, b := report.Results[i], report.Results[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.col < b.col
	})
	return report, nil
}
