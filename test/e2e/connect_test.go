package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// resizablePod is a pod with resource requests, as the reconciler would apply it.
const resizablePod = `apiVersion: v1
kind: Pod
metadata:
  name: resizable
  namespace: %s
spec:
  containers:
    - name: app
      image: registry.example.com/payment-gateway:1.4.2
      resources:
        requests: {cpu: 100m, memory: 64Mi}
`

// TestResizeIsGuarded: an in-place resize (the pods/resize subresource) is a change to the
// pod's desired resources, denied to bob in production like any other change.
func TestResizeIsGuarded(t *testing.T) {
	ctx := t.Context()
	for _, ns := range []string{"production", "dev-bob"} {
		if r := cp.Reconciler.KubectlWith(ctx, []byte(strings.ReplaceAll(resizablePod, "%s", ns)), nil, "apply", "-f", "-"); r.Err != nil {
			t.Fatalf("reconciler applies the pod in %s: %s", ns, r.Combined())
		}
	}
	patch := `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"300m"}}}]}}`
	r := cp.Bob.Kubectl(ctx, "patch", "-n", "production", "pod/resizable", "--subresource", "resize", "--type=strategic", "-p", patch)
	if r.Err == nil {
		t.Fatalf("bob resized a pod in production:\n%s", r.Combined())
	}
	assertActionableDenial(t, r.Combined(), "bob", "production")
	if !strings.Contains(r.Combined(), "may not update pods/resizable (subresource resize) in namespace production") {
		t.Errorf("denial does not name the resize:\n%s", r.Combined())
	}
	assertKubectlOutput(t, cp.Admin, `{.spec.containers[0].resources.requests.cpu}`, "100m", "get", "-n", "production", "pod/resizable")

	// Outside protected scope the same resize goes through: the denial above is the guard's.
	if r := cp.Bob.Kubectl(ctx, "patch", "-n", "dev-bob", "pod/resizable", "--subresource", "resize", "--type=strategic", "-p", patch); r.Err != nil {
		t.Errorf("bob's resize in dev-bob: %s", r.Combined())
	}
}

// TestConnectIsBreakGlassOnly runs kubectl exec and attach: in production they are denied to
// bob, and to alice until the pod carries a valid break-glass. There is no kubelet here, so an
// exec the guard allows fails later, when the API server looks for the pod's node; that
// failure is not the guard's message.
func TestConnectIsBreakGlassOnly(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "shell")
	applyFixture(t, "dev-bob", "shell")
	const pod = "pod/shell-pod"
	execArgs := func(ns string) []string { return []string{"exec", "-n", ns, pod, "--", "true"} }
	connect := func(ctx context.Context, args []string, run func(context.Context, ...string) (string, error)) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return run(ctx, args...)
	}
	bob := func(ctx context.Context, args ...string) (string, error) {
		r := cp.Bob.Kubectl(ctx, args...)
		return r.Combined(), r.Err
	}
	alice := func(ctx context.Context, args ...string) (string, error) {
		r := cp.Alice.Kubectl(ctx, args...)
		return r.Combined(), r.Err
	}
	guardDenial := "may not connect to pods/shell-pod"

	before, err := guard.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"exec", execArgs("production")},
		{"attach", []string{"attach", "-n", "production", pod}},
	} {
		t.Run("bob "+tt.name, func(t *testing.T) {
			out, err := connect(ctx, tt.args, bob)
			if err == nil || !strings.Contains(out, "driftless: bob "+guardDenial) {
				t.Fatalf("bob's %s in production was not denied by the guard (%v):\n%s", tt.name, err, out)
			}
			assertActionableDenial(t, out, "bob", "production")
		})
	}
	t.Run("bob exec outside protected scope", func(t *testing.T) {
		out, err := connect(ctx, execArgs("dev-bob"), bob)
		if err == nil || strings.Contains(out, "driftless:") {
			t.Fatalf("bob's exec in dev-bob: want the API server's failure to reach a node, not the guard's (%v):\n%s", err, out)
		}
	})
	t.Run("alice exec without break-glass", func(t *testing.T) {
		out, err := connect(ctx, execArgs("production"), alice)
		if err == nil || !strings.Contains(out, "driftless: alice "+guardDenial) {
			t.Fatalf("alice's exec without break-glass was not denied by the guard (%v):\n%s", err, out)
		}
	})
	t.Run("alice exec under break-glass", func(t *testing.T) {
		if r := cp.Alice.Kubectl(ctx, breakGlass("production", pod, "INC-42: inspect the pool", guard.Clock.Now().Add(time.Hour))...); r.Err != nil {
			t.Fatalf("alice breaks glass on the pod: %s", r.Combined())
		}
		out, err := connect(ctx, execArgs("production"), alice)
		if err == nil || strings.Contains(out, "driftless:") {
			t.Fatalf("alice's exec under break-glass: want the API server's failure to reach a node, not the guard's (%v):\n%s", err, out)
		}
	})
	after, err := guard.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	if got := after["denied/protected-namespace-connect"] - before["denied/protected-namespace-connect"]; got < 3 {
		t.Errorf("the guard counted %v CONNECT denials, want at least 3", got)
	}
	if got := after["allowed/break-glass"] - before["allowed/break-glass"]; got < 2 {
		t.Errorf("the guard counted %v break-glass uses (annotate, exec), want at least 2", got)
	}
}
