// Package admission shows the admission policy set on a real API server: the reconciler's own
// writes in protected scope must pass the same policies CI runs.
package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

var (
	cp        *harness.ControlPlane
	guard     *inprocess.Server
	policyDir string
)

const config = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  protectedNamespaces: [production]
  policySet: production
  breakGlass: {groups: [oncall], maxDuration: 2h}
policySets:
  - name: production
    environment: production
    paths: [%s]
`

// ownerPolicy is a team policy in conftest style, next to the built-in library.
const ownerPolicy = `package main

warn contains msg if {
	input.kind == "ConfigMap"
	not input.metadata.labels.owner
	msg := sprintf("ConfigMap %s has no owner label", [input.metadata.name])
}
`

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	if cp, err = harness.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "admission:", err)
		return 1
	}
	defer cp.Stop()
	for _, ns := range []string{"production", "sandbox"} {
		if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil {
			fmt.Fprintln(os.Stderr, r.Combined())
			return 1
		}
	}
	if policyDir, err = os.MkdirTemp("", "driftless-policies-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(policyDir)
	if err := os.WriteFile(filepath.Join(policyDir, "owner.rego"), []byte(ownerPolicy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if guard, err = inprocess.New(cp, fmt.Sprintf(config, policyDir)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(guard.Dir)
	if err := guard.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start guard:", err)
		return 1
	}
	defer guard.Stop()
	if err := guard.Install(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "install guard:", err)
		return 1
	}
	return m.Run()
}

func deployment(name, image string, privileged bool) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: production
  labels: {app.kubernetes.io/name: %[1]s, driftless.dev/source: platform}
spec:
  replicas: 3
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s, app.kubernetes.io/name: %[1]s}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: app
          image: %[2]s
          securityContext: {privileged: %[3]t}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
`, name, image, privileged)
}

func TestViolatingObjectIsDeniedWithEveryMessage(t *testing.T) {
	r := cp.Reconciler.KubectlWith(t.Context(), []byte(deployment("bad", "registry.example.com/payment-gateway:latest", true)), nil, "apply", "--server-side", "--field-manager=driftless", "-f", "-")
	if r.Err == nil {
		t.Fatalf("the reconciler applied a violating Deployment:\n%s", r.Combined())
	}
	for _, want := range []string{
		`policy set "production" denies it (2 violation(s))`,
		"images_pinned",
		"no_privileged",
		"driftless check --config <driftless.yaml> --policy-set production",
	} {
		if !strings.Contains(r.Combined(), want) {
			t.Errorf("denial does not contain %q:\n%s", want, r.Combined())
		}
	}
	if got := cp.Admin.Kubectl(t.Context(), "get", "-n", "production", "deployment/bad"); got.Err == nil {
		t.Error("the violating Deployment exists")
	}
}

func TestCompliantObjectPasses(t *testing.T) {
	r := cp.Reconciler.KubectlWith(t.Context(), []byte(deployment("good", "registry.example.com/payment-gateway:1.4.2", false)), nil, "apply", "--server-side", "--field-manager=driftless", "-f", "-")
	if r.Err != nil {
		t.Fatalf("a compliant Deployment was denied:\n%s", r.Combined())
	}
	if strings.Contains(r.Stderr, "Warning:") {
		t.Errorf("unexpected warnings:\n%s", r.Stderr)
	}
}

func TestWarnRuleIsAKubectlWarning(t *testing.T) {
	r := cp.Reconciler.Kubectl(t.Context(), "create", "configmap", "-n", "production", "unowned", "--from-literal=a=b")
	if r.Err != nil {
		t.Fatalf("a warn rule denied: %s", r.Combined())
	}
	if !strings.Contains(r.Stderr, "Warning: policy warn (main): ConfigMap unowned has no owner label") {
		t.Errorf("kubectl did not print the warning:\n%s", r.Stderr)
	}
}

func TestUnprotectedNamespaceIsNotChecked(t *testing.T) {
	bad := strings.ReplaceAll(deployment("bad", "registry.example.com/payment-gateway:latest", true), "namespace: production", "namespace: sandbox")
	if r := cp.Reconciler.KubectlWith(t.Context(), []byte(bad), nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("policy checked an unprotected namespace: %s", r.Combined())
	}
}

func TestBrokenPolicyKeepsTheLastGoodSet(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(policyDir, "owner.rego")
	t.Cleanup(func() {
		if err := harness.WriteFileAtomic(path, []byte(ownerPolicy), 0o644); err != nil {
			t.Error(err)
		}
	})
	reloads := func() map[string]float64 {
		c, err := guard.Counter("driftless_config_reloads_total", "result")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitFor := func(result string, want float64) {
		t.Helper()
		err := harness.Poll(ctx, 30*time.Second, func() error {
			if got := reloads()[result]; got != want {
				return fmt.Errorf("reloads{%s} = %v, want %v", result, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	warning := func(name string) string {
		r := cp.Reconciler.Kubectl(ctx, "create", "configmap", "-n", "production", name, "--from-literal=a=b", "--dry-run=server")
		if r.Err != nil {
			t.Fatalf("dry-run create denied: %s", r.Combined())
		}
		return r.Stderr
	}

	before := reloads()
	if err := harness.WriteFileAtomic(path, []byte("package main\n\nwarn contains msg if {\n\tmsg := \n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("failed", before["failed"]+1)
	if got := warning("still-good"); !strings.Contains(got, "ConfigMap still-good has no owner label") {
		t.Errorf("the last good policy set is not serving; warnings:\n%s", got)
	}
	r := cp.Reconciler.KubectlWith(ctx, []byte(deployment("bad2", "registry.example.com/payment-gateway:latest", false)), nil, "apply", "--dry-run=server", "-f", "-")
	if r.Err == nil || !strings.Contains(r.Combined(), "images_pinned") {
		t.Errorf("the built-in library stopped serving with a broken team policy: %s", r.Combined())
	}

	fixed := strings.Replace(ownerPolicy, "has no owner label", "needs an owner label", 1)
	if err := harness.WriteFileAtomic(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("applied", before["applied"]+1)
	if got := warning("fixed"); !strings.Contains(got, "ConfigMap fixed needs an owner label") {
		t.Errorf("the fixed policy did not take effect; warnings:\n%s", got)
	}
}
