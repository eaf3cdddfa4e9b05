package app

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/audit"
)

func newAuditCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	o := audit.Options{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Compliance report: applied revisions, denied attempts, break-glass sessions, safe operations and drift reverts",
		Long: `audit reads the ledger (the driftless-ledger-* ConfigMaps), the sources' status and the
break-glass records in the Driftless namespace and reports, for the window --since back from now
and optionally one namespace (-n): the revisions applied (commit, author, applied at), the attempts
the guard denied by actor, the break-glass sessions with reason, duration and patch to commit,
the changes made under break-glass, the safe operations and the drift reverts.
-o csv writes one table with a section column; -o json the whole report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// -n/--namespace, the kubeconfig flag, limits the report to one namespace.
			o.Namespace = *flags.Namespace
			restConfig, err := flags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			return audit.Write(cmd.Context(), restConfig, o, cmd.OutOrStdout())
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.DriftlessNamespace, "driftless-namespace", v1alpha1.DefaultNamespace, "namespace Driftless runs in")
	cmd.Flags().DurationVar(&o.Since, "since", 720*time.Hour, "how far back the report goes")
	cmd.Flags().StringVarP(&o.Format, "output", "o", audit.FormatText, "text, json or csv")
	return cmd
}
