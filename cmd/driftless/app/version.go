package app

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version information, set at build time with -ldflags "-X ...app.version=v0.1.0".
var (
	version = "dev"
	commit  = ""
)

// Version returns the version of this build and the commit it was built from.
func Version() string {
	c := commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		return version
	}
	return version + " (" + c + ")"
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of driftless",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "driftless %s\n", Version())
			return err
		},
	}
}
