package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/driftless-dev/driftless/reconciler"
)

// runHistory prints the break-glass record of every source, newest first.
func (o *breakGlassOptions) runHistory(ctx context.Context, out io.Writer, args []string) error {
	switch {
	case len(args) > 0:
		return &ExitError{Code: 2, Err: errors.New("--history takes no object")}
	case o.list || o.end:
		return &ExitError{Code: 2, Err: errors.New("--history excludes --list and --end")}
	case o.output != "text" && o.output != "json":
		return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", o.output)}
	}
	client, err := dynamicClient(o.flags)
	if err != nil {
		return err
	}
	sessions, err := reconciler.ReadBreakGlassHistory(ctx, client, o.namespace)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if sessions == nil {
			sessions = []reconciler.BreakGlassSession{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(sessions)
	}
	return reconciler.WriteBreakGlassHistory(out, sessions, o.clock.Now())
}
