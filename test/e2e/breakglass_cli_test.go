package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// driftless runs the driftless command tree in-process as user, with their kubeconfig.
func driftless(t *testing.T, u *harness.User, args ...string) (string, error) {
	t.Helper()
	cmd := app.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--kubeconfig", u.Kubeconfig))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestBreakGlassCommand(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "cli")
	// The guard's configuration, where the command reads the groups and the maximum.
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", v1alpha1.DefaultNamespace); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	cm := cp.Admin.KubectlWith(ctx, nil, nil, "create", "configmap", "driftless-config", "-n", v1alpha1.DefaultNamespace,
		"--from-literal=config.yaml="+fmt.Sprintf(guardConfig, "enforce"))
	// kubectl says "already exists"; another test may have created it (installConfig).
	if cm.Err != nil && !strings.Contains(cm.Stderr, "AlreadyExists") && !strings.Contains(cm.Stderr, "already exists") {
		t.Fatal(cm.Combined())
	}

	t.Run("bob is refused before the API server", func(t *testing.T) {
		out, err := driftless(t, cp.Bob, "break-glass", "-n", "production", "configmap/cli-config", "--reason", "INC-42", "--for", "1h")
		if err == nil || !strings.Contains(err.Error(), "bob is not in a break-glass group (oncall)") {
			t.Fatalf("err = %v, out = %s", err, out)
		}
	})
	t.Run("too long is refused before the API server", func(t *testing.T) {
		out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/cli-config", "--reason", "INC-42", "--for", "3h")
		if err == nil || !strings.Contains(err.Error(), "more than the guard's maximum of 2h0m0s") {
			t.Fatalf("err = %v, out = %s", err, out)
		}
	})
	// Without -n the object is looked up in the kubeconfig's namespace, default here: the
	// error names it and says how to name another; with -n it names the one given.
	t.Run("without -n the error names the namespace it looked in", func(t *testing.T) {
		for _, args := range [][]string{
			{"break-glass", "configmap/cli-config", "--reason", "INC-42", "--for", "1h"},
			{"break-glass", "configmap/cli-config", "--end"},
		} {
			out, err := driftless(t, cp.Alice, args...)
			want := `find configmap/cli-config in namespace "default": configmaps "cli-config" not found; pass -n NAMESPACE if it is in another namespace`
			if err == nil || err.Error() != want {
				t.Errorf("%s: err = %v, want %q\n%s", strings.Join(args, " "), err, want, out)
			}
		}
		out, err := driftless(t, cp.Alice, "break-glass", "-n", "default", "configmap/cli-config", "--end")
		want := `find configmap/cli-config in namespace "default": configmaps "cli-config" not found`
		if err == nil || err.Error() != want {
			t.Errorf("with -n default: err = %v, want %q\n%s", err, want, out)
		}
	})
	t.Run("a reason is required", func(t *testing.T) {
		if _, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/cli-config", "--for", "1h"); err == nil {
			t.Fatal("break-glass without a reason succeeded")
		}
	})

	before := time.Now()
	out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/cli-config", "--reason", "INC-42: raise pool size", "--for", "1h")
	if err != nil {
		t.Fatalf("alice's break-glass failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "break-glass on configmaps/cli-config in namespace production by alice until") {
		t.Errorf("unexpected output:\n%s", out)
	}
	assertKubectlOutput(t, cp.Admin, `{.metadata.annotations.driftless\.dev/break-glass}|{.metadata.annotations.driftless\.dev/break-glass-by}`,
		"INC-42: raise pool size|alice", "get", "-n", "production", "configmap/cli-config")
	r := cp.Admin.Kubectl(ctx, "get", "-n", "production", "configmap/cli-config", "-o", `jsonpath={.metadata.annotations.driftless\.dev/break-glass-until}`)
	until, err := time.Parse(time.RFC3339, r.Stdout)
	if err != nil || until.Before(before.Add(59*time.Minute)) || until.After(time.Now().Add(time.Hour)) {
		t.Errorf("break-glass-until = %q (%v), want about an hour from now", r.Stdout, err)
	}

	// Under the break-glass alice may now change the object with plain kubectl.
	if r := cp.Alice.Kubectl(ctx, "patch", "-n", "production", "configmap/cli-config", "--type=merge", "-p", `{"data":{"poolSize":"80"}}`); r.Err != nil {
		t.Fatalf("alice's change under break-glass was denied: %s", r.Combined())
	}

	t.Run("bob may not end it", func(t *testing.T) {
		r := cp.Bob.Kubectl(ctx, "annotate", "-n", "production", "configmap/cli-config", "driftless.dev/break-glass-", "driftless.dev/break-glass-until-", "driftless.dev/break-glass-by-")
		if r.Err == nil {
			t.Fatalf("bob removed alice's break-glass: %s", r.Combined())
		}
	})

	t.Run("list", func(t *testing.T) {
		out, err := driftless(t, cp.Bob, "break-glass", "--list")
		if err != nil {
			t.Fatalf("list: %v\n%s", err, out)
		}
		var row string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "configmaps/cli-config") {
				row = line
			}
		}
		for _, want := range []string{"production", "alice", "INC-42: raise pool size", until.UTC().Format(time.RFC3339)} {
			if !strings.Contains(row, want) {
				t.Errorf("list row %q does not show %q; output:\n%s", row, want, out)
			}
		}
	})

	// --reason and --for open a break-glass; --end would ignore them.
	t.Run("end with a reason or a duration is a usage error and ends nothing", func(t *testing.T) {
		for _, extra := range [][]string{{"--reason", "x"}, {"--for", "5m"}, {"--reason", "x", "--for", "5m"}} {
			args := append([]string{"break-glass", "-n", "production", "configmap/cli-config", "--end"}, extra...)
			out, err := driftless(t, cp.Alice, args...)
			if err == nil || app.ExitCode(err) != 2 || !strings.Contains(err.Error(), "--end takes no") {
				t.Errorf("%s: err = %v (exit code %d), want a usage error\n%s", strings.Join(args, " "), err, app.ExitCode(err), out)
			}
		}
		assertKubectlOutput(t, cp.Admin, `{.metadata.annotations.driftless\.dev/break-glass}`, "INC-42: raise pool size", "get", "-n", "production", "configmap/cli-config")
	})

	// The runbook's way to end a break-glass early.
	t.Run("alice ends it early", func(t *testing.T) {
		r := cp.Alice.Kubectl(ctx, "-n", "production", "annotate", "configmap/cli-config", "driftless.dev/break-glass-", "driftless.dev/break-glass-until-", "driftless.dev/break-glass-by-")
		if r.Err != nil {
			t.Fatalf("alice could not end her break-glass: %s", r.Combined())
		}
		if r := cp.Alice.Kubectl(ctx, "patch", "-n", "production", "configmap/cli-config", "--type=merge", "-p", `{"data":{"poolSize":"90"}}`); r.Err == nil {
			t.Fatalf("alice changed the object after ending the break-glass: %s", r.Combined())
		}
		out, err := driftless(t, cp.Bob, "break-glass", "--list")
		if err != nil || strings.Contains(out, "configmaps/cli-config") {
			t.Errorf("the ended break-glass is still listed (%v):\n%s", err, out)
		}
	})
}
