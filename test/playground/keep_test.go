package playground

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedStartKeepsItsDirectory: when the playground cannot start, its errors point at the
// log in its temporary directory, so that directory stays, and the narration says where.
func TestFailedStartKeepsItsDirectory(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		// Without it the playground fails building the control plane, before its log.
		t.Skip("no control plane binaries (make envtest)")
	}
	bin := filepath.Join(t.TempDir(), "driftless")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // nothing can start
	var out bytes.Buffer
	p, err := Start(ctx, Options{Out: &out, Driftless: bin})
	if err == nil {
		p.Stop()
		t.Fatal("the playground started with its context done")
	}
	_, after, ok := strings.Cut(out.String(), "its directory ")
	dir, _, _ := strings.Cut(after, " is kept")
	if !ok || dir == "" {
		t.Fatalf("the narration does not say the directory is kept (error %v):\n%s", err, out.String())
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, err := os.Stat(filepath.Join(dir, "driftless.log")); err != nil {
		t.Fatalf("the log in the kept directory: %v", err)
	}
}
