// Command driftless makes manual drift in a Kubernetes cluster impossible: it guards admission,
// gates manifests on policy and applies what Git approved.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
)

func main() {
	ctx := ctrl.SetupSignalHandler()
	if err := app.NewCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "driftless: %v\n", err)
		os.Exit(app.ExitCode(err))
	}
}
