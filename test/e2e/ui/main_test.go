// Package ui tests `driftless ui` end to end: the real binary serves the view as alice on the
// playground (the real installation minus the pods), and a real headless Chromium, driven
// with chromedp, reads it while bob is denied and alice breaks glass.
package ui

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/driftless-dev/driftless/test/playground"
)

var (
	// pg is the playground every test uses; nil when the tests skip.
	pg *playground.Playground
	// driftlessBin is the binary under test.
	driftlessBin string
	// chromium is the browser's path; empty skips the tests.
	chromium string
)

// chromiumPath finds Chromium: $DRIFTLESS_CHROMIUM, or Debian's chromium on PATH.
func chromiumPath() string {
	if p := os.Getenv("DRIFTLESS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if chromium = chromiumPath(); chromium == "" {
		// The tests skip and say why; the playground is not worth starting.
		return m.Run()
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "driftless-ui-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	driftlessBin = filepath.Join(dir, "driftless")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", driftlessBin, "github.com/driftless-dev/driftless/cmd/driftless").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	var narration bytes.Buffer
	if pg, err = playground.Start(ctx, playground.Options{Out: &narration, Driftless: driftlessBin, Dir: filepath.Join(dir, "playground")}); err != nil {
		fmt.Fprintf(os.Stderr, "start the playground: %v\n%s", err, narration.String())
		return 1
	}
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the playground: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// needBrowser skips a test when Chromium is absent here; .ci/run installs it, so CI never
// skips.
func needBrowser(t *testing.T) {
	t.Helper()
	if chromium == "" {
		t.Skip("Chromium is not installed (Debian: apt-get install chromium; or set DRIFTLESS_CHROMIUM): the web view's browser tests are skipped")
	}
}
