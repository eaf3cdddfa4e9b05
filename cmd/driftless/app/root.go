package app

import (
	"errors"
	"fmt"
	"strings"

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
suspend, resume, diff) default -n to the Driftless namespace, where GitSources live.

Exit codes, for every command:
  0  done, and the answer is yes (the sync applied, the policy passed, no difference)
  1  the answer is no (the sync or check failed, a difference), or the cluster refused or
     could not be reached
  2  could not decide: bad flags or input, or a wait that timed out`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newGetCommand(), newReconcileCommand(), newSuspendCommand(), newResumeCommand(), newBreakGlassCommand(), newStatusCommand(), newAuditCommand(), newDiffCommand(), newRunCommand(), newManifestsCommand(), newDoctorCommand(), newUICommand(), newCheckCommand(), newPolicyCommand(), newVersionCommand())
	// Bad flags, arguments and command names could not decide anything: exit 2, as the
	// help says, for every command. For diff, 1 would read as "there is a difference".
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	markUsageErrors(root)
	return root
}

// markUsageErrors makes the argument errors of c and its subcommands usage errors, and a
// command that only groups others (driftless, get, policy) refuse a name it does not have
// instead of printing its help and exiting 0.
func markUsageErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			if _, ok := errors.AsType[*ExitError](err); err == nil || ok {
				return err
			}
			return usageError(err)
		}
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		}
		return usageError(fmt.Errorf("%s (%s --help lists its commands)", msg, cmd.CommandPath()))
	}
}
