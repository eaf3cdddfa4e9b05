package app

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	opaversion "github.com/open-policy-agent/opa/v1/version"
	"github.com/spf13/cobra"
)

// Version information, set at build time with -ldflags "-X ...app.version=v0.1.0
// -X ...app.commit=<sha>" (make build and make image do).
var (
	version = "dev"
	commit  = ""
)

// BuildInfo is what `driftless version` prints.
type BuildInfo struct {
	// Version is the release version, or the commit's `git describe` for other builds.
	Version string `json:"version"`
	// Commit is the commit the binary was built from; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
	// OPAVersion is the version of the embedded Open Policy Agent.
	OPAVersion string `json:"opaVersion"`
}

// Build returns this binary's build information. The commit falls back to the VCS revision Go
// stamps into the binary when the linker flags did not set it.
func Build() BuildInfo {
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
	return BuildInfo{
		Version:    version,
		Commit:     c,
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		OPAVersion: opaversion.Version,
	}
}

// Version returns the version of this build and the commit it was built from.
func Version() string {
	b := Build()
	if b.Commit == "" {
		return b.Version
	}
	return b.Version + " (" + b.Commit + ")"
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go and OPA versions of driftless",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := Build()
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			case "text":
				c := b.Commit
				if c == "" {
					c = "unknown"
				}
				_, err := fmt.Fprintf(out, "driftless %s\ncommit:   %s\ngo:       %s %s\nopa:      %s\n", b.Version, c, b.GoVersion, b.Platform, b.OPAVersion)
				return err
			default:
				return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", output)}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
