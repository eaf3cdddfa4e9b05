package app

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftless-dev/driftless/policy"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with Rego policies",
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
			if err := report.Write(cmd.OutOrStdout(), verbose); err != nil {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("write test report: %w", err)}
			}
			switch {
			case len(report.Results) == 0:
				return &ExitError{Code: exitFailed, Err: errors.New("no tests ran")}
			case !report.OK():
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("policy tests failed: %s", report.Summary())}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Run, "run", "", "run only tests whose full name (data.<package>.<test>) matches this regular expression")
	f.BoolVar(&o.Library, "library", false, "add the built-in library and run its own tests")
	f.StringArrayVar(&params, "param", nil, "policy parameter key=value, value as JSON or else a string (repeatable)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Second, "time limit for each test")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every test, not only failures")
	return cmd
}
