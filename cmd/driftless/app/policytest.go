package app

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftless-dev/driftless/policy"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with Rego policies",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newPolicyTestCommand())
	return cmd
}

func newPolicyTestCommand() *cobra.Command {
	o := policy.TestOptions{}
	var (
		params  []string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "test [flags] DIR...",
		Short: "Run the Rego unit tests (test_ rules) of policy directories",
		Long: `Run every test_ rule in the *_test.rego files of each DIR (directories are walked
recursively; .rego files may be named too), in-process, like opa test. Tests see
data.driftless.parameters (--param key=value, value as JSON or else a string) and may import
data.driftless.lib.kubernetes. --library adds the built-in rules and runs the library's own
tests; with --library alone it tests only the embedded library.

Prints every failing or erroring test with its file:line:col (every test with --verbose) and a
summary line.

Exit status: 0 when every test passes, 1 when a test fails or errors or none ran, 2 on usage
errors and when a policy does not compile (file:line:col).`,
		Example: `  driftless policy test policies
  driftless policy test --run 'owner' --param 'allowed_registries=["registry.example.com"]' policies
  driftless policy test --library`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 && !o.Library {
				return usageError(errors.New("missing DIR: name a policy directory, or use --library"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Run != "" {
				if _, err := regexp.Compile(o.Run); err != nil {
					return usageError(fmt.Errorf("--run %q: %w", o.Run, err))
				}
			}
			var err error
			if o.Parameters, err = parseParams(params); err != nil {
				return usageError(err)
			}
			o.Paths = args
			report, err := policy.RunTests(cmd.Context(), o)
			if err != nil {
				return &ExitError{Code: exitUsage, Err: policyError(err)}
			}
			if err := writeTestReport(cmd.OutOrStdout(), report, verbose); err != nil {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("write test report: %w", err)}
			}
			switch {
			case len(report.Results) == 0:
				return &ExitError{Code: exitFailed, Err: errors.New("no tests ran")}
			case !report.OK():
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("policy tests failed: %s", testSummary(report))}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&o.Run, "run", "", "run only tests whose full name (data.<package>.<test>) matches this regular expression")
	f.BoolVar(&o.Library, "library", false, "add the built-in library and run its own tests")
	f.StringArrayVar(&params, "param", nil, "policy parameter key=value, value as JSON or else a string (repeatable)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Second, "time limit for each test")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every test, not only failures")
	return cmd
}

// writeTestReport writes one line per failing or erroring test (per test when verbose),
//
//	FAIL policies/payments_test.rego:20:1: data.main.test_owner_required
//	  failed at policies/payments_test.rego:21:2: count(deny) == 1
//
// with the test's print() output indented below, then a summary line,
// "12 passed, 1 failed, 0 errored, 1 skipped".
func writeTestReport(w io.Writer, r policy.TestReport, verbose bool) error {
	var b strings.Builder
	for _, res := range r.Results {
		failed := res.Outcome == policy.TestFail || res.Outcome == policy.TestError
		if !failed && !verbose {
			continue
		}
		fmt.Fprintf(&b, "%s %s: data.%s.%s", strings.ToUpper(string(res.Outcome)), res.Location, res.Package, res.Name)
		if res.Err != nil {
			fmt.Fprintf(&b, ": %v", res.Err)
		}
		b.WriteString("\n")
		if res.FailedAt != "" {
			fmt.Fprintf(&b, "  failed at %s\n", res.FailedAt)
		}
		if failed && res.Output != "" {
			for _, line := range strings.Split(strings.TrimRight(res.Output, "\n"), "\n") {
				fmt.Fprintf(&b, "  | %s\n", line)
			}
		}
	}
	b.WriteString(testSummary(r))
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// testSummary returns "12 passed, 1 failed, 0 errored, 1 skipped".
func testSummary(r policy.TestReport) string {
	return fmt.Sprintf("%d passed, %d failed, %d errored, %d skipped", r.Passed, r.Failed, r.Errored, r.Skipped)
}
