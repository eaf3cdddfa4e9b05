package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// versionPackage is where the driftless command keeps the version it prints.
const versionPackage = "github.com/driftless-dev/driftless/cmd/driftless/app"

// BinaryOptions says how to build the driftless binary for the image. ModuleRoot, Out and Arch
// are required.
type BinaryOptions struct {
	// ModuleRoot is the directory holding go.mod.
	ModuleRoot string
	// Out is the path of the binary to write.
	Out string
	// Arch is the GOARCH to build for.
	Arch string
	// Version and Commit are what `driftless version` prints.
	Version, Commit string
}

// LDFlags returns the linker flags of a reproducible build: no symbol table, no DWARF, an
// empty build ID, and the version and commit.
func LDFlags(version, commit string) string {
	return strings.Join([]string{
		"-s", "-w", "-buildid=",
		"-X", versionPackage + ".version=" + version,
		"-X", versionPackage + ".commit=" + commit,
	}, " ")
}

// BuildBinary builds ./cmd/driftless as a static linux binary (CGO_ENABLED=0) with -trimpath,
// without VCS stamping and with LDFlags, so that the same commit gives the same bytes.
func BuildBinary(ctx context.Context, opts BinaryOptions) error {
	if opts.ModuleRoot == "" || opts.Out == "" || opts.Arch == "" {
		return fmt.Errorf("build options %+v: module root, output and architecture are required", opts)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", LDFlags(opts.Version, opts.Commit), "-o", opts.Out, "./cmd/driftless")
	cmd.Dir = opts.ModuleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.Arch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/driftless for linux/%s: %w\n%s", opts.Arch, err, out)
	}
	return nil
}
