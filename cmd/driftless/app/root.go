package app

import (
	"errors"

	"github.com/spf13/cobra"
)

// ExitError carries the process exit code a command asks for.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit code for an error a command returned: the code of an ExitError,
// otherwise 1.
func ExitCode(err error) int {
	if ee, ok := errors.AsType[*ExitError](err); ok {
		return ee.Code
	}
	return 1
}

// NewCommand returns the root driftless command with all subcommands.
func NewCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "driftless",
		Short:         "Make manual drift in Kubernetes impossible",
		Long:          "driftless guards admission in protected namespaces, gates manifests on Rego policy and applies what Git approved.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBreakGlassCommand(), newStatusCommand(), newAuditCommand(), newDiffCommand(), newRunCommand(), newManifestsCommand(), newDoctorCommand(), newUICommand(), newCheckCommand(), newPolicyCommand(), newVersionCommand())
	return root
}
