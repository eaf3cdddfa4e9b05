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
	for _, c := range []struct{ path, want string }{
		{"pipe.yaml", "read pipe.yaml: a named pipe, not a regular file"},
		{"plain", "read plain/pipe.yaml: a named pipe, not a regular file"},
		{"kust", `kust/kustomization.yaml: resources entry "pipe.yaml": a named pipe, not a regular file`},
	} {
		t.Run(c.path, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := render.Render(t.Context(), root, c.path)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, render.ErrNotRegular) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("render %s: %v; want it refused: %s", c.path, err, c.want)
				}
			case <-time.After(time.Minute):
				t.Fatalf("render %s still reading the named pipe after a minute", c.path)
			}
		})
	}
}
