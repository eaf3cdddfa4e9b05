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
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// sourcesNamespace is where the GitSources of these tests apply their objects; the guard does
// not protect it, so that the tests can drift objects as admin.
const sourcesNamespace = "dev-admin"

// driftlessNamespace holds the GitSources; only GitSources there are sources.
const driftlessNamespace = v1alpha1.DefaultNamespace

// reconcilingConfig is the configuration of the driftless runs the GitSource tests start.
const reconcilingConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  protectedNamespaces: [production]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
`

// sourcesConfig adds TestGitSources' policy set, whose paths the test appends.
const sourcesConfig = reconcilingConfig + `policySets:
  - name: shop
    library: {disabled: true}
`

// gitSourceYAML is a GitSource of the loopback Git server's repository url, authenticated by
// the Secret git-creds.
func gitSourceYAML(name, url, path, interval string, extra string) []byte {
	return fmt.Appendf(nil, `apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata:
  name: %s
  namespace: %s
spec:
  url: %s
  path: %s
  interval: %s
  targetNamespace: %s
  secretRef: {name: git-creds}
%s`, name, driftlessNamespace, url, path, interval, sourcesNamespace, extra)
}

// cmYAML is a ConfigMap with one data key.
func cmYAML(name, key, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  %s: %q\n", name, key, value)
}

// kubectlOK runs kubectl as admin and fails the test on an error.
func kubectlOK(t *testing.T, args ...string) string {
	t.Helper()
	r := cp.Admin.Kubectl(t.Context(), args...)
	if r.Err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), r.Err, r.Combined())
	}
	return r.Stdout
}

// jsonpath reads one field of a GitSource.
func jsonpath(t *testing.T, name, path string) string {
	t.Helper()
	r := cp.Admin.Kubectl(t.Context(), "-n", driftlessNamespace, "get", "gitsource", name, "-o", "jsonpath="+path)
	return r.Stdout
}

// waitFor polls f until it returns nil or a minute passes.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := harness.Poll(t.Context(), time.Minute, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitApplied waits until GitSource name has applied revision.
func waitApplied(t *testing.T, name, revision string) {
	t.Helper()
	waitFor(t, "gitsource "+name+" applies "+revision, func() error {
		if got := jsonpath(t, name, "{.status.lastAppliedRevision}"); got != revision {
			return fmt.Errorf("revision %q, want %q; ready: %s", got, revision, jsonpath(t, name, `{.status.conditions[?(@.type=="Ready")].message}`))
		}
		return nil
	})
}

// cmData returns a ConfigMap's key in the sources namespace; "" when it does not exist.
func cmData(t *testing.T, name, key string) string {
	t.Helper()
	return cp.Admin.Kubectl(t.Context(), "-n", sourcesNamespace, "get", "configmap", name, "-o", "jsonpath={.data."+key+"}").Stdout
}

// TestGitSources drives GitSources through `driftless run` with kubectl and a real Git
// server: status and printer columns, kubectl wait, a policy-denied revision, sync requests,
// a changed interval, suspension by spec and by annotation with its expiry on the injected
// clock, and a removed source that leaves its objects.
func TestGitSources(t *testing.T) {
	ctx := t.Context()
	if r := cp.Admin.Kubectl(ctx, "get", "namespace", driftlessNamespace); r.Err != nil {
		kubectlOK(t, "create", "namespace", driftlessNamespace)
	}
	git := gitserver.New(t, gitserver.WithBasicAuth("robot", "s3cret-pass"))
	repo := git.CreateRepo(t, "shop.git")
	// The policy set the policy test names; the shared guard does not reconcile, this
	// driftless run does, on a fake clock.
	policyDir := t.TempDir()
	rule := "package main\n\ndeny contains msg if {\n\tinput.kind == \"ConfigMap\"\n\tinput.data.forbidden\n\tmsg := \"ConfigMap has a forbidden key\"\n}\n"
	if err := os.WriteFile(filepath.Join(policyDir, "shop.rego"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := inprocess.New(cp, sourcesConfig+"    paths: ["+policyDir+"]\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	kubectlOK(t, "-n", driftlessNamespace, "create", "secret", "generic", "git-creds", "--from-literal=username=robot", "--from-literal=password=s3cret-pass")
	commit := func(files map[string]string, msg string) string {
		return repo.Commit(t, "main", gitserver.Change{Files: files, Message: msg})
	}
	rev1 := commit(map[string]string{
		"shop/kustomization.yaml":     "resources: [cm.yaml]\n",
		"shop/cm.yaml":                cmYAML("shop", "size", "1"),
		"sentinel/kustomization.yaml": "resources: [cm.yaml]\n",
		"sentinel/cm.yaml":            cmYAML("sentinel", "v", "git"),
	}, "first")

	// Two sources: shop, and sentinel, whose drift reverts show that the reconciler is
	// running when shop's is not reverted.
	r := cp.Admin.KubectlWith(ctx, gitSourceYAML("shop", git.RepoURL("shop.git"), "shop", "1h", ""), nil, "apply", "-f", "-")
	if r.Err != nil {
		t.Fatalf("create gitsource: %v\n%s", r.Err, r.Combined())
	}
	r = cp.Admin.KubectlWith(ctx, gitSourceYAML("sentinel", git.RepoURL("shop.git"), "sentinel", "1h", ""), nil, "apply", "-f", "-")
	if r.Err != nil {
		t.Fatalf("create gitsource: %v\n%s", r.Err, r.Combined())
	}
	t.Cleanup(func() {
		cp.Admin.Kubectl(context.Background(), "-n", driftlessNamespace, "delete", "gitsource", "shop", "sentinel", "--ignore-not-found", "--wait=false")
	})

	t.Run("kubectl wait returns after the first sync", func(t *testing.T) {
		r := cp.Admin.Kubectl(ctx, "-n", driftlessNamespace, "wait", "--for=condition=Ready", "gitsource/shop", "gitsource/sentinel", "--timeout=90s")
		if r.Err != nil {
			t.Fatalf("kubectl wait: %v\n%s\n%s", r.Err, r.Combined(), kubectlOK(t, "-n", driftlessNamespace, "get", "gitsource", "-o", "yaml"))
		}
		if got := jsonpath(t, "shop", "{.status.lastAppliedRevision}"); got != rev1 {
			t.Errorf("Ready with revision %q, want %s", got, rev1)
		}
		if got := cmData(t, "shop", "size"); got != "1" {
			t.Errorf("configmap shop size = %q, want 1 from Git", got)
		}
	})

	t.Run("kubectl get gitsources -A shows READY and REVISION", func(t *testing.T) {
		out := kubectlOK(t, "get", "gitsources", "-A")
		var line string
		for l := range strings.SplitSeq(out, "\n") {
			if strings.Contains(l, " shop ") {
				line = l
			}
		}
		head := strings.Fields(strings.SplitN(out, "\n", 2)[0])
		if strings.Join(head[:5], " ") != "NAMESPACE NAME READY REVISION LAST" {
			t.Errorf("columns are %v, want NAMESPACE NAME READY REVISION LAST SYNC AGE MESSAGE", head)
		}
		if f := strings.Fields(line); len(f) < 4 || f[2] != "True" || f[3] != rev1 {
			t.Errorf("kubectl get gitsources -A shows %q, want shop True %s:\n%s", line, rev1, out)
		}
		if _, err := fmt.Sscan(kubectlOK(t, "-n", driftlessNamespace, "get", "gs", "shop", "-o", "name"), new(string)); err != nil {
			t.Errorf("short name gs: %v", err)
		}
	})

	t.Run("a requested sync applies well before the interval", func(t *testing.T) {
		// The interval is an hour on a fake clock that nobody advances: only the request
		// can make this sync happen.
		rev2 := commit(map[string]string{"shop/cm.yaml": cmYAML("shop", "size", "2")}, "size 2")
		kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "gitsource/shop", v1alpha1.AnnotationReconcileRequestedAt+"=req-1")
		waitApplied(t, "shop", rev2)
		waitFor(t, "the request is recorded as handled", func() error {
			if got := jsonpath(t, "shop", "{.status.lastHandledReconcileAt}"); got != "req-1" {
				return fmt.Errorf("lastHandledReconcileAt = %q", got)
			}
			return nil
		})
		if got := cmData(t, "shop", "size"); got != "2" {
			t.Errorf("size = %q after the requested sync, want 2", got)
		}
	})

	t.Run("a policy-denied revision sets Ready=False naming the rule", func(t *testing.T) {
		t.Cleanup(func() {
			cp.Admin.Kubectl(context.Background(), "-n", driftlessNamespace, "patch", "gitsource", "shop", "--type=json", `-p=[{"op":"remove","path":"/spec/policySet"}]`)
		})
		kubectlOK(t, "-n", driftlessNamespace, "patch", "gitsource", "shop", "--type=merge", "-p", `{"spec":{"policySet":"shop"}}`)
		denied := commit(map[string]string{"shop/cm.yaml": cmYAML("shop", "forbidden", "yes")}, "forbidden")
		kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "gitsource/shop", v1alpha1.AnnotationReconcileRequestedAt+"=req-denied")
		waitFor(t, "Ready=False PolicyDenied", func() error {
			st := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}/{.status.lastAttemptedRevision}`)
			if st != "False/PolicyDenied/"+denied {
				return fmt.Errorf("ready = %s", st)
			}
			return nil
		})
		msg := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Ready")].message}`)
		if !strings.Contains(msg, "deny") || !strings.Contains(msg, "ConfigMap has a forbidden key") {
			t.Errorf("Ready message %q does not name the rule and its message", msg)
		}
		if got := jsonpath(t, "shop", "{.status.violations[0].rule}"); got == "" {
			t.Error("status.violations lists no rule")
		}
		if got := cmData(t, "shop", "forbidden"); got != "" {
			t.Errorf("the denied revision was applied: forbidden = %q", got)
		}
		// Back to a good revision for the next steps.
		good := commit(map[string]string{"shop/cm.yaml": cmYAML("shop", "size", "3")}, "size 3")
		kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "gitsource/shop", v1alpha1.AnnotationReconcileRequestedAt+"=req-good")
		waitApplied(t, "shop", good)
	})

	t.Run("a changed interval takes effect", func(t *testing.T) {
		gen := jsonpath(t, "shop", "{.metadata.generation}")
		kubectlOK(t, "-n", driftlessNamespace, "patch", "gitsource", "shop", "--type=merge", "-p", `{"spec":{"interval":"2m"}}`)
		waitFor(t, "the new generation is observed", func() error {
			if got := jsonpath(t, "shop", "{.status.observedGeneration}"); got == gen || got == "" {
				return fmt.Errorf("observedGeneration %s", got)
			}
			return nil
		})
		rev := commit(map[string]string{"shop/cm.yaml": cmYAML("shop", "size", "4")}, "size 4")
		// A few steps of the new interval are far less than the old hour.
		steps := 0
		waitFor(t, "a sync after the new interval", func() error {
			if jsonpath(t, "shop", "{.status.lastAppliedRevision}") == rev {
				return nil
			}
			if steps < 5 {
				srv.Clock.Step(2*time.Minute + time.Second)
				steps++
			}
			return fmt.Errorf("not applied after %d steps of 2m", steps)
		})
	})

	// drift changes a ConfigMap as admin, outside Git.
	drift := func(name, key, value string) {
		t.Helper()
		kubectlOK(t, "-n", sourcesNamespace, "patch", "configmap", name, "--type=merge", "-p", fmt.Sprintf(`{"data":{%q:%q}}`, key, value))
	}
	// sentinelReverted drifts the sentinel and waits for its revert: drift of shop made
	// before it and not reverted was left alone.
	sentinelReverted := func() {
		t.Helper()
		drift("sentinel", "v", "drift")
		waitFor(t, "the sentinel's drift is reverted", func() error {
			if got := cmData(t, "sentinel", "v"); got != "git" {
				return fmt.Errorf("sentinel v = %q", got)
			}
			return nil
		})
	}

	t.Run("spec.suspend stops self-heal", func(t *testing.T) {
		kubectlOK(t, "-n", driftlessNamespace, "patch", "gitsource", "shop", "--type=merge", "-p", `{"spec":{"suspend":true}}`)
		waitFor(t, "Ready=False Suspended", func() error {
			if got := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Ready")].reason}`); got != v1alpha1.ReasonSuspended {
				return fmt.Errorf("reason %q", got)
			}
			return nil
		})
		drift("shop", "size", "99")
		sentinelReverted()
		if got := cmData(t, "shop", "size"); got != "99" {
			t.Errorf("size = %q on a suspended source, want the drift kept", got)
		}
		kubectlOK(t, "-n", driftlessNamespace, "patch", "gitsource", "shop", "--type=merge", "-p", `{"spec":{"suspend":false}}`)
		waitFor(t, "resumed and reverted", func() error {
			if got := cmData(t, "shop", "size"); got != "4" {
				return fmt.Errorf("size %q", got)
			}
			return nil
		})
	})

	t.Run("a suspend annotation stops self-heal until it expires, then drift is reverted", func(t *testing.T) {
		until := srv.Clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "gitsource/shop",
			v1alpha1.AnnotationSuspend+"=INC-42", v1alpha1.AnnotationSuspendUntil+"="+until, v1alpha1.AnnotationSuspendBy+"=alice")
		waitFor(t, "Ready=False Suspended", func() error {
			if got := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Ready")].reason}/{.status.suspension.by}`); got != v1alpha1.ReasonSuspended+"/alice" {
				return fmt.Errorf("reason/by %q", got)
			}
			return nil
		})
		drift("shop", "size", "77")
		sentinelReverted()
		if got := cmData(t, "shop", "size"); got != "77" {
			t.Fatalf("size = %q under a suspension, want the drift kept", got)
		}
		srv.Clock.Step(time.Hour + time.Second)
		waitFor(t, "the suspension ends: annotations removed, drift reverted, Ready", func() error {
			annos := jsonpath(t, "shop", "{.metadata.annotations}")
			if strings.Contains(annos, v1alpha1.AnnotationSuspend) {
				return fmt.Errorf("annotations %s", annos)
			}
			if got := cmData(t, "shop", "size"); got != "4" {
				return fmt.Errorf("size %q", got)
			}
			if got := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
				return fmt.Errorf("ready %q", got)
			}
			return nil
		})
		waitFor(t, "a SuspensionExpired Event", func() error {
			r := cp.Admin.Kubectl(ctx, "get", "events.events.k8s.io", "-n", driftlessNamespace,
				"--field-selector", "regarding.name=shop,reason=SuspensionExpired", "-o", "jsonpath={.items[*].note}")
			if !strings.Contains(r.Stdout, "INC-42") || !strings.Contains(r.Stdout, "alice") {
				return fmt.Errorf("events: %q %s", r.Stdout, r.Stderr)
			}
			return nil
		})
	})

	t.Run("an invalid suspend annotation is ignored and says why", func(t *testing.T) {
		until := srv.Clock.Now().Add(10 * time.Hour).UTC().Format(time.RFC3339)
		kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "gitsource/shop",
			v1alpha1.AnnotationSuspend+"=too-long", v1alpha1.AnnotationSuspendUntil+"="+until)
		t.Cleanup(func() {
			cp.Admin.Kubectl(context.Background(), "-n", driftlessNamespace, "annotate", "gitsource/shop", v1alpha1.AnnotationSuspend+"-", v1alpha1.AnnotationSuspendUntil+"-")
		})
		waitFor(t, "Stalled=True InvalidSuspend", func() error {
			got := jsonpath(t, "shop", `{.status.conditions[?(@.type=="Stalled")].reason}|{.status.conditions[?(@.type=="Stalled")].message}`)
			if !strings.HasPrefix(got, v1alpha1.ReasonInvalidSuspend+"|") || !strings.Contains(got, "maximum of 2h") {
				return fmt.Errorf("stalled %q", got)
			}
			return nil
		})
		drift("shop", "size", "55")
		waitFor(t, "drift reverted: the invalid suspension does not hold", func() error {
			if got := cmData(t, "shop", "size"); got != "4" {
				return fmt.Errorf("size %q", got)
			}
			return nil
		})
	})

	t.Run("history lists the syncs, newest first", func(t *testing.T) {
		out := jsonpath(t, "shop", `{range .status.history[*]}{.result} {.revision}{"\n"}{end}`)
		if !strings.Contains(out, "PolicyDenied") || !strings.Contains(out, "Applied "+rev1) {
			t.Errorf("history:\n%s\nwant the denied revision and the first one", out)
		}
	})

	t.Run("pruneOnDelete prunes the objects with the GitSource", func(t *testing.T) {
		rev := commit(map[string]string{
			"tidy/kustomization.yaml": "resources: [cm.yaml]\n",
			"tidy/cm.yaml":            cmYAML("tidy", "k", "v"),
		}, "tidy")
		r := cp.Admin.KubectlWith(ctx, gitSourceYAML("tidy", git.RepoURL("shop.git"), "tidy", "1h", "  pruneOnDelete: true\n"), nil, "apply", "-f", "-")
		if r.Err != nil {
			t.Fatalf("create gitsource: %v\n%s", r.Err, r.Combined())
		}
		waitApplied(t, "tidy", rev)
		waitFor(t, "the finalizer", func() error {
			if got := jsonpath(t, "tidy", "{.metadata.finalizers}"); !strings.Contains(got, "driftless.dev/prune-on-delete") {
				return fmt.Errorf("finalizers %s", got)
			}
			return nil
		})
		kubectlOK(t, "-n", driftlessNamespace, "delete", "gitsource", "tidy", "--timeout=60s")
		if got := cp.Admin.Kubectl(ctx, "-n", sourcesNamespace, "get", "configmap", "tidy", "--ignore-not-found", "-o", "name").Stdout; got != "" {
			t.Errorf("configmap tidy = %q after its GitSource was deleted with pruneOnDelete, want it pruned", got)
		}
	})

	t.Run("a removed GitSource leaves its objects", func(t *testing.T) {
		kubectlOK(t, "-n", driftlessNamespace, "delete", "gitsource", "sentinel")
		drift("sentinel", "v", "after-delete")
		// shop still heals: the reconciler runs, and has stopped only the sentinel.
		drift("shop", "size", "66")
		waitFor(t, "shop reverted", func() error {
			if got := cmData(t, "shop", "size"); got != "4" {
				return fmt.Errorf("size %q", got)
			}
			return nil
		})
		if got := cmData(t, "sentinel", "v"); got != "after-delete" {
			t.Errorf("sentinel v = %q, want it left alone after its GitSource was deleted", got)
		}
		if got := cp.Admin.Kubectl(ctx, "-n", sourcesNamespace, "get", "configmap", "sentinel", "-o", "jsonpath={.metadata.labels.driftless\\.dev/source}").Stdout; got != "sentinel" {
			t.Errorf("the orphaned object's label = %q, want it kept", got)
		}
	})
}
