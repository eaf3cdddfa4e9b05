package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/receiver"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// push POSTs body to the receiver at addr for source, with headers, and returns the status
// code.
func push(t *testing.T, addr, source, body string, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+receiver.PathPrefix+source, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func githubSignature(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestPushReceiver pushes to the receiver of `driftless run` as a Git host would: a push with a
// bad or missing signature is refused and fetches nothing; a signed one gets the new commit
// applied although the source's interval (an hour, on a clock nobody advances) is far off.
func TestPushReceiver(t *testing.T) {
	ctx := t.Context()
	// On a fake clock that nobody advances, so only a request can make a sync happen.
	run := startReconcilingRun(t)
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "hooks.git")
	const hookSecret = "hook-s3cret"
	secrets := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: hook-secret, namespace: %[1]s}
stringData: {token: %[2]s}
`, driftlessNamespace, hookSecret)
	if r := cp.Admin.KubectlWith(ctx, []byte(secrets), nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("apply secrets: %v\n%s", r.Err, r.Combined())
	}
	commit := func(value, msg string) string {
		return repo.Commit(t, "main", gitserver.Change{Files: map[string]string{
			"hooked/kustomization.yaml": "resources: [cm.yaml]\n",
			"hooked/cm.yaml":            cmYAML("hooked", "v", value),
		}, Message: msg})
	}
	rev1 := commit("1", "first")
	gs := fmt.Appendf(nil, `apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {name: hooked, namespace: %s}
spec:
  url: %s
  path: hooked
  interval: 1h
  targetNamespace: %s
  receiver: {secretRef: {name: hook-secret}}
`, driftlessNamespace, srv.RepoURL("hooks.git"), sourcesNamespace)
	if r := cp.Admin.KubectlWith(ctx, gs, nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("create gitsource: %v\n%s", r.Err, r.Combined())
	}
	t.Cleanup(func() {
		cp.Admin.Kubectl(t.Context(), "-n", driftlessNamespace, "delete", "gitsource", "hooked", "--ignore-not-found", "--wait=false")
	})
	waitApplied(t, "hooked", rev1)

	rev2 := commit("2", "second")
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, rev2)
	before := srv.Fetches("hooks.git")
	for _, c := range []struct {
		name    string
		source  string
		headers map[string]string
	}{
		{"no signature", "hooked", nil},
		{"github signature with the wrong secret", "hooked", map[string]string{receiver.HeaderGitHub: githubSignature("guess", body)}},
		{"github signature of another body", "hooked", map[string]string{receiver.HeaderGitHub: githubSignature(hookSecret, body+"x")}},
		{"wrong gitlab token", "hooked", map[string]string{receiver.HeaderGitLab: "guess"}},
		{"unknown source", "nope", map[string]string{receiver.HeaderGitHub: githubSignature(hookSecret, body)}},
	} {
		if code := push(t, run.ReceiverAddr, c.source, body, c.headers); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, code)
		}
	}
	// A push reaches the reconciler only through the sync request annotation.
	if got := jsonpath(t, "hooked", "{.metadata.annotations}"); strings.Contains(got, v1alpha1.AnnotationReconcileRequestedAt) {
		t.Errorf("refused pushes requested a sync: annotations %s", got)
	}
	if after := srv.Fetches("hooks.git"); after != before {
		t.Errorf("refused pushes caused %d fetches", after-before)
	}
	if got := jsonpath(t, "hooked", "{.status.lastAppliedRevision}"); got != rev1 {
		t.Fatalf("revision %s after refused pushes, want still %s", got, rev1)
	}

	if code := push(t, run.ReceiverAddr, "hooked", body, map[string]string{receiver.HeaderGitHub: githubSignature(hookSecret, body), "X-GitHub-Event": "push"}); code != http.StatusAccepted {
		t.Fatalf("signed push: status %d, want 202", code)
	}
	waitApplied(t, "hooked", rev2)
	if srv.Fetches("hooks.git") == before {
		t.Error("the commit was applied without a fetch counted: the fetch counter does not count")
	}
	if got := cmData(t, "hooked", "v"); got != "2" {
		t.Errorf("configmap hooked v = %q after the push, want 2", got)
	}

	t.Run("driftless reconcile --wait returns with the new revision", func(t *testing.T) {
		rev3 := commit("3", "third")
		out, err := driftless(t, cp.Bob, "reconcile", "hooked", "--wait", "--timeout", "90s")
		if err != nil {
			t.Fatalf("driftless reconcile --wait: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Ready=True") || !strings.Contains(out, rev3[:12]) {
			t.Errorf("driftless reconcile --wait says:\n%s\nwant Ready=True and revision %s", out, rev3[:12])
		}
		if got := jsonpath(t, "hooked", "{.status.lastAppliedRevision}"); got != rev3 {
			t.Errorf("revision %s when --wait returned, want %s", got, rev3)
		}
	})
	t.Run("a person not allowed to request syncs is refused", func(t *testing.T) {
		// erin may read everything but Secrets (what view aggregates) and nothing more.
		erin, err := cp.AddUnboundUser(ctx, "erin", "auditors")
		if err != nil {
			t.Fatal(err)
		}
		kubectlOK(t, "create", "clusterrolebinding", "receiver-erin-view", "--clusterrole=system:aggregate-to-view", "--user=erin")
		t.Cleanup(func() {
			cp.Admin.Kubectl(t.Context(), "delete", "clusterrolebinding", "receiver-erin-view", "--ignore-not-found")
		})
		before := jsonpath(t, "hooked", "{.metadata.annotations}")
		out, err := driftless(t, erin, "reconcile", "hooked")
		if err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("driftless reconcile as erin: want forbidden, got %v\n%s", err, out)
		}
		if after := jsonpath(t, "hooked", "{.metadata.annotations}"); after != before {
			t.Errorf("erin's refused request changed the annotations:\n%s\n%s", before, after)
		}
	})
}

// startReconcilingRun starts a `driftless run` that reconciles the GitSources of the Driftless
// namespace (the shared guard does not), on a fake clock, without policy sets, and stops it
// when the test ends.
func startReconcilingRun(t *testing.T) *inprocess.Server {
	t.Helper()
	if r := cp.Admin.Kubectl(t.Context(), "get", "namespace", driftlessNamespace); r.Err != nil {
		kubectlOK(t, "create", "namespace", driftlessNamespace)
	}
	run, err := inprocess.New(cp, reconcilingConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run.Dir) })
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Stop() })
	return run
}
