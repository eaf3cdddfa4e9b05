package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// TestGitSourcesFromGit has one source, root, apply the other GitSources from the config
// repository, as an installation's own source does: a GitSource committed to the repository
// starts syncing without a restart, and one removed from the repository is pruned while the
// objects it applied stay in place.
func TestGitSourcesFromGit(t *testing.T) {
	ctx := t.Context()
	startReconcilingRun(t)
	srv := gitserver.New(t)
	repo := srv.CreateRepo(t, "platform.git")
	url := srv.RepoURL("platform.git")
	child := fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {name: child, namespace: %s}
spec:
  url: %s
  path: apps
  interval: 1h
  targetNamespace: production
`, driftlessNamespace, url)
	rev1 := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{
		"sources/kustomization.yaml": "resources: [marker.yaml]\n",
		"sources/marker.yaml":        cmYAML("platform-marker", "v", "1"),
		"apps/kustomization.yaml":    "resources: [cm.yaml]\n",
		"apps/cm.yaml":               cmYAML("child-app", "v", "1"),
	}, Message: "platform"})
	platform := fmt.Appendf(nil, `apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {name: root, namespace: %s}
spec:
  url: %s
  path: sources
  interval: 1h
  targetNamespace: %s
`, driftlessNamespace, url, sourcesNamespace)
	// The bootstrap: an administrator applies the first GitSource (docs/sources.md).
	if r := cp.Admin.KubectlWith(ctx, platform, nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("apply the root GitSource: %v\n%s", r.Err, r.Combined())
	}
	t.Cleanup(func() {
		cp.Admin.Kubectl(t.Context(), "-n", driftlessNamespace, "delete", "gitsource", "root", "child", "--ignore-not-found", "--wait=false")
	})
	waitApplied(t, "root", rev1)

	// A GitSource committed to the repository: root applies it, the controller starts it.
	rev2 := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{
		"sources/kustomization.yaml": "resources: [marker.yaml, child.yaml]\n",
		"sources/child.yaml":         child,
	}, Message: "add the child source"})
	kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "--field-manager=driftless-sources", "gitsource/root", v1alpha1.AnnotationReconcileRequestedAt+"=add-child")
	waitApplied(t, "root", rev2)
	waitApplied(t, "child", rev2)
	t.Cleanup(func() {
		cp.Reconciler.Kubectl(t.Context(), "-n", "production", "delete", "configmap", "child-app", "--ignore-not-found")
	})
	childApp := func() string {
		return cp.Admin.Kubectl(ctx, "-n", "production", "get", "configmap", "child-app", "-o", "jsonpath={.data.v}").Stdout
	}
	if got := childApp(); got != "1" {
		t.Errorf("child-app v = %q, want 1: the child source did not apply", got)
	}
	// A denial names the GitSource's repository and path, although the guard's
	// configuration has no such source.
	r := cp.Bob.Kubectl(ctx, "-n", "production", "patch", "configmap", "child-app", "--type=merge", "-p", `{"data":{"v":"2"}}`)
	if r.Err == nil || !strings.Contains(r.Stderr, fmt.Sprintf("Owner: source %q, repository %s, path apps.", "child", url)) {
		t.Errorf("bob's change of child-app: want a denial naming the GitSource's repository and path, got %v\n%s", r.Err, r.Combined())
	}
	if got := jsonpath(t, "child", "{.metadata.labels.driftless\\.dev/source}"); got != "root" {
		t.Errorf("the child GitSource's source label = %q, want root", got)
	}

	// The child source removed from the repository: root prunes the GitSource, which
	// orphans what the child applied.
	rev3 := repo.Commit(t, "main", gitserver.Change{Files: map[string]string{
		"sources/kustomization.yaml": "resources: [marker.yaml]\n",
	}, Delete: []string{"sources/child.yaml"}, Message: "remove the child source"})
	kubectlOK(t, "-n", driftlessNamespace, "annotate", "--overwrite", "--field-manager=driftless-sources", "gitsource/root", v1alpha1.AnnotationReconcileRequestedAt+"=remove-child")
	waitApplied(t, "root", rev3)
	waitFor(t, "the child GitSource is pruned", func() error {
		if r := cp.Admin.Kubectl(ctx, "-n", driftlessNamespace, "get", "gitsource", "child", "--ignore-not-found", "-o", "name"); r.Stdout != "" {
			return fmt.Errorf("still there: %s", r.Stdout)
		}
		return nil
	})
	if got := childApp(); got != "1" {
		t.Errorf("child-app v = %q after its source left Git, want it left in place", got)
	}
}
