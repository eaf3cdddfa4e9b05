package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
)

// diffNamespace is not protected, so that admin can add a field with kubectl as a person
// could outside protected namespaces (or under break-glass inside them).
const diffNamespace = "diff-view"

// diffFiles are the source's files at one revision: pool is production's pool size, and old
// is left out when it is false.
func diffFiles(pool string, old, added bool) map[string]string {
	cm := func(ns, name, key, value string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  %s: %q\n", name, ns, key, value)
	}
	files := map[string]string{
		"app/pool.yaml":  cm("production", "diff-pool", "POOL_SIZE", pool),
		"app/flags.yaml": cm(diffNamespace, "diff-flags", "FLAG", "on"),
		"app/creds.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: diff-creds\n  namespace: " + diffNamespace + "\ndata:\n  password: czNjcmV0\n",
		"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: diff-web
  namespace: ` + diffNamespace + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: diff-web}
  template:
    metadata:
      labels: {app: diff-web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1
          ports:
            - containerPort: 8080
`,
	}
	if old {
		files["app/old.yaml"] = cm(diffNamespace, "diff-old", "LEGACY", "yes")
	}
	if added {
		files["app/new.yaml"] = cm(diffNamespace, "diff-new", "NEW", "1")
	}
	return files
}

// resourceVersions lists every ConfigMap, Secret and Deployment of the namespaces the test
// touches with its resource version: what a write of any kind would change.
func resourceVersions(t *testing.T) string {
	t.Helper()
	var out []string
	for _, ns := range []string{diffNamespace, "production", v1alpha1.DefaultNamespace} {
		r := cp.Admin.Kubectl(t.Context(), "get", "configmaps,secrets,deployments", "-n", ns, "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
		if r.Err != nil {
			t.Fatal(r.Combined())
		}
		out = append(out, r.Stdout)
	}
	return strings.Join(out, "")
}

// diffReports runs driftless diff -o json as u and returns the reports and the exit code.
func diffReports(t *testing.T, u *harness.User, args ...string) ([]*reconciler.DiffReport, int) {
	t.Helper()
	out, err := driftless(t, u, append([]string{"diff", "-o", "json"}, args...)...)
	code := 0
	if err != nil {
		code = app.ExitCode(err)
	}
	var reports []*reconciler.DiffReport
	if code < 2 {
		if jerr := json.Unmarshal([]byte(out), &reports); jerr != nil {
			t.Fatalf("diff -o json as %s (exit %d, %v): %v\n%s", u.Name, code, err, jerr, out)
		}
	}
	return reports, code
}

// diffHome holds the GitSource of TestDiffCommand's source.
const diffHome = "diff-home"

// TestDiffCommand runs `driftless diff` as a person who may only read (the view ClusterRole:
// no Secrets, no writes, no impersonation) on a pending commit that changes a field, adds an
// object, removes one to prune and leaves a field kubectl added, which the sync would remove.
func TestDiffCommand(t *testing.T) {
	ctx := t.Context()
	for _, ns := range []string{diffNamespace, v1alpha1.DefaultNamespace, diffHome} {
		if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
			t.Fatal(r.Combined())
		}
	}
	t.Cleanup(func() {
		// Leave nothing for the next run; production is protected, so the reconciler
		// deletes there.
		ctx := context.Background()
		for _, c := range []struct {
			u    *harness.User
			args []string
		}{
			{cp.Admin, []string{"delete", "clusterrolebinding", "diff-carol-view", "diff-carol-sources"}},
			{cp.Admin, []string{"delete", "clusterrole", "diff-source-viewer"}},
			{cp.Admin, []string{"-n", diffNamespace, "delete", "rolebinding,configmap,secret,deployment", "--all"}},
			{cp.Admin, []string{"-n", diffHome, "delete", "gitsource", "viewdiff"}},
			{cp.Reconciler, []string{"-n", "production", "delete", "rolebinding/diff-dave-view", "configmap/diff-pool"}},
		} {
			if res := c.u.Kubectl(ctx, append(c.args, "--ignore-not-found")...); res.Err != nil {
				t.Errorf("clean up: %s", res.Combined())
			}
		}
	})
	repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), "config.git"))
	repo.Commit(t, "main", gitserver.Change{Files: diffFiles("10", true, false), Message: "Add the pool"})
	src := v1alpha1.Source{Name: "viewdiff", URL: repo.FileURL(), Path: "app"}
	config := filepath.Join(t.TempDir(), "driftless.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\nreconciler:\n  serviceAccount: {namespace: %s, name: driftless}\nsources:\n  - name: %s\n    url: %s\n    path: %s\n",
		diffHome, src.Name, src.URL, src.Path), 0o600); err != nil {
		t.Fatal(err)
	}
	// The source's status and inventory live in its GitSource. It is kept in a namespace of
	// its own, which the `driftless run` of this package does not reconcile, so that only
	// this test's reconciler syncs it.
	gs, err := yaml.Marshal(v1alpha1.GitSourceForSource(src, diffHome))
	if err != nil {
		t.Fatal(err)
	}
	if res := cp.Admin.KubectlWith(ctx, gs, nil, "create", "-f", "-"); res.Err != nil {
		t.Fatalf("create gitsource: %v\n%s", res.Err, res.Combined())
	}

	// The reconciler applies the first revision, as `driftless run` would.
	r := newReconciler(t, src, diffHome)
	if _, err := r.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// A person adds a key with kubectl, outside protected namespaces.
	if res := cp.Admin.Kubectl(ctx, "-n", diffNamespace, "patch", "configmap", "diff-flags", "--type=merge", "-p", `{"data":{"OOB":"added"}}`); res.Err != nil {
		t.Fatal(res.Combined())
	}
	commit := repo.Commit(t, "main", gitserver.Change{Files: diffFiles("80", false, true), Delete: []string{"app/old.yaml"}, Message: "Raise the pool size"})

	// carol may read (view), nothing more. The view ClusterRole is an aggregation that
	// kube-controller-manager fills, and none runs here: bind what it aggregates, the
	// bootstrap role system:aggregate-to-view (no Secrets).
	carol, err := cp.AddUnboundUser(ctx, "carol", "auditors")
	if err != nil {
		t.Fatal(err)
	}
	if res := cp.Admin.Kubectl(ctx, "create", "clusterrolebinding", "diff-carol-view", "--clusterrole=system:aggregate-to-view", "--user=carol"); res.Err != nil {
		t.Fatal(res.Combined())
	}
	// What config/rbac's driftless-source-viewer aggregates into view: reading GitSources.
	if res := cp.Admin.Kubectl(ctx, "create", "clusterrole", "diff-source-viewer", "--verb=get,list,watch", "--resource=gitsources.driftless.dev"); res.Err != nil {
		t.Fatal(res.Combined())
	}
	if res := cp.Admin.Kubectl(ctx, "create", "clusterrolebinding", "diff-carol-sources", "--clusterrole=diff-source-viewer", "--user=carol"); res.Err != nil {
		t.Fatal(res.Combined())
	}
	// The authorizer sees a new binding within moments.
	if err := harness.Poll(ctx, time.Minute, func() error {
		if res := carol.Kubectl(ctx, "auth", "can-i", "get", "configmaps", "-n", "production"); strings.TrimSpace(res.Stdout) != "yes" {
			return fmt.Errorf("carol may not read configmaps yet: %s", res.Combined())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "configmaps", "-n", "production"}, "yes"},
		{[]string{"get", "configmaps", "-n", v1alpha1.DefaultNamespace}, "yes"},
		{[]string{"get", "secrets", "-n", diffNamespace}, "no"},
		{[]string{"patch", "configmaps", "-n", "production"}, "no"},
		{[]string{"impersonate", "users"}, "no"},
	} {
		res := carol.Kubectl(ctx, append([]string{"auth", "can-i"}, c.args...)...)
		if got := strings.TrimSpace(res.Stdout); got != c.want {
			t.Fatalf("carol can-i %v = %q, want %q (%s)", c.args, got, c.want, res.Stderr)
		}
	}
	before := resourceVersions(t)

	// carol's diff: every change of the pending commit, the Secret she may not read as
	// unknown, and the Deployment (unchanged, with the API server's defaults) not at all.
	out, err := driftless(t, carol, "diff", "--config", config)
	t.Logf("carol's diff (%v):\n%s", err, out)
	if code := app.ExitCode(err); err == nil || code != 1 {
		t.Fatalf("carol's diff: exit %d (%v), want 1 (changes)\n%s", code, err, out)
	}
	for _, want := range []string{
		fmt.Sprintf("source viewdiff at %s %q", commit[:12], "Raise the pool size"),
		"1 create, 2 update, 1 prune, 1 unknown, 1 unchanged",
		"update ConfigMap production/diff-pool", `-  POOL_SIZE: "10"`, `+  POOL_SIZE: "80"`,
		"update ConfigMap diff-view/diff-flags", "-  OOB: added",
		"create ConfigMap diff-view/diff-new", `+  NEW: "1"`,
		"prune ConfigMap diff-view/diff-old",
		"unknown Secret diff-view/diff-creds: cannot read secret diff-view/diff-creds: forbidden; shown as unknown",
		"note: computed from a read of the live objects",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("carol's diff does not show %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"diff-web", "is forbidden: User", "czNjcmV0", "lists compared whole"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("carol's diff shows %q:\n%s", unwanted, out)
		}
	}
	if !strings.Contains(err.Error(), "source viewdiff: 1 create, 2 update, 1 prune, 1 unknown") {
		t.Errorf("carol's diff error: %v", err)
	}
	if after := resourceVersions(t); after != before {
		t.Errorf("carol's diff changed the cluster:\nbefore\n%s\nafter\n%s", before, after)
	}

	// A dry-run needs write rights carol does not have: exit 2, one error that names them.
	out, err = driftless(t, carol, "diff", "--config", config, "--server-dry-run")
	if code := app.ExitCode(err); err == nil || code != 2 || !strings.Contains(err.Error(), `User "carol" cannot patch resource`) {
		t.Errorf("carol's --server-dry-run: exit %d, %v\n%s", code, err, out)
	}

	// As the reconciler, the API server's dry-run and the read agree, change for change;
	// carol's read differs only in the Secret she may not read.
	dry, dryCode := diffReports(t, cp.Reconciler, "--config", config, "--server-dry-run")
	read, readCode := diffReports(t, cp.Reconciler, "--config", config)
	mine, mineCode := diffReports(t, carol, "--config", config)
	if dryCode != 1 || readCode != 1 || mineCode != 1 || len(dry) != 1 || len(read) != 1 || len(mine) != 1 {
		t.Fatalf("exit codes dry-run %d, read %d, carol %d; reports %d, %d, %d", dryCode, readCode, mineCode, len(dry), len(read), len(mine))
	}
	if !reflect.DeepEqual(dry[0].Changes, read[0].Changes) || dry[0].Unchanged != read[0].Unchanged {
		t.Errorf("dry-run (%d unchanged):\n%+v\nread (%d unchanged):\n%+v", dry[0].Unchanged, dry[0].Changes, read[0].Unchanged, read[0].Changes)
	}
	var readable []reconciler.ObjectDiff
	for _, c := range mine[0].Changes {
		if c.Action != reconciler.ActionUnknown {
			readable = append(readable, c)
		}
	}
	if !reflect.DeepEqual(readable, read[0].Changes) || mine[0].Unchanged != read[0].Unchanged-1 {
		t.Errorf("carol's read without the unknown:\n%+v\nthe reconciler's read:\n%+v", readable, read[0].Changes)
	}
	if after := resourceVersions(t); after != before {
		t.Errorf("the diffs changed the cluster:\nbefore\n%s\nafter\n%s", before, after)
	}

	// dave may read the two namespaces only, not the inventory: the prunes are unknown, and
	// the diff says why instead of failing.
	dave, err := cp.AddUnboundUser(ctx, "dave", "auditors")
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"production", diffNamespace} {
		// As the reconciler: production is protected.
		if res := cp.Reconciler.Kubectl(ctx, "create", "rolebinding", "diff-dave-view", "-n", ns, "--clusterrole=system:aggregate-to-view", "--user=dave"); res.Err != nil {
			t.Fatal(res.Combined())
		}
	}
	if err := harness.Poll(ctx, time.Minute, func() error {
		if res := dave.Kubectl(ctx, "auth", "can-i", "get", "configmaps", "-n", diffNamespace); strings.TrimSpace(res.Stdout) != "yes" {
			return fmt.Errorf("dave may not read configmaps yet: %s", res.Combined())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err = driftless(t, dave, "diff", "--config", config)
	if code := app.ExitCode(err); err == nil || code != 1 ||
		!strings.Contains(out, "1 create, 2 update, 1 unknown, 1 unchanged") || strings.Contains(out, "prune ConfigMap") ||
		!strings.Contains(out, "note: cannot read the inventory of gitsource "+diffHome+"/viewdiff: forbidden; objects to prune are unknown") {
		t.Errorf("dave's diff: exit %d (%v)\n%s", code, err, out)
	}

	// Once synced, nothing is pending: exit 0 for whoever reads everything; carol still
	// cannot tell for the Secret.
	if _, err := r.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if out, err := driftless(t, cp.Reconciler, "diff", "--config", config); err != nil || !strings.Contains(out, "no change, 5 unchanged") {
		t.Errorf("the reconciler's diff after the sync: exit %d (%v)\n%s", app.ExitCode(err), err, out)
	}
	if out, err := driftless(t, carol, "diff", "--config", config); app.ExitCode(err) != 1 || !strings.Contains(out, "1 unknown, 4 unchanged") {
		t.Errorf("carol's diff after the sync: exit %d (%v)\n%s", app.ExitCode(err), err, out)
	}
}

// newReconciler returns a reconciler of src acting as the reconciler's identity, with its
// status and inventory in the GitSource of its name in namespace.
func newReconciler(t *testing.T, src v1alpha1.Source, namespace string) *reconciler.Reconciler {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cp.Reconciler.Config)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cp.Reconciler.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cp.Reconciler.Config, hc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconciler.New(src, reconciler.Options{Client: dyn, Mapper: mapper, Fetcher: source.NewGitFetcher(), CacheDir: t.TempDir(), Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The namespaces of TestDiffGitSource: its GitSource and Secret live in diffSources, which no
// driftless run of this package reconciles, so that only the test's reconciler syncs it; its
// objects in diffApps, which the guard does not protect, so that admin can drift them.
const (
	diffSources = "diff-sources"
	diffApps    = "diff-apps"
)

// diffObjects lists the ConfigMaps, Secrets and GitSources of TestDiffGitSource's namespaces
// with their resource versions: what a write of any kind would change.
func diffObjects(t *testing.T) string {
	t.Helper()
	r := cp.Admin.Kubectl(t.Context(), "get", "configmaps,secrets,gitsources", "-A", "-o",
		`jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`)
	if r.Err != nil {
		t.Fatal(r.Combined())
	}
	var out []string
	for l := range strings.SplitSeq(r.Stdout, "\n") {
		if strings.Contains(l, "/"+diffSources+"/") || strings.Contains(l, "/"+diffApps+"/") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDiffGitSource runs `driftless diff SOURCE` on a GitSource in the cluster whose
// repository needs credentials from a Secret, as people who may read the GitSource and its
// objects: gwen may read the Secret, hugo may not. It diffs what the reconciler would sync:
// the same changes as the configuration-file source of the same repository, the GitSource's
// policy set, and nothing once synced.
func TestDiffGitSource(t *testing.T) {
	ctx := t.Context()
	for _, ns := range []string{diffSources, diffApps} {
		if r := cp.Admin.Kubectl(ctx, "create", "namespace", ns); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
			t.Fatal(r.Combined())
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, args := range [][]string{
			{"-n", diffSources, "delete", "gitsource,secret,rolebinding,role", "--all"},
			{"-n", diffApps, "delete", "configmap,rolebinding", "--all"},
		} {
			if r := cp.Admin.Kubectl(ctx, append(args, "--ignore-not-found")...); r.Err != nil {
				t.Errorf("clean up: %s", r.Combined())
			}
		}
	})
	git := gitserver.New(t, gitserver.WithBasicAuth("robot", "s3cret-pass"))
	repo := git.CreateRepo(t, "payments.git")
	files := func(pool string) map[string]string {
		return map[string]string{
			"app/kustomization.yaml": "resources: [pool.yaml, flags.yaml]\n",
			"app/pool.yaml":          cmYAML("payments-pool", "POOL_SIZE", pool),
			"app/flags.yaml":         cmYAML("payments-flags", "FLAG", "on"),
		}
	}
	repo.Commit(t, "main", gitserver.Change{Files: files("10"), Message: "Add the pool"})
	gs := &v1alpha1.GitSource{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.GitSourceKind},
		ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: diffSources},
		Spec: v1alpha1.GitSourceSpec{
			URL: git.RepoURL("payments.git"), Path: "app", TargetNamespace: diffApps,
			Interval:  metav1.Duration{Duration: time.Hour},
			SecretRef: &v1alpha1.LocalObjectReference{Name: "git-creds"},
		},
	}
	manifest, err := yaml.Marshal(gs)
	if err != nil {
		t.Fatal(err)
	}
	if r := cp.Admin.KubectlWith(ctx, manifest, nil, "create", "-f", "-"); r.Err != nil {
		t.Fatalf("create gitsource: %v\n%s", r.Err, r.Combined())
	}
	kubectlOK(t, "-n", diffSources, "create", "secret", "generic", "git-creds", "--from-literal=username=robot", "--from-literal=password=s3cret-pass")

	// The reconciler syncs the GitSource with the Secret's credentials, as `driftless run`
	// would; then admin drifts the pool, outside Git.
	passwordFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte("s3cret-pass"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := v1alpha1.SourceFromGitSource(gs)
	src.Auth = &v1alpha1.GitAuth{Username: "robot", PasswordFile: passwordFile}
	r := newReconciler(t, src, diffSources)
	if _, err := r.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	kubectlOK(t, "-n", diffApps, "patch", "configmap", "payments-pool", "--type=merge", "-p", `{"data":{"POOL_SIZE":"99"}}`)

	// gwen and hugo may read the GitSource and the objects; only gwen the Secret.
	gwen, err := cp.AddUnboundUser(ctx, "gwen", "payments")
	if err != nil {
		t.Fatal(err)
	}
	hugo, err := cp.AddUnboundUser(ctx, "hugo", "payments")
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{diffSources, diffApps} {
		kubectlOK(t, "-n", ns, "create", "rolebinding", "diff-view", "--clusterrole=system:aggregate-to-view", "--user=gwen", "--user=hugo")
	}
	kubectlOK(t, "-n", diffSources, "create", "role", "diff-gitsources", "--verb=get,list,watch", "--resource=gitsources.driftless.dev")
	kubectlOK(t, "-n", diffSources, "create", "rolebinding", "diff-gitsources", "--role=diff-gitsources", "--user=gwen", "--user=hugo")
	kubectlOK(t, "-n", diffSources, "create", "role", "diff-git-creds", "--verb=get", "--resource=secrets", "--resource-name=git-creds")
	kubectlOK(t, "-n", diffSources, "create", "rolebinding", "diff-git-creds", "--role=diff-git-creds", "--user=gwen")
	waitFor(t, "the authorizer sees the bindings", func() error {
		for _, c := range []struct {
			u    *harness.User
			args []string
			want string
		}{
			{gwen, []string{"get", "secret/git-creds", "-n", diffSources}, "yes"},
			{gwen, []string{"get", "gitsources.driftless.dev", "-n", diffSources}, "yes"},
			{gwen, []string{"get", "configmaps", "-n", diffApps}, "yes"},
			{hugo, []string{"get", "gitsources.driftless.dev", "-n", diffSources}, "yes"},
			{hugo, []string{"get", "configmaps", "-n", diffApps}, "yes"},
			{hugo, []string{"get", "secret/git-creds", "-n", diffSources}, "no"},
			{gwen, []string{"patch", "configmaps", "-n", diffApps}, "no"},
		} {
			res := c.u.Kubectl(ctx, append([]string{"auth", "can-i"}, c.args...)...)
			if got := strings.TrimSpace(res.Stdout); got != c.want {
				return fmt.Errorf("%s can-i %v = %q, want %q (%s)", c.u.Name, c.args, got, c.want, res.Stderr)
			}
		}
		return nil
	})
	before := diffObjects(t)

	t.Run("diff SOURCE shows the drift a sync would revert", func(t *testing.T) {
		out, err := driftless(t, gwen, "diff", "payments", "-n", diffSources)
		t.Logf("gwen's diff (%v):\n%s", err, out)
		if code := app.ExitCode(err); err == nil || code != 1 {
			t.Fatalf("gwen's diff: exit %d (%v), want 1 (changes)\n%s", code, err, out)
		}
		for _, want := range []string{
			"source payments at ", "1 update, 1 unchanged",
			"update ConfigMap diff-apps/payments-pool", `-  POOL_SIZE: "99"`, `+  POOL_SIZE: "10"`,
			// gwen may not read the configuration in driftless-system: the defaults, said so.
			"note: the installed configuration could not be read",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("gwen's diff does not show %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "s3cret-pass") {
			t.Errorf("gwen's diff shows the password:\n%s", out)
		}
	})

	t.Run("without a name every GitSource of the Driftless namespace", func(t *testing.T) {
		// --driftless-namespace is where the GitSources are when -n is not given.
		reports, code := diffReports(t, gwen, "--driftless-namespace", diffSources)
		if code != 1 || len(reports) != 1 || reports[0].Source != "payments" || len(reports[0].Changes) != 1 ||
			reports[0].Changes[0].Object != "ConfigMap diff-apps/payments-pool" || reports[0].Changes[0].Action != reconciler.ActionUpdate {
			t.Errorf("exit %d, reports %+v", code, reports)
		}
	})

	t.Run("the GitSource diffs as its configuration-file source does", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), "driftless.yaml")
		if err := os.WriteFile(config, fmt.Appendf(nil, `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
reconciler:
  serviceAccount: {namespace: %s, name: driftless}
sources:
  - name: payments
    url: %s
    path: app
    targetNamespace: %s
    auth: {username: robot, passwordFile: %s}
`, diffSources, gs.Spec.URL, diffApps, passwordFile), 0o600); err != nil {
			t.Fatal(err)
		}
		fromFile, fileCode := diffReports(t, cp.Reconciler, "--config", config)
		fromCluster, clusterCode := diffReports(t, cp.Reconciler, "payments", "-n", diffSources)
		if fileCode != 1 || clusterCode != 1 || len(fromFile) != 1 || len(fromCluster) != 1 {
			t.Fatalf("exit codes file %d, gitsource %d; reports %d, %d", fileCode, clusterCode, len(fromFile), len(fromCluster))
		}
		if !reflect.DeepEqual(fromFile[0].Changes, fromCluster[0].Changes) || fromFile[0].Unchanged != fromCluster[0].Unchanged || fromFile[0].Revision != fromCluster[0].Revision {
			t.Errorf("the configuration file's source:\n%+v\nthe GitSource:\n%+v", fromFile[0], fromCluster[0])
		}
	})

	t.Run("an unknown name is named, exit 2", func(t *testing.T) {
		out, err := driftless(t, gwen, "diff", "nosuch", "-n", diffSources)
		want := `no GitSource "nosuch" in namespace diff-sources, and no --config declares it`
		if code := app.ExitCode(err); err == nil || code != 2 || !strings.Contains(err.Error(), want) {
			t.Errorf("diff nosuch: exit %d (%v), want 2 and %q\n%s", code, err, want, out)
		}
	})

	t.Run("a Secret the user may not read is named, exit 2", func(t *testing.T) {
		out, err := driftless(t, hugo, "diff", "payments", "-n", diffSources)
		t.Logf("hugo's diff: %v", err)
		code := app.ExitCode(err)
		if err == nil || code != 2 {
			t.Fatalf("hugo's diff: exit %d (%v), want 2\n%s", code, err, out)
		}
		for _, want := range []string{"gitsource diff-sources/payments: spec.secretRef: read secret diff-sources/git-creds", "forbidden", "read as you"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("hugo's diff error does not say %q: %v", want, err)
			}
		}
	})

	if after := diffObjects(t); after != before {
		t.Errorf("the diffs changed the cluster:\nbefore\n%s\nafter\n%s", before, after)
	}

	t.Run("the GitSource's policy set gates the revision", func(t *testing.T) {
		kubectlOK(t, "-n", diffSources, "patch", "gitsource", "payments", "--type=merge", "-p", `{"spec":{"policySet":"payments-policy"}}`)
		t.Cleanup(func() {
			cp.Admin.Kubectl(context.Background(), "-n", diffSources, "patch", "gitsource", "payments", "--type=json", `-p=[{"op":"remove","path":"/spec/policySet"}]`)
		})
		// No configuration at hand declares it: diff cannot gate, and says which set.
		out, err := driftless(t, gwen, "diff", "payments", "-n", diffSources)
		t.Logf("gwen's diff without the policy set: %v", err)
		if code := app.ExitCode(err); err == nil || code != 2 || !strings.Contains(err.Error(), `policy set "payments-policy" is not declared by the installed configuration`) {
			t.Errorf("diff without the policy set's configuration: exit %d (%v), want 2 naming the policy set\n%s", code, err, out)
		}
		policyDir := t.TempDir()
		rule := "package main\n\ndeny contains msg if {\n\tinput.kind == \"ConfigMap\"\n\tinput.data.POOL_SIZE == \"10\"\n\tmsg := \"a pool of 10 is too small for payments\"\n}\n"
		if err := os.WriteFile(filepath.Join(policyDir, "pool.rego"), []byte(rule), 0o600); err != nil {
			t.Fatal(err)
		}
		config := filepath.Join(t.TempDir(), "driftless.yaml")
		if err := os.WriteFile(config, fmt.Appendf(nil, "apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\npolicySets:\n  - name: payments-policy\n    library: {disabled: true}\n    paths: [%s]\n", policyDir), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err = driftless(t, gwen, "diff", "payments", "-n", diffSources, "--config", config)
		if code := app.ExitCode(err); err == nil || code != 1 ||
			!strings.Contains(out, "policy violation (the sync would stop here): ConfigMap payments-pool") ||
			!strings.Contains(out, "a pool of 10 is too small for payments") || !strings.Contains(out, "update ConfigMap diff-apps/payments-pool") {
			t.Errorf("diff with the policy set: exit %d (%v), want 1 with the violation\n%s", code, err, out)
		}
	})

	// Once synced, nothing is pending.
	if _, err := r.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if out, err := driftless(t, gwen, "diff", "payments", "-n", diffSources); err != nil || !strings.Contains(out, "no change, 2 unchanged") {
		t.Errorf("gwen's diff after the sync: exit %d (%v)\n%s", app.ExitCode(err), err, out)
	}
}
