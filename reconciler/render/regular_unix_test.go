//go:build unix

package render_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// TestRenderRefusesNamedPipes: a named pipe where a render reads a file (a working tree
// `driftless check` is pointed at can have one) is refused, naming it, instead of blocking the
// render until something writes to it: as the path itself, in a directory of YAML, and as
// a kustomization's resource.
func TestRenderRefusesNamedPipes(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "plain", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n")
	writeFile(t, filepath.Join(root, "kust", "kustomization.yaml"), "resources: [pipe.yaml]\n")
	for _, p := range []string{"pipe.yaml", "plain/pipe.yaml", "kust/pipe.yaml"} {
		if err := syscall.Mkfifo(filepath.Join(root, p), 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	for _, c := range []struct{ path, names string }{
		{"pipe.yaml", "pipe.yaml"},
		{"plain", "plain/pipe.yaml"},
		{"kust", "kust/pipe.yaml"},
	} {
		t.Run(c.path, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := render.Render(t.Context(), root, c.path)
				done <- err
			}()
			select {
			case err := <-done:
				// kustomize reports its file system's errors as text.
				if err == nil || !strings.Contains(err.Error(), c.names+" is a named pipe") || c.path != "kust" && !errors.Is(err, render.ErrNotRegular) {
					t.Fatalf("render %s: %v; want it refused as a named pipe, naming %s", c.path, err, c.names)
				}
			case <-time.After(time.Minute):
				t.Fatalf("render %s still reading the named pipe after a minute", c.path)
			}
		})
	}
}
