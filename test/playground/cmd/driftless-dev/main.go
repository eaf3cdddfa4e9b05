// Command driftless-dev runs the local Driftless playground (make dev) and the incident story
// on it (make demo, --demo). It is a development tool built from the test harness; the
// shipped driftless binary does not contain it.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/driftless-dev/driftless/test/playground"
)

func main() {
	if err := newCommand().ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(os.Stderr, "driftless-dev: %v\n", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := playground.Options{}
	cmd := &cobra.Command{
		Use:   "driftless-dev",
		Short: "Run a local playground: a real control plane, a Git repo, the guard and the reconciler",
		Long: `driftless-dev starts a real kube-apiserver and etcd (built once by hack/control-plane.sh and
cached), seeds a local Git repository from config/samples/config-repo, and runs the guard (with
a self-signed CA) and the reconciler against it, with one kubeconfig per persona: admin,
alice (group oncall) and bob (group developers). It prints the commands for each step of the
story and runs until Ctrl-C, then cleans up. make dev runs that.

With --demo it runs the story itself with the driftless binary, narrating each step and what
it observed, and exits non-zero if any step does not behave as narrated. make demo runs that.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if o.Driftless == "" {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("locate the driftless binary: %w", err)
				}
				o.Driftless = filepath.Join(filepath.Dir(self), "driftless")
			}
			return playground.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "directory for the playground's files (default: a new temporary directory)")
	f.BoolVar(&o.Keep, "keep", false, "keep the directory after exit")
	f.BoolVar(&o.Demo, "demo", false, "run the incident story non-interactively and exit")
	f.DurationVar(&o.BreakGlassFor, "break-glass-for", 20*time.Second, "how long the demo's break-glass lasts")
	f.StringVar(&o.Driftless, "driftless", "", "the driftless binary the story runs and the guide prints (default: driftless next to this binary)")
	return cmd
}
