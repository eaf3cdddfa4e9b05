package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/harness"
)

// fixture is what the reconciler would have applied: a ConfigMap and a Deployment owned by the
// platform source, plus a ConfigMap to delete.
func fixture(ns, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[2]s-config
  namespace: %[1]s
  labels: {driftless.dev/source: platform}
data:
  poolSize: "10"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[2]s-doomed
  namespace: %[1]s
  labels: {driftless.dev/source: platform}
data:
  a: b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {driftless.dev/source: platform}
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
        - name: app
          image: registry.example.com/payment-gateway:1.4.2
---
apiVersion: v1
kind: Pod
metadata:
  name: %[2]s-pod
  namespace: %[1]s
  labels: {driftless.dev/source: platform}
spec:
  containers:
    - name: app
      image: registry.example.com/payment-gateway:1.4.2
`, ns, name)
}

// applyFixture applies the fixture as the reconciler, which the guard never stops.
func applyFixture(t *testing.T, ns, name string) {
	t.Helper()
	if r := cp.Reconciler.KubectlWith(t.Context(), []byte(fixture(ns, name)), nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("reconciler applies fixture in %s: %v\n%s", ns, r.Err, r.Combined())
	}
}

// editor writes a KUBE_EDITOR script that raises the pool size, as a person would in kubectl edit.
func editor(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor.sh")
	script := "#!/bin/sh\nsed -i -e 's/poolSize: \"10\"/poolSize: \"20\"/' \"$1\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

type kubectlOp struct {
	name string
	run  func(ctx context.Context, u *harness.User, ns, name string) harness.KubectlResult
}

// manualOps are the ways a person changes objects with kubectl.
func manualOps(editorPath string) []kubectlOp {
	plain := func(args ...string) func(context.Context, *harness.User, string, string) harness.KubectlResult {
		return func(ctx context.Context, u *harness.User, ns, name string) harness.KubectlResult {
			expanded := make([]string, len(args))
			for i, a := range args {
				expanded[i] = strings.NewReplacer("NS", ns, "NAME", name).Replace(a)
			}
			return u.Kubectl(ctx, expanded...)
		}
	}
	return []kubectlOp{
		{"edit", func(ctx context.Context, u *harness.User, ns, name string) harness.KubectlResult {
			return u.KubectlWith(ctx, nil, []string{"KUBE_EDITOR=" + editorPath}, "edit", "-n", ns, "configmap/"+name+"-config")
		}},
		{"patch", plain("patch", "-n", "NS", "configmap/NAME-config", "--type=merge", "-p", `{"data":{"poolSize":"30"}}`)},
		{"apply", func(ctx context.Context, u *harness.User, ns, name string) harness.KubectlResult {
			cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-config, namespace: %s}\ndata: {poolSize: \"40\"}\n", name, ns)
			return u.KubectlWith(ctx, []byte(cm), nil, "apply", "-f", "-")
		}},
		{"scale", plain("scale", "-n", "NS", "deployment/NAME", "--replicas=5")},
		{"label", plain("label", "-n", "NS", "configmap/NAME-config", "team=payments")},
		{"annotate", plain("annotate", "-n", "NS", "configmap/NAME-config", "note=tweaked")},
		{"debug (ephemeral container)", plain("debug", "-n", "NS", "pod/NAME-pod", "--image=registry.example.com/debug:1", "--attach=false")},
		{"create", plain("create", "configmap", "-n", "NS", "NAME-new", "--from-literal=a=b")},
		{"delete", plain("delete", "-n", "NS", "configmap/NAME-doomed", "--wait=false")},
		{"delete --all", plain("delete", "configmaps", "--all", "-n", "NS", "--wait=false")},
	}
}

func TestPeopleAreDeniedInProtectedNamespaces(t *testing.T) {
	ops := manualOps(editor(t))
	for _, user := range []*harness.User{cp.Bob, cp.Admin} {
		t.Run(user.Name, func(t *testing.T) {
			ns := "prod-" + user.Name
			applyFixture(t, ns, "gateway")
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					r := op.run(t.Context(), user, ns, "gateway")
					if r.Err == nil {
						t.Fatalf("kubectl %s by %s in protected %s succeeded:\n%s", op.name, user.Name, ns, r.Combined())
					}
					if op.name == "create" {
						assertCreateDenial(t, r.Combined(), user.Name, ns)
						return
					}
					assertActionableDenial(t, r.Combined(), user.Name, ns)
				})
			}
			t.Run("delete namespace", func(t *testing.T) {
				r := user.Kubectl(t.Context(), "delete", "namespace", ns, "--wait=false")
				if r.Err == nil {
					t.Fatalf("deleting protected namespace %s succeeded:\n%s", ns, r.Combined())
				}
				assertActionableDenial(t, r.Combined(), user.Name, ns)
			})
			// Nothing changed.
			assertKubectlOutput(t, cp.Admin, `{.data.poolSize}`, "10", "get", "-n", ns, "configmap/gateway-config")
			assertKubectlOutput(t, cp.Admin, `{.metadata.labels.team}{.metadata.annotations.note}`, "", "get", "-n", ns, "configmap/gateway-config")
			assertKubectlOutput(t, cp.Admin, `{.spec.replicas}`, "2", "get", "-n", ns, "deployment/gateway")
			assertKubectlOutput(t, cp.Admin, `{.spec.ephemeralContainers}`, "", "get", "-n", ns, "pod/gateway-pod")
			assertKubectlOutput(t, cp.Admin, `{.metadata.name}`, "gateway-doomed", "get", "-n", ns, "configmap/gateway-doomed")
			assertKubectlOutput(t, cp.Admin, `{.status.phase}`, "Active", "get", "namespace", ns)
			if r := cp.Admin.Kubectl(t.Context(), "get", "-n", ns, "configmap/gateway-new"); r.Err == nil {
				t.Errorf("configmap gateway-new was created in %s", ns)
			}
		})
	}
}

func TestPeopleMayChangeUnprotectedNamespaces(t *testing.T) {
	ops := manualOps(editor(t))
	for _, user := range []*harness.User{cp.Bob, cp.Admin} {
		t.Run(user.Name, func(t *testing.T) {
			ns := "dev-" + user.Name
			applyFixture(t, ns, "gateway")
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					if r := op.run(t.Context(), user, ns, "gateway"); r.Err != nil {
						t.Fatalf("kubectl %s by %s in unprotected %s failed: %v\n%s", op.name, user.Name, ns, r.Err, r.Combined())
					}
				})
			}
			t.Run("delete namespace", func(t *testing.T) {
				scratch := ns + "-scratch"
				if r := user.Kubectl(t.Context(), "create", "namespace", scratch); r.Err != nil {
					t.Fatalf("create namespace %s: %s", scratch, r.Combined())
				}
				if r := user.Kubectl(t.Context(), "delete", "namespace", scratch, "--wait=false"); r.Err != nil {
					t.Fatalf("delete unprotected namespace %s: %s", scratch, r.Combined())
				}
			})
		})
	}
}

func TestReconcilerMayChangeEverything(t *testing.T) {
	ns := "prod-reconciler"
	applyFixture(t, ns, "gateway")
	for _, op := range manualOps(editor(t)) {
		t.Run(op.name, func(t *testing.T) {
			if r := op.run(t.Context(), cp.Reconciler, ns, "gateway"); r.Err != nil {
				t.Fatalf("kubectl %s by the reconciler in %s failed: %v\n%s", op.name, ns, r.Err, r.Combined())
			}
		})
	}
}

func TestKubernetesComponentsAreNeverSentToTheGuard(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "components")
	rs, err := cp.AddUser(ctx, "system:serviceaccount:kube-system:replicaset-controller", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	if err != nil {
		t.Fatal(err)
	}
	node, err := cp.AddUser(ctx, "system:node:worker-1", "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	before, err := guard.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*harness.User{rs, node, cp.Reconciler} {
		r := u.Kubectl(ctx, "patch", "-n", "production", "configmap/components-config", "--type=merge", "-p", `{"data":{"by":"`+strings.ReplaceAll(u.Name, ":", "-")+`"}}`)
		if r.Err != nil {
			t.Fatalf("%s could not patch in a protected namespace: %s", u.Name, r.Combined())
		}
	}
	after, err := guard.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	if after["total"] != before["total"] {
		t.Errorf("the guard decided %v requests from Kubernetes components and the reconciler; matchConditions should skip them (before %v, after %v)",
			after["total"]-before["total"], before, after)
	}
	// The counter does move for a person, so the check above can fail.
	if r := cp.Bob.Kubectl(ctx, "patch", "-n", "production", "configmap/components-config", "--type=merge", "-p", `{"data":{"by":"bob"}}`); r.Err == nil {
		t.Fatalf("bob's patch was allowed: %s", r.Combined())
	}
	final, err := guard.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	if final["denied/protected-namespace"] != after["denied/protected-namespace"]+1 {
		t.Errorf("bob's denial was not counted: before %v, after %v", after, final)
	}
}

func TestDenialsAreRecordedAsEvents(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "evented")
	if r := cp.Bob.Kubectl(ctx, "label", "-n", "production", "configmap/evented-config", "audit=me"); r.Err == nil {
		t.Fatalf("bob's label was allowed: %s", r.Combined())
	}
	if err := waitForEvent(ctx, "evented-config", "ManualChangeDenied", "bob tried to update configmaps/evented-config"); err != nil {
		t.Fatal(err)
	}
	// A denial about the protected Namespace itself is recorded in that namespace.
	if r := cp.Bob.Kubectl(ctx, "label", "namespace/production", "audit=me"); r.Err == nil {
		t.Fatalf("bob's label on the namespace was allowed: %s", r.Combined())
	}
	if err := waitForEvent(ctx, "production", "ManualChangeDenied", "bob tried to update namespaces/production"); err != nil {
		t.Fatal(err)
	}
}

// breakGlass returns the kubectl arguments that annotate an object for break-glass.
func breakGlass(ns, object, reason string, until time.Time) []string {
	return []string{
		"annotate", "--overwrite", "-n", ns, object,
		v1alpha1.AnnotationBreakGlass + "=" + reason,
		v1alpha1.AnnotationBreakGlassUntil + "=" + until.UTC().Format(time.RFC3339),
	}
}

func TestBreakGlass(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "incident")
	start := guard.Clock.Now()
	t.Cleanup(func() { guard.Clock.SetTime(start) })
	const cm = "configmap/incident-config"

	steps := []struct {
		name  string
		user  *harness.User
		args  []string
		allow bool
		want  string
	}{
		{"bob may not self-grant break-glass", cp.Bob, breakGlass("production", cm, "INC-7: bigger pool", start.Add(time.Hour)), false, "not in a break-glass group"},
		{"alice may not break glass beyond the maximum", cp.Alice, breakGlass("production", cm, "INC-7: bigger pool", start.Add(3*time.Hour)), false, "more than the maximum of 2h"},
		{"alice may not break glass in the past", cp.Alice, breakGlass("production", cm, "INC-7: bigger pool", start.Add(-time.Minute)), false, "expired"},
		{"alice may not break glass without a reason", cp.Alice, breakGlass("production", cm, " ", start.Add(time.Hour)), false, "needs a reason"},
		{"alice without break-glass is denied like anyone", cp.Alice, []string{"patch", "-n", "production", cm, "--type=merge", "-p", `{"data":{"poolSize":"50"}}`}, false, "driftless: alice may not update"},
		{"alice breaks glass", cp.Alice, breakGlass("production", cm, "INC-7: bigger pool", start.Add(time.Hour)), true, ""},
		{"alice changes the object under break-glass", cp.Alice, []string{"patch", "-n", "production", cm, "--type=merge", "-p", `{"data":{"poolSize":"50","burst":"on"}}`}, true, ""},
		{"alice may not write as a controller, which the revert would leave in place", cp.Alice, []string{"patch", "-n", "production", cm, "--field-manager=ops-controller", "--type=merge", "-p", `{"data":{"extra":"leaked"}}`}, false, `not "ops-controller"`},
		{"bob still may not change it", cp.Bob, []string{"patch", "-n", "production", cm, "--type=merge", "-p", `{"data":{"poolSize":"60"}}`}, false, "driftless: bob may not update"},
		{"alice scales under break-glass on the deployment", cp.Alice, breakGlass("production", "deployment/incident", "INC-7: more replicas", start.Add(time.Hour)), true, ""},
		{"alice scales", cp.Alice, []string{"scale", "-n", "production", "deployment/incident", "--replicas=4"}, true, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := s.user.Kubectl(ctx, s.args...)
			if s.allow && r.Err != nil {
				t.Fatalf("denied: %s", r.Combined())
			}
			if !s.allow {
				if r.Err == nil {
					t.Fatalf("allowed: %s", r.Combined())
				}
				if !strings.Contains(r.Combined(), s.want) {
					t.Errorf("denial does not say %q:\n%s", s.want, r.Combined())
				}
			}
		})
	}
	assertKubectlOutput(t, cp.Admin, `{.data.poolSize}/{.data.burst}`, "50/on", "get", "-n", "production", cm)
	assertKubectlOutput(t, cp.Admin, `{.spec.replicas}`, "4", "get", "-n", "production", "deployment/incident")

	t.Run("after expiry alice is denied", func(t *testing.T) {
		guard.Clock.SetTime(start.Add(time.Hour + time.Second))
		r := cp.Alice.Kubectl(ctx, "patch", "-n", "production", cm, "--type=merge", "-p", `{"data":{"poolSize":"70"}}`)
		if r.Err == nil {
			t.Fatalf("alice changed the object after the break-glass expired: %s", r.Combined())
		}
		if !strings.Contains(r.Combined(), "expired") {
			t.Errorf("denial does not say the break-glass expired:\n%s", r.Combined())
		}
	})

	t.Run("break-glass uses are recorded", func(t *testing.T) {
		if err := waitForEvent(ctx, "incident-config", "BreakGlassUsed", "alice (group oncall)", "INC-7: bigger pool"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestServerSideDryRunGetsTheSameAnswer(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "dryrun")
	cases := [][]string{
		{"patch", "-n", "production", "configmap/dryrun-config", "--type=merge", "-p", `{"data":{"poolSize":"30"}}`},
		{"delete", "-n", "production", "configmap/dryrun-doomed"},
		{"create", "configmap", "-n", "production", "dryrun-new", "--from-literal=a=b"},
		{"scale", "-n", "production", "deployment/dryrun", "--replicas=5"},
	}
	for _, args := range cases {
		t.Run(args[0], func(t *testing.T) {
			dry := cp.Bob.Kubectl(ctx, append(args, "--dry-run=server")...)
			real := cp.Bob.Kubectl(ctx, args...)
			if dry.Err == nil || real.Err == nil {
				t.Fatalf("want both denied; dry-run: %v %s; real: %v %s", dry.Err, dry.Combined(), real.Err, real.Combined())
			}
			if denial(dry.Combined()) != denial(real.Combined()) {
				t.Errorf("dry-run and real request got different answers:\ndry-run: %s\nreal:    %s", dry.Combined(), real.Combined())
			}
			if r := cp.Reconciler.Kubectl(ctx, append(args, "--dry-run=server")...); r.Err != nil {
				t.Errorf("reconciler's dry-run was denied: %s", r.Combined())
			}
		})
	}
}

// denial returns the guard's message without kubectl's prefix, which names the verb.
func denial(out string) string {
	if i := strings.Index(out, "driftless: "); i >= 0 {
		return out[i:]
	}
	return out
}

func TestWarnAndDryRunModes(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "modes")
	t.Cleanup(func() {
		if err := guard.SetConfig(context.Background(), fmt.Sprintf(guardConfig, "enforce"), func() error {
			return guard.WaitEnforcing(context.Background())
		}); err != nil {
			t.Errorf("restore enforce mode: %v", err)
		}
	})
	patch := func(value string, dryRun bool) harness.KubectlResult {
		args := []string{"patch", "-n", "production", "configmap/modes-config", "--type=merge", "-p", `{"data":{"poolSize":"` + value + `"}}`}
		if dryRun {
			args = append(args, "--dry-run=server")
		}
		return cp.Bob.Kubectl(ctx, args...)
	}

	t.Run("warn", func(t *testing.T) {
		err := guard.SetConfig(ctx, fmt.Sprintf(guardConfig, "warn"), func() error {
			if r := patch("11", true); r.Err != nil {
				return fmt.Errorf("still denied: %s", r.Combined())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r := patch("12", false)
		if r.Err != nil {
			t.Fatalf("warn mode denied bob: %s", r.Combined())
		}
		if !strings.Contains(r.Stderr, "Warning: driftless: bob may not update configmaps/modes-config in namespace production") ||
			!strings.Contains(r.Stderr, "Warning: Ways forward:") {
			t.Errorf("kubectl did not print the guard's warning:\n%s", r.Stderr)
		}
		assertKubectlOutput(t, cp.Admin, `{.data.poolSize}`, "12", "get", "-n", "production", "configmap/modes-config")
	})

	t.Run("dry-run", func(t *testing.T) {
		err := guard.SetConfig(ctx, fmt.Sprintf(guardConfig, "dry-run"), func() error {
			if r := patch("13", true); r.Err != nil || strings.Contains(r.Stderr, "Warning:") {
				return fmt.Errorf("not in dry-run mode yet: %s", r.Combined())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		before, err := guard.Decisions()
		if err != nil {
			t.Fatal(err)
		}
		r := patch("14", false)
		if r.Err != nil || strings.Contains(r.Stderr, "Warning:") {
			t.Fatalf("dry-run mode should allow silently: %v %s", r.Err, r.Combined())
		}
		after, err := guard.Decisions()
		if err != nil {
			t.Fatal(err)
		}
		if after["recorded/protected-namespace"] != before["recorded/protected-namespace"]+1 {
			t.Errorf("dry-run mode did not record the change: before %v after %v", before, after)
		}
		if err := waitForEvent(ctx, "modes-config", "ManualChangeRecorded", "bob tried to update"); err != nil {
			t.Error(err)
		}
	})
}

func TestInvalidConfigReloadKeepsTheLastGoodOne(t *testing.T) {
	ctx := t.Context()
	t.Cleanup(func() {
		if err := harness.WriteFileAtomic(guard.ConfigPath, []byte(fmt.Sprintf(guardConfig, "enforce")), 0o600); err != nil {
			t.Error(err)
		}
	})
	before, err := guard.Counter("driftless_config_reloads_total", "result")
	if err != nil {
		t.Fatal(err)
	}
	// "off" is not a mode: a typo must not switch the guard off.
	if err := harness.WriteFileAtomic(guard.ConfigPath, []byte(fmt.Sprintf(guardConfig, "off")), 0o600); err != nil {
		t.Fatal(err)
	}
	err = harness.Poll(ctx, 30*time.Second, func() error {
		now, err := guard.Counter("driftless_config_reloads_total", "result")
		if err != nil {
			return err
		}
		if now["failed"] != before["failed"]+1 {
			return fmt.Errorf("the reloader has not rejected the file yet: %v", now)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := guard.WaitEnforcing(ctx); err != nil {
		t.Fatalf("an invalid configuration changed the guard: %v", err)
	}
}

func TestCertificateRotationWithoutRestart(t *testing.T) {
	ctx := t.Context()
	before, err := guard.ServingSerial()
	if err != nil {
		t.Fatal(err)
	}
	next := before + 1
	if err := guard.CA.WriteServingCert(guard.CertDir, next, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	err = harness.Poll(ctx, time.Minute, func() error {
		got, err := guard.ServingSerial()
		if err != nil {
			return err
		}
		if got != next {
			return fmt.Errorf("still serving certificate %d", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := guard.WaitEnforcing(ctx); err != nil {
		t.Fatalf("the API server does not reach the guard after rotation: %v", err)
	}
}

func TestFailClosedWhenTheGuardIsDown(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "down")
	if err := guard.Stop(); err != nil {
		t.Fatalf("stop guard: %v", err)
	}
	t.Cleanup(func() {
		if err := guard.Start(); err != nil {
			t.Fatalf("restart guard: %v", err)
		}
		if err := guard.WaitEnforcing(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	for _, u := range []*harness.User{cp.Bob, cp.Admin} {
		r := u.Kubectl(ctx, "patch", "-n", "production", "configmap/down-config", "--type=merge", "-p", `{"data":{"poolSize":"99"}}`)
		if r.Err == nil {
			t.Errorf("%s changed a protected object while the guard was down", u.Name)
		} else if !strings.Contains(r.Combined(), "failed calling webhook") {
			t.Errorf("%s got an unexpected error: %s", u.Name, r.Combined())
		}
	}
	if r := cp.Admin.Kubectl(ctx, "create", "configmap", "-n", "kube-system", "still-works", "--from-literal=a=b"); r.Err != nil {
		t.Errorf("kube-system writes must not depend on the guard: %s", r.Combined())
	}
	if r := cp.Bob.Kubectl(ctx, "create", "configmap", "-n", "dev-bob", "still-works", "--from-literal=a=b"); r.Err != nil {
		t.Errorf("unprotected namespaces must not depend on the guard: %s", r.Combined())
	}
	assertKubectlOutput(t, cp.Admin, `{.data.poolSize}`, "10", "get", "-n", "production", "configmap/down-config")
}

// waitForEvent waits until an Event with reason about the named object in production has a
// note containing every string in want.
func waitForEvent(ctx context.Context, name, reason string, want ...string) error {
	return harness.Poll(ctx, 30*time.Second, func() error {
		r := cp.Admin.Kubectl(ctx, "get", "events.events.k8s.io", "-n", "production",
			"--field-selector", "regarding.name="+name+",reason="+reason, "-o", "jsonpath={.items[*].note}")
		if r.Err != nil {
			return fmt.Errorf("%v: %s", r.Err, r.Combined())
		}
		for _, w := range want {
			if !strings.Contains(r.Stdout, w) {
				return fmt.Errorf("no %s event on %s with %q yet: %q", reason, name, w, r.Stdout)
			}
		}
		return nil
	})
}

// assertCreateDenial checks a denied create: Git is the way forward, and break-glass, which
// cannot create, is not offered.
func assertCreateDenial(t *testing.T, out, user, ns string) {
	t.Helper()
	for _, want := range []string{
		"denied the request: driftless: " + user + " may not create ",
		ns,
		"Ways forward:",
		"1. Change it in Git",
		"break-glass covers only objects that exist; add a new object in Git",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("denial does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "driftless break-glass") {
		t.Errorf("a create denial offers break-glass, which cannot create:\n%s", out)
	}
}

func assertActionableDenial(t *testing.T, out, user, ns string) {
	t.Helper()
	for _, want := range []string{
		"denied the request: driftless: " + user + " may not ",
		ns,
		"Ways forward:",
		"1. Change it in Git",
		`2. In an incident, a member of group "oncall" may break glass for at most 2h`,
		"driftless break-glass",
		v1alpha1.AnnotationBreakGlass + "=<reason>",
		v1alpha1.AnnotationBreakGlassUntil + "=<RFC 3339 expiry>",
		"Owner: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("denial does not contain %q:\n%s", want, out)
		}
	}
}

func assertKubectlOutput(t *testing.T, u *harness.User, jsonpath, want string, args ...string) {
	t.Helper()
	r := u.Kubectl(context.Background(), append(args, "-o", "jsonpath="+jsonpath)...)
	if r.Err != nil {
		t.Errorf("kubectl %v: %s", args, r.Combined())
		return
	}
	if r.Stdout != want {
		t.Errorf("kubectl %v -o jsonpath=%s = %q, want %q", args, jsonpath, r.Stdout, want)
	}
}
