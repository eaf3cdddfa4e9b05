package app

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/server"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/reconciler/source"
)

func newDiffCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var configPath, sourceName, output string
	cmd := &cobra.Command{
		Use:   "diff --config FILE [--source NAME]",
		Short: "Show what a sync of a source's current revision would change, using server-side dry-run",
		Long: `diff fetches the source's ref, renders and checks it like the reconciler, and asks the API
server (server-side dry-run) what applying it would change: objects to create, update (with a
unified diff) and prune, and objects left alone under break-glass. Nothing is changed.

In protected namespaces the guard decides dry-run requests like real ones, so run diff as the
reconciler's identity (for example --as system:serviceaccount:driftless-system:driftless, which
needs impersonation rights) or from inside the cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := v1alpha1.Load(configPath)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			client, err := dynamicClient(flags)
			if err != nil {
				return err
			}
			mapper, err := flags.ToRESTMapper()
			if err != nil {
				return err
			}
			cache, err := os.MkdirTemp("", "driftless-diff-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(cache)
			sets := policy.NewSets()
			if err := sets.Load(cmd.Context(), cfg); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			reconcilers, err := reconciler.NewForConfig(cfg, reconciler.Options{
				Client: client, Mapper: mapper, Fetcher: source.NewGitFetcher(), CacheDir: cache, Gate: server.Gate(sets),
				Namespace: cfg.Reconciler.ServiceAccount.Namespace, BreakGlassMaxDuration: cfg.Guard.BreakGlass.MaxDuration.Duration,
			})
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			var reports []*reconciler.DiffReport
			for _, r := range reconcilers {
				if sourceName != "" && r.Name() != sourceName {
					continue
				}
				report, err := r.Diff(cmd.Context())
				if err != nil {
					return fmt.Errorf("diff source %q: %w", r.Name(), err)
				}
				reports = append(reports, report)
			}
			if len(reports) == 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("no source named %q in %s", sourceName, configPath)}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(reports)
			}
			return reconciler.WriteDiff(out, reports)
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&configPath, "config", "driftless.yaml", "the DriftlessConfig with the sources")
	cmd.Flags().StringVar(&sourceName, "source", "", "only this source")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
