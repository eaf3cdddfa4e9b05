// Package docs checks that the commands the README and the on-call runbook show work as
// written: the README's tour runs against the real binary, and every runbook command runs,
// as alice, against a real control plane. What the commands do is shown by the demo and the
// end-to-end suites; here they must parse and succeed.
package docs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// commands returns the command lines of the fenced code blocks of a Markdown file that come
// after the heading containing section (all when section is ""), joining continued lines.
func commands(t *testing.T, path, section string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out       []string
		inBlock   bool
		inScope   = section == ""
		continued string
	)
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "#") && !inBlock:
			inScope = section == "" || strings.Contains(line, section)
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock
		case inBlock && inScope:
			// A comment after a command starts with two spaces and a hash.
			if i := strings.Index(line, "  #"); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasSuffix(line, "\\") {
				continued += strings.TrimSuffix(line, "\\")
				continue
			}
			out = append(out, continued+line)
			continued = ""
		}
	}
	return out
}

// words splits a command line like a shell would for the simple quoting the docs use.
func words(line string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		have  bool
	)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, have = r, true
		case r == ' ' || r == '\t':
			if have || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if have || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

func TestReadmeTourRuns(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "driftless")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "driftless")).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lines := commands(t, filepath.Join(root, "README.md"), "tour")
	ran := 0
	for _, line := range lines {
		args, err := words(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if args[0] != "bin/driftless" {
			continue
		}
		ran++
		t.Run(strings.Join(args[1:3], " "), func(t *testing.T) {
			cmd := exec.Command(bin, args[1:]...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("README command %q failed: %v\n%s", line, err, out)
			}
		})
	}
	if ran < 3 {
		t.Fatalf("found %d driftless commands in the README's tour, want at least 3: %q", ran, lines)
	}
}

// TestReadmeCommandTableMatchesTheBinary checks the README's command table against the
// command tree both ways: every row is a command of the binary, and every command of
// the binary has a row (a group such as `manifests` is covered by its subcommands' rows).
func TestReadmeCommandTableMatchesTheBinary(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `driftless ") {
			continue
		}
		name := strings.Fields(strings.Trim(strings.SplitN(line, "`", 3)[1], "`"))[1:]
		listed[strings.Join(name, " ")] = true
		cmd, _, err := app.NewCommand().Find(name)
		if err != nil || cmd.Name() != name[len(name)-1] {
			t.Errorf("README lists `driftless %s`, which the binary does not have", strings.Join(name, " "))
		}
	}
	if len(listed) < 5 {
		t.Fatalf("found %d command rows in the README's table; the test reads rows starting with \"| `driftless \"", len(listed))
	}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			name := append(slices.Clone(path), sub.Name())
			if !sub.HasAvailableSubCommands() && !listed[strings.Join(name, " ")] {
				t.Errorf("the binary has `driftless %s`, which the README's command table does not list", strings.Join(name, " "))
			}
			walk(sub, name)
		}
	}
	walk(app.NewCommand(), nil)
}

func TestRunbookCommandsRun(t *testing.T) {
	ctx := t.Context()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := harness.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	// Installed as config/default installs it: the configuration under a hashed name, found by
	// its label, which driftless break-glass reads.
	for _, args := range [][]string{
		{"create", "namespace", "production"},
		{"create", "configmap", "-n", "production", "payment-gateway-config", "--from-literal=POOL_SIZE=50"},
		{"create", "namespace", v1alpha1.DefaultNamespace},
		{"create", "configmap", "-n", v1alpha1.DefaultNamespace, v1alpha1.ConfigMapName + "-docs", "--from-file=" + v1alpha1.ConfigMapKey + "=" + filepath.Join(root, "config", "default", "driftless.yaml")},
		{"label", "configmap", "-n", v1alpha1.DefaultNamespace, v1alpha1.ConfigMapName + "-docs", v1alpha1.LabelComponent + "=" + v1alpha1.ComponentConfig},
	} {
		if r := cp.Admin.Kubectl(ctx, args...); r.Err != nil {
			t.Fatal(r.Combined())
		}
	}
	lines := commands(t, filepath.Join(root, "docs", "runbook.md"), "")
	if len(lines) < 6 {
		t.Fatalf("found %d commands in the runbook: %q", len(lines), lines)
	}
	for _, line := range lines {
		args, err := words(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		var out string
		switch args[0] {
		case "driftless":
			out, err = runDriftless(ctx, cp.Alice, args[1:])
		case "kubectl":
			// kubectl edit opens an editor: `true` leaves the object as it is.
			r := cp.Alice.KubectlWith(ctx, nil, []string{"KUBE_EDITOR=true"}, args[1:]...)
			out, err = r.Combined(), r.Err
		default:
			t.Errorf("runbook command %q is neither driftless nor kubectl", line)
			continue
		}
		if err != nil {
			t.Errorf("runbook command %q failed as alice: %v\n%s", line, err, out)
		}
	}
}

func runDriftless(ctx context.Context, u *harness.User, args []string) (string, error) {
	cmd := app.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--kubeconfig", u.Kubeconfig))
	if err := cmd.ExecuteContext(ctx); err != nil {
		return out.String(), fmt.Errorf("driftless %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// TestMakeFuzzRunsEveryFuzzTarget checks that `make fuzz`, which the README names, runs every
// fuzz target in the repository, and only targets that exist.
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`"([a-z0-9/]+) (Fuzz\w+)"`).FindAllStringSubmatch(string(makefile), -1) {
		listed = append(listed, m[1]+" "+m[2])
	}
	var found []string
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(src), -1) {
			found = append(found, filepath.ToSlash(rel)+" "+m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	slices.Sort(found)
	if len(found) == 0 {
		t.Fatal("found no fuzz targets in the repository")
	}
	if !slices.Equal(listed, found) {
		t.Errorf("make fuzz runs %q;\nthe repository's fuzz targets are %q", listed, found)
	}
}
