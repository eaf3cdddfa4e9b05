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
		Use:   "driftless",
		Short: "Make manual drift in Kubernetes impossible",
		Long: `driftless guards admission in protected namespaces, gates manifests on Rego policy and applies what Git approved.

Commands that talk to a cluster take kubectl's connection flags (--kubeconfig, --context, --as,
-n ...) and act with your own identity and RBAC; the source commands (get sources, reconcile,
suspend, resume) default -n to the Driftless namespace, where GitSources live.

Exit codes, for every command:
  0  done, and the answer is yes (the sync applied, the policy passed, no difference)
  1  the answer is no (the sync or check failed, a difference), or the cluster refused or
     could not be reached
  2  could not decide: bad flags or input, or a wait that timed out`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newGetCommand(), newReconcileCommand(), newSuspendCommand(), newResumeCommand(), newBreakGlassCommand(), newStatusCommand(), newAuditCommand(), newDiffCommand(), newRunCommand(), newManifestsCommand(), newDoctorCommand(), newUICommand(), newCheckCommand(), newPolicyCommand(), newVersionCommand())
	return root
}
