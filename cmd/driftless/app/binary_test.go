package app

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryExitCodes builds the real driftless binary and checks the exit codes and the
// stderr format CI sees, end to end through main.
func TestBinaryExitCodes(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build driftless: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "driftless")
	build := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, "github.com/driftless-dev/driftless/cmd/driftless")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	violating := violatingSample(t)
	production := filepath.Join(sampleRepo, "overlays", "production")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		// env replaces these variables of the test's environment ("" unsets).
		env map[string]string
		// stderrLines, when set, is how many lines stderr must have.
		stderrLines int
	}{
		{
			name:       "check passes",
			args:       []string{"check", "--config", filepath.Join(sampleRepo, "driftless.yaml"), production},
			wantStdout: "0 denials, 0 warnings in 3 objects\n",
		},
		{
			name:       "check denies",
			args:       []string{"check", "--config", filepath.Join(violating, "driftless.yaml"), filepath.Join(violating, "overlays", "production")},
			wantCode:   1,
			wantStdout: "base/deployment.yaml:1: deny images_pinned: Deployment production/payment-gateway:",
			wantStderr: "driftless: policy check failed: 3 denials, 1 warning in 3 objects\n",
		},
		{
			name:       "check cannot render",
			args:       []string{"check", "--root", "testdata", "testdata/check/malformed"},
			wantCode:   2,
			wantStderr: "driftless: render testdata/check/malformed: check/malformed/configmap.yaml:5: ",
		},
		{
			name:       "check usage",
			args:       []string{"check"},
			wantCode:   2,
			wantStderr: "driftless: missing PATH",
		},
		{
			name:       "policy test passes",
			args:       []string{"policy", "test", filepath.Join(sampleRepo, "policies")},
			wantStdout: "5 passed, 0 failed, 0 errored, 0 skipped\n",
		},
		{
			name:       "policy test fails",
			args:       []string{"policy", "test", "testdata/policytest/failing"},
			wantCode:   1,
			wantStdout: "FAIL testdata/policytest/failing/labels_test.rego:10:1: data.team.labels_test.test_unlabelled_pod_allowed\n",
		},
		{
			name:       "policy test cannot compile",
			args:       []string{"policy", "test", "testdata/policytest/broken"},
			wantCode:   2,
			wantStderr: "driftless: compile policies: testdata/policytest/broken/owner_test.rego:4:17: ",
		},
		{
			name:        "run outside a cluster is one plain error",
			args:        []string{"run", "--config", filepath.Join("..", "..", "..", "config", "default", "driftless.yaml"), "--cert-dir", t.TempDir()},
			env:         map[string]string{"HOME": t.TempDir(), "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""},
			wantCode:    1,
			wantStderr:  "driftless: connect to the API server: not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig",
			stderrLines: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if tt.env != nil {
				for _, kv := range os.Environ() {
					if _, replaced := tt.env[strings.SplitN(kv, "=", 2)[0]]; !replaced {
						cmd.Env = append(cmd.Env, kv)
					}
				}
				for k, v := range tt.env {
					if v != "" {
						cmd.Env = append(cmd.Env, k+"="+v)
					}
				}
			}
			err := cmd.Run()
			code := 0
			if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatalf("run driftless: %v", err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, stderr.String())
			}
			if lines := strings.Count(strings.TrimSuffix(stderr.String(), "\n"), "\n") + 1; tt.stderrLines > 0 && lines != tt.stderrLines {
				t.Errorf("stderr has %d lines, want %d:\n%s", lines, tt.stderrLines, stderr.String())
			}
		})
	}
}
