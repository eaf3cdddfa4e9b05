package app

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/server"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
)

func newDiffCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var configPath, sourceName, output string
	var serverDryRun bool
	cmd := &cobra.Command{
		Use:   "diff --config FILE [--source NAME]",
		Short: "Show what a sync of a source's current revision would change; needs only read access",
		Long: `diff fetches the source's ref, renders and checks it like the reconciler, reads the live
objects and the source's inventory, and shows what a sync would do: objects to create, update
(with a unified diff from the cluster to Git) and prune, objects left alone under break-glass,
and objects the sync would refuse (not the source's, or another source's). An update covers the fields Git declares that
differ and the fields the reconciler would remove because kubectl's field managers set them.
Nothing is written: no apply, no dry-run, no impersonation. Read access is enough (the view
ClusterRole): an object you may not read, such as a Secret, is shown as unknown, saying so.

Each apply is predicted with the API server's own server-side apply merge and published schema,
but its defaulting, mutating admission webhooks and validation do not run: a value it would
default or normalise may show as a change. --server-dry-run asks the API server instead; it needs the rights to patch every
object and, in protected namespaces, the reconciler's identity (the guard decides dry-runs like
real requests).

Exit status: 0 when a sync would change nothing, 1 when it would change something or an object
could not be read (unknown), 2 when diff could not decide (bad flags or configuration, a fetch,
render or policy error, or the cluster unreachable).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError(fmt.Errorf("--output %q: want text or json", output))
			}
			cfg, err := v1alpha1.Load(configPath)
			if err != nil {
				return usageError(err)
			}
			restConfig, err := flags.ToRESTConfig()
			if err != nil {
				return usageError(fmt.Errorf("kubeconfig: %w", err))
			}
			client, err := dynamicClient(flags)
			if err != nil {
				return usageError(err)
			}
			mapper, err := flags.ToRESTMapper()
			if err != nil {
				return usageError(err)
			}
			disco, err := discovery.NewDiscoveryClientForConfig(restConfig)
			if err != nil {
				return usageError(fmt.Errorf("kubeconfig: %w", err))
			}
			sets := policy.NewSets()
			if err := sets.Load(cmd.Context(), cfg); err != nil {
				return usageError(err)
			}
			mode := reconciler.DiffRead
			if serverDryRun {
				mode = reconciler.DiffServerDryRun
			}
			reports, err := reconciler.DiffConfig(cmd.Context(), cfg, reconciler.DiffOptions{
				Options: reconciler.Options{Client: client, Mapper: mapper, OpenAPI: disco.OpenAPIV3(), Gate: server.Gate(sets)},
				Source:  sourceName,
				Mode:    mode,
			})
			if err != nil {
				return usageError(fmt.Errorf("%s: %w", configPath, err))
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(reports)
			} else {
				err = reconciler.WriteDiff(out, reports)
			}
			if err != nil {
				return usageError(fmt.Errorf("write the diff: %w", err))
			}
			var pending []string
			for _, r := range reports {
				if r.Pending() {
					pending = append(pending, fmt.Sprintf("source %s: %s", r.Source, strings.Join(r.Counts(), ", ")))
				}
			}
			if len(pending) > 0 {
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("a sync would change something: %s", strings.Join(pending, "; "))}
			}
			return nil
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&configPath, "config", "driftless.yaml", "the DriftlessConfig with the sources")
	cmd.Flags().StringVar(&sourceName, "source", "", "only this source")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVar(&serverDryRun, "server-dry-run", false, "ask the API server with a server-side dry-run apply instead of reading (needs patch rights and, in protected namespaces, the reconciler's identity)")
	return cmd
}
