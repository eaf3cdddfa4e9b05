package app

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ui"
)

func newUICommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var (
		namespace string
		port      int
		noOpen    bool
	)
	cmd := &cobra.Command{
		Use:   "ui [--port PORT] [--no-open] [-n NAMESPACE]",
		Short: "Serve a read-only web view of sources, objects, break-glass and the ledger on 127.0.0.1",
		Long: `ui serves a read-only web view on 127.0.0.1 (a free port, or --port) and opens it in your
browser (--no-open only prints the link). It reads the cluster as your kubeconfig's user, with
your RBAC, through the same readers as driftless status, break-glass --history and audit:
each source's readiness, revision and history; a source's live objects with what someone other
than Driftless wrote to them; the active break-glass sessions with the time left and the patch
to commit; and the ledger of denied attempts, safe operations and reverts, filterable by
namespace, user and time. The page refreshes itself every 2 seconds.

Only this browser can use it: the link carries a one-time token that logs the browser in with a
cookie; other hosts and origins, and anything but GET, are refused. -n shows one namespace
first. Nothing is served beyond 127.0.0.1, and the page loads nothing from elsewhere.`,
		Example: `  driftless ui
  driftless ui --context production -n payments --port 8088 --no-open`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			restConfig, err := flags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			contextName := ""
			if raw, err := flags.ToRawKubeConfigLoader().RawConfig(); err == nil {
				contextName = raw.CurrentContext
			}
			if *flags.Context != "" {
				contextName = *flags.Context
			}
			reader, err := ui.NewReader(restConfig, namespace, contextName)
			if err != nil {
				return err
			}
			o := ui.Options{Reader: reader, Port: port, Namespace: *flags.Namespace, Out: cmd.OutOrStdout()}
			if !noOpen {
				o.Open = openBrowser
			}
			return ui.Serve(cmd.Context(), o)
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "namespace Driftless runs in")
	cmd.Flags().IntVar(&port, "port", 0, "port on 127.0.0.1 to serve on (0: a free one)")
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "print the link only; do not open a browser")
	return cmd
}

// openBrowser opens url with the desktop's handler, without a shell.
func openBrowser(ctx context.Context, url string) error {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.CommandContext(ctx, "open", url)
	case "windows":
		c = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", url)
	default:
		c = exec.CommandContext(ctx, "xdg-open", url)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	go func() { _ = c.Wait() }()
	return nil
}
