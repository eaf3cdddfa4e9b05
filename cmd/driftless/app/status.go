package app

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

func newStatusCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var (
		namespace string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each source's revision, last sync, last change, violations, drift reverts and break-glass",
		Long: `status reads the status the reconciler keeps in the GitSources of the Driftless namespace
(kubectl get gitsources -n driftless-system -o yaml shows the same data) and prints it: per source
the revision, the last sync, the last sync or revert that changed something, the objects held
back under an active break-glass (who, why, until when, the patch to commit) and the latest
break-glass sessions from the record (driftless break-glass --history shows all of them).
-o json prints the statuses only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := dynamicClient(flags)
			if err != nil {
				return err
			}
			statuses, err := reconciler.ReadStatus(cmd.Context(), client, namespace)
			if err != nil {
				return err
			}
			// The break-glass record is shown in the text only; a caller who may not read it
			// still sees the rest.
			sessions, historyErr := reconciler.ReadBreakGlassHistory(cmd.Context(), client, namespace)
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			case "text":
				if err := reconciler.WriteStatus(cmd.OutOrStdout(), statuses, sessions, time.Now()); err != nil {
					return err
				}
				if historyErr != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "\nbreak-glass record not shown: %v\n", historyErr)
				}
				return nil
			default:
				return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", output)}
			}
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "namespace Driftless runs in")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// dynamicClient connects with the standard kubeconfig flags.
func dynamicClient(flags *genericclioptions.ConfigFlags) (dynamic.Interface, error) {
	restConfig, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return dynamic.NewForConfig(restConfig)
}
