package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/doctor"
)

func newDoctorCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var (
		namespace string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a Driftless installation in the current cluster, one line per check",
		Long: `doctor checks the installation the current kubeconfig reaches: cert-manager and the serving
certificate, the CA bundle and the webhook configuration against what the installed
configuration generates, that the API server calls the guard (a server-side dry-run request in
a protected namespace, which the guard must deny), the self-protection policy and binding, who
may act as the reconciler or read Driftless's Secrets, and each source's last sync.

Each line is ok, warn or FAIL, with how to fix it. The exit code is 1 when a check FAILs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", output)}
			}
			restConfig, err := flags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			kube, err := kubernetes.NewForConfig(restConfig)
			if err != nil {
				return err
			}
			dyn, err := dynamic.NewForConfig(restConfig)
			if err != nil {
				return err
			}
			results := doctor.Run(cmd.Context(), doctor.Options{Kube: kube, Dynamic: dyn, Namespace: namespace, Now: time.Now()})
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if _, err := fmt.Fprintln(out, r.String()); err != nil {
						return err
					}
				}
			}
			if doctor.Failed(results) {
				return &ExitError{Code: 1, Err: errors.New("the installation has problems: see the FAIL lines")}
			}
			return nil
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "namespace Driftless runs in")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
