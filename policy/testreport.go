package policy

import (
	"fmt"
	"io"
	"strings"
)

// Write writes the report as `driftless policy test` prints it: one line per failing or
// erroring test (per test when verbose),
//
//	FAIL policies/payments_test.rego:20:1: data.main.test_owner_required
//	  failed at policies/payments_test.rego:21:2: count(deny) == 1
//
// with the test's print() output indented below, then a summary line,
// "12 passed, 1 failed, 0 errored, 1 skipped".
func (r TestReport) Write(w io.Writer, verbose bool) error {
	var b strings.Builder
	for _, res := range r.Results {
		failed := res.Outcome == TestFail || res.Outcome == TestError
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
	b.WriteString(r.Summary())
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary returns "12 passed, 1 failed, 0 errored, 1 skipped".
func (r TestReport) Summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d errored, %d skipped", r.Passed, r.Failed, r.Errored, r.Skipped)
}
