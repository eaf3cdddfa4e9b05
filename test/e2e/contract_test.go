package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// sourceConfig is guardConfig in enforce mode with one more source and the given
// break-glass maximum.
func sourceConfig(name, url, maxDuration string) string {
	return fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: platform
    url: https://git.example.com/platform/config.git
    path: overlays/production
  - name: %s
    url: %s
    path: app
guard:
  mode: enforce
  protectedNamespaces: [production, prod-bob, prod-admin, prod-reconciler]
  breakGlass:
    groups: [oncall]
    maxDuration: %s
`, name, url, maxDuration)
}

// reloadsApplied returns how many configuration reloads srv applied.
func reloadsApplied(t *testing.T, srv *inprocess.Server) float64 {
	t.Helper()
	c, err := srv.Counter("driftless_config_reloads_total", "result")
	if err != nil {
		t.Fatal(err)
	}
	return c["applied"]
}

// setConfig rewrites srv's configuration and waits until it applied it.
func setConfig(t *testing.T, srv *inprocess.Server, config string) {
	t.Helper()
	before := reloadsApplied(t, srv)
	// Not t.Context(): tests restore their configuration in a cleanup, after it is done.
	if err := srv.SetConfig(context.WithoutCancel(t.Context()), config, func() error {
		if got := reloadsApplied(t, srv); got <= before {
			return fmt.Errorf("reloads applied %v, want more than %v", got, before)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// addSource commits files to a new repository and starts a driftless run, guard and
// reconciler, whose configuration has it as source name with the given break-glass maximum,
// on a fake clock set to now; the API server calls that run's guard until the test ends. It
// waits until the commit is applied. (The shared guard does not reconcile: only one driftless
// run may reconcile the GitSources of a cluster.)
func addSource(t *testing.T, name, maxDuration string, files map[string]string, now time.Time) (*gitserver.Repo, dynamic.Interface, *inprocess.Server) {
	t.Helper()
	// The reconciler keeps its status and inventory in its own namespace.
	if r := cp.Admin.Kubectl(t.Context(), "create", "namespace", v1alpha1.DefaultNamespace); r.Err != nil && !strings.Contains(r.Stderr, "AlreadyExists") {
		t.Fatal(r.Combined())
	}
	repo := gitserver.InitBare(t, filepath.Join(t.TempDir(), name+".git"))
	rev := repo.Commit(t, "main", gitserver.Change{Files: files, Message: "Add " + name})
	srv, err := inprocess.New(cp, sourceConfig(name, repo.FileURL(), maxDuration))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	srv.Clock.SetTime(now)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Stop()
		cp.Admin.Kubectl(context.Background(), "-n", v1alpha1.DefaultNamespace, "delete", "gitsource", name, "platform", "--ignore-not-found", "--wait=false")
	})
	takeOverWebhook(t, srv)
	client, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	waitSourceStatus(t, client, name, func(st reconciler.Status) bool { return st.Revision == rev })
	return repo, client, srv
}

// waitSourceStatus waits until the source's status satisfies ok.
func waitSourceStatus(t *testing.T, client dynamic.Interface, name string, ok func(reconciler.Status) bool) reconciler.Status {
	t.Helper()
	var st reconciler.Status
	err := harness.Poll(t.Context(), time.Minute, func() error {
		var found bool
		var err error
		st, found, err = reconciler.ReadSourceStatus(t.Context(), client, v1alpha1.DefaultNamespace, name)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("no status for source %s yet", name)
		case !ok(st):
			return fmt.Errorf("status of source %s: %s (%s)", name, st.Result, st.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func contractConfigMap(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: production\ndata:\n  x: git\n", name)
}

// TestOneBreakGlassContract runs the same table of break-glass annotations through the guard,
// the reconciler and `driftless break-glass --list`. For each row, alice sets the annotations
// and a change in one request (the guard's verdict); the same state is then in place, set by
// alice or, where the guard refused her, written past the guard as the reconciler's identity;
// the reconciler must hold or revert it, --list show it or not, and the guard let alice
// change the object further or not, all alike.
func TestOneBreakGlassContract(t *testing.T) {
	// --list reads the real clock, the guard and the reconciler the fake one: make them agree.
	now := time.Now().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	rows := []struct {
		name        string
		annotations map[string]string
		// guardAdmits is the guard's verdict on alice setting the annotations.
		guardAdmits bool
		// holds is the verdict on the object carrying them: the reconciler leaves it alone,
		// --list shows it, and alice may change it further.
		holds bool
	}{
		{"valid", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, true, true},
		{"white space around the values", map[string]string{v1alpha1.AnnotationBreakGlass: " INC-1 ", v1alpha1.AnnotationBreakGlassUntil: " " + at(time.Hour) + " "}, true, true},
		{"at the maximum", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(2 * time.Hour)}, true, true},
		{"reason of spaces", map[string]string{v1alpha1.AnnotationBreakGlass: "   ", v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, false, false},
		{"missing reason", map[string]string{v1alpha1.AnnotationBreakGlassUntil: at(time.Hour)}, false, false},
		{"missing expiry", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1"}, false, false},
		{"past", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(-time.Minute)}, false, false},
		{"beyond the maximum", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(2*time.Hour + time.Minute)}, false, false},
		// Only the guard sees who asks: it refuses a break-glass-by that is not the requester.
		// Such annotations can only come from before the object was protected; then the
		// break-glass holds like any other, under the name it carries.
		{"break-glass-by names someone else", map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: at(time.Hour), v1alpha1.AnnotationBreakGlassBy: "carol"}, false, true},
	}
	files := map[string]string{}
	for i := range rows {
		files[fmt.Sprintf("app/contract-%d.yaml", i)] = contractConfigMap(fmt.Sprintf("contract-%d", i))
	}
	_, client, _ := addSource(t, "contract", "2h", files, now)

	for i, row := range rows {
		name := fmt.Sprintf("contract-%d", i)
		object := "configmap/" + name
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": row.annotations}, "data": map[string]string{"x": "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(row.name, func(t *testing.T) {
			r := cp.Alice.Kubectl(t.Context(), "patch", "-n", "production", object, "--type=merge", "-p", string(patch))
			if admitted := r.Err == nil; admitted != row.guardAdmits {
				t.Fatalf("guard admitted alice's break-glass: %v, want %v\n%s", admitted, row.guardAdmits, r.Combined())
			}
			if r.Err != nil {
				if r := cp.Reconciler.Kubectl(t.Context(), "patch", "-n", "production", object, "--type=merge", "-p", string(patch)); r.Err != nil {
					t.Fatal(r.Combined())
				}
			}

			// The reconciler: holds it (listed in the status, alice's value stays) or reverts it.
			if row.holds {
				waitSourceStatus(t, client, "contract", func(st reconciler.Status) bool {
					for _, b := range st.BreakGlass {
						if strings.HasSuffix(b.Object, "/"+name) {
							return true
						}
					}
					return false
				})
				assertKubectlOutput(t, cp.Admin, `{.data.x}`, "alice", "get", "-n", "production", object)
			} else {
				waitKubectlOutput(t, cp.Admin, `{.data.x}`, "git", "get", "-n", "production", object)
			}

			// --list.
			out, err := driftless(t, cp.Alice, "break-glass", "--list", "--max-duration", "2h")
			if err != nil {
				t.Fatalf("--list: %v\n%s", err, out)
			}
			if listed := strings.Contains(out, "configmaps/"+name+" "); listed != row.holds {
				t.Errorf("--list shows %s: %v, want %v\n%s", name, listed, row.holds, out)
			}

			// The guard on a further change that sets no annotation.
			r = cp.Alice.Kubectl(t.Context(), "patch", "-n", "production", object, "--type=merge", "-p", `{"data":{"y":"more"}}`)
			if admitted := r.Err == nil; admitted != row.holds {
				t.Errorf("guard admitted alice's further change: %v, want %v\n%s", admitted, row.holds, r.Combined())
			}
		})
	}
}

// TestReloadReachesEveryPart raises the break-glass maximum in the configuration file of a
// running driftless run: the guard admits a break-glass beyond the old maximum and the
// reconciler honours it instead of reverting it. The source itself was added to the file
// while driftless run was running (addSource).
func TestReloadReachesEveryPart(t *testing.T) {
	repo, client, srv := addSource(t, "reload", "2h", map[string]string{"app/reload.yaml": contractConfigMap("reload-config")}, time.Now().Truncate(time.Second))
	setConfig(t, srv, sourceConfig("reload", repo.FileURL(), "6h"))

	until := srv.Clock.Now().Add(5 * time.Hour).UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"INC-9",%q:%q}},"data":{"x":"alice"}}`,
		v1alpha1.AnnotationBreakGlass, v1alpha1.AnnotationBreakGlassUntil, until)
	if r := cp.Alice.Kubectl(t.Context(), "patch", "-n", "production", "configmap/reload-config", "--type=merge", "-p", patch); r.Err != nil {
		t.Fatalf("a 5h break-glass after raising the maximum to 6h: %s", r.Combined())
	}
	waitSourceStatus(t, client, "reload", func(st reconciler.Status) bool { return len(st.BreakGlass) == 1 })
	assertKubectlOutput(t, cp.Admin, `{.data.x}`, "alice", "get", "-n", "production", "configmap/reload-config")
}

// waitKubectlOutput waits until kubectl's jsonpath output of args as u is want.
func waitKubectlOutput(t *testing.T, u *harness.User, jsonpath, want string, args ...string) {
	t.Helper()
	err := harness.Poll(t.Context(), time.Minute, func() error {
		r := u.Kubectl(t.Context(), append(args, "-o", "jsonpath="+jsonpath)...)
		if r.Err != nil {
			return fmt.Errorf("kubectl %v: %s", args, r.Combined())
		}
		if r.Stdout != want {
			return fmt.Errorf("kubectl %v -o jsonpath=%s = %q, want %q", args, jsonpath, r.Stdout, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
