package playground

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuideCommandsWork runs the commands the `make dev` guide prints, as printed and in its
// order, in a shell that sourced env.sh, and checks that each is refused or works as its step
// says.
func TestGuideCommandsWork(t *testing.T) {
	ctx := t.Context()
	bin := filepath.Join(t.TempDir(), "driftless")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/driftless-dev/driftless/cmd/driftless").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var narration bytes.Buffer
	p, err := Start(ctx, Options{Out: &narration, Driftless: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start the playground: %v\n%s", err, narration.String())
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop the playground: %v", err)
		}
	})
	e := p.e
	// A user reads the guide before the first command; by then the first sync is done.
	if _, _, err := e.waitData(ctx, "the first sync to set POOL_SIZE=50", settle, map[string]string{"POOL_SIZE": "50"}); err != nil {
		t.Fatal(err)
	}
	narration.Reset()
	e.printGuide()
	printed := narration.String()

	// The user's editor, for kubectl edit: raises the pool size.
	editor := filepath.Join(t.TempDir(), "raise-pool-size.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i -e 's/POOL_SIZE: \"50\"/POOL_SIZE: \"80\"/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range e.guide() {
		for _, c := range s.commands {
			if !strings.Contains(printed, "\n  "+c.line+"\n") {
				t.Errorf("the guide does not print %q:\n%s", c.line, printed)
			}
			cmd := exec.CommandContext(ctx, "sh", "-c", ". "+shellQuote(e.envPath)+" && "+c.line)
			cmd.Env = append(os.Environ(), "KUBE_EDITOR="+editor)
			out, err := cmd.CombinedOutput()
			switch {
			case c.refused && err == nil:
				t.Errorf("%s (%s): succeeded, want it refused:\n%s", c.line, s.title, out)
			case !c.refused && err != nil:
				t.Errorf("%s (%s): %v\n%s", c.line, s.title, err, out)
			case !strings.Contains(string(out), c.shows):
				t.Errorf("%s (%s): the output does not show %q:\n%s", c.line, s.title, c.shows, out)
			}
		}
	}
}
