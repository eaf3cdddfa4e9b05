package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
)

// recordConfig runs a source from the loopback Git server; its interval is far longer than
// the test, so syncs happen at start and when the fake clock passes an expiry.
const recordConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: %s
    url: %s
    path: apps
    interval: 10h
guard:
  mode: enforce
  protectedNamespaces: [production]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
`

// TestBreakGlassRecord follows one break-glass session from alice's change through a
// colleague's commit, a restart and the expiry, to the record `driftless break-glass
// --history` shows, and a second session she ends early. The shared guard admits the
// changes; a second `driftless run` with its own fake clock reconciles the source.
func TestBreakGlassRecord(t *testing.T) {
	ctx := t.Context()
	const (
		source = "bgrecord"
		name   = "record-config"
		object = "ConfigMap production/" + name
	)
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	installConfig(t)
	t.Cleanup(func() {
		ctx := t.Context()
		_ = admin.CoreV1().ConfigMaps("production").Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Delete(ctx, reconciler.BreakGlassConfigMapName(source), metav1.DeleteOptions{})
		// The source's status and inventory live in its GitSource.
		_ = cp.Reconciler.Kubectl(ctx, "delete", "gitsource", "-n", v1alpha1.DefaultNamespace, source, "--ignore-not-found")
	})

	git := gitserver.New(t)
	repo := git.CreateRepo(t, source+".git")
	file := func(timeout, level string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: production\ndata:\n  POOL_SIZE: \"50\"\n  REQUEST_TIMEOUT: %s\n  LOG_LEVEL: %s\n", name, timeout, level)
	}
	first := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{Message: "Payment gateway settings", Files: map[string]string{"apps/config.yaml": file("5s", "info")}})

	srv, err := inprocess.New(cp, fmt.Sprintf(recordConfig, source, git.RepoURL(source+".git")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	running := false
	start := func() {
		t.Helper()
		if err := srv.Start(); err != nil {
			t.Fatalf("start driftless run: %v", err)
		}
		running = true
	}
	stop := func() {
		t.Helper()
		running = false
		if err := srv.Stop(); err != nil {
			t.Fatalf("stop driftless run: %v", err)
		}
	}
	t.Cleanup(func() {
		if running {
			_ = srv.Stop()
		}
	})
	start()
	waitRevision(t, source, first)

	// Alice breaks glass and changes the object: a value, a key added with kubectl, and one
	// added by another tool.
	if out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/"+name, "--reason", "INC-77: pool exhausted", "--for", "1h"); err != nil {
		t.Fatalf("break-glass: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"patch", "-n", "production", "configmap/" + name, "--type=merge", "-p", `{"data":{"POOL_SIZE":"200","BURST":"on","LOG_LEVEL":"debug"}}`},
		{"patch", "-n", "production", "configmap/" + name, "--type=merge", "--field-manager=ops-tool", "-p", `{"data":{"OPS_FLAG":"1"}}`},
	} {
		if r := cp.Alice.Kubectl(ctx, args...); r.Err != nil {
			t.Fatalf("alice's change under break-glass: %s", r.Combined())
		}
	}
	t.Run("an object created under break-glass is denied", func(t *testing.T) {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: record-new\n  namespace: production\n  annotations:\n    %s: INC-77\n    %s: %s\n    %s: alice\n",
			v1alpha1.AnnotationBreakGlass, v1alpha1.AnnotationBreakGlassUntil, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), v1alpha1.AnnotationBreakGlassBy)
		r := cp.Alice.KubectlWith(ctx, []byte(cm), nil, "create", "-f", "-")
		if r.Err == nil {
			t.Fatalf("alice created an object under break-glass: %s", r.Combined())
		}
		if !strings.Contains(r.Combined(), "break-glass covers only objects that exist") {
			t.Errorf("denial does not say why:\n%s", r.Combined())
		}
	})

	// The reconciler holds the object back and says so.
	held := waitStatus(t, source, "the status holds the object back", func(st reconciler.Status) error {
		if len(st.BreakGlass) != 1 || st.BreakGlass[0].Object != object {
			return fmt.Errorf("break-glass in status: %+v", st.BreakGlass)
		}
		if !strings.Contains(st.BreakGlass[0].Patch, "OPS_FLAG") {
			return fmt.Errorf("the patch does not show the ops-tool key yet: %s", st.BreakGlass[0].Patch)
		}
		return nil
	})
	until := held.BreakGlass[0].Until
	t.Run("status says what is held back and why", func(t *testing.T) {
		out, err := driftless(t, cp.Alice, "status")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		for _, want := range []string{"held back under break-glass: " + object + " by alice (group oncall) until " + until.UTC().Format(time.RFC3339), `reason "INC-77: pool exhausted"`, "OPS_FLAG"} {
			if !strings.Contains(out, want) {
				t.Errorf("status does not say %q:\n%s", want, out)
			}
		}
	})
	t.Run("diff shows what the expiry reverts, the ops-tool key included", func(t *testing.T) {
		out, err := driftless(t, cp.Admin, "diff", "--config", srv.ConfigPath, "--as", harness.ReconcilerName)
		if code := app.ExitCode(err); err == nil || code != 1 {
			t.Fatalf("diff: exit %d (%v), want 1 (changes)\n%s", code, err, out)
		}
		for _, want := range []string{"break-glass " + object, `-  OPS_FLAG: "1"`, `-  BURST: "on"`, `+  POOL_SIZE: "50"`} {
			if !strings.Contains(out, want) {
				t.Errorf("diff does not show %q:\n%s", want, out)
			}
		}
	})
	// The session is on record, with Git's version at its start, before anything else
	// happens: a restart must not lose it.
	if err := harness.Poll(ctx, 30*time.Second, func() error {
		s, err := session(t, object, reconciler.EndingActive)
		if err != nil {
			return err
		}
		if s.StartRevision != first {
			return fmt.Errorf("start revision %s, want %s", s.StartRevision, first)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A colleague merges two settings while the reconciler is down; it restarts in the
	// middle of the session.
	stop()
	second := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{Message: "Longer timeout, quieter logs", Files: map[string]string{"apps/config.yaml": file("7s", "warn")}})
	start()
	waitRevision(t, source, second)
	assertKubectlOutput(t, cp.Admin, `{.data.POOL_SIZE}/{.data.REQUEST_TIMEOUT}/{.data.LOG_LEVEL}`, "200/5s/debug", "get", "-n", "production", "configmap/"+name)

	// Expiry: the object goes back to the new Git, every key added under break-glass removed.
	srv.Clock.SetTime(until.Add(time.Second))
	if err := harness.Poll(ctx, time.Minute, func() error {
		cm, err := admin.CoreV1().ConfigMaps("production").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := dataString(cm); got != "LOG_LEVEL=warn,POOL_SIZE=50,REQUEST_TIMEOUT=7s" || v1alpha1.HasBreakGlass(cm.Annotations) {
			return fmt.Errorf("not reverted to the new Git yet: %s, annotations %v", got, cm.Annotations)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var rec reconciler.BreakGlassSession
	if err := harness.Poll(ctx, 30*time.Second, func() error {
		var err error
		rec, err = session(t, object, reconciler.EndingExpired)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wantConflicts := []reconciler.BreakGlassConflict{{Field: "data.LOG_LEVEL", Yours: `"debug"`, Git: `"warn"`}}
	t.Run("the record holds alice's change only, rebased on the new Git", func(t *testing.T) {
		if rec.By != "alice" || rec.Group != "oncall" || rec.Reason != "INC-77: pool exhausted" || !rec.Until.Equal(until) ||
			rec.StartRevision != first || rec.EndRevision != second || rec.End.IsZero() || rec.Start.IsZero() {
			t.Errorf("record = %+v", rec)
		}
		if got := patchKeys(t, rec.Patch); got != "BURST,OPS_FLAG,POOL_SIZE" {
			t.Errorf("patch changes data keys %s, want alice's BURST, OPS_FLAG and POOL_SIZE only:\n%s", got, rec.Patch)
		}
		if fmt.Sprint(rec.Conflicts) != fmt.Sprint(wantConflicts) {
			t.Errorf("conflicts = %+v, want %+v", rec.Conflicts, wantConflicts)
		}
		// Committing the patch keeps alice's change and the colleague's.
		merged := mergeInto(t, file("7s", "warn"), rec.Patch)
		if merged["POOL_SIZE"] != "200" || merged["BURST"] != "on" || merged["OPS_FLAG"] != "1" || merged["REQUEST_TIMEOUT"] != "7s" || merged["LOG_LEVEL"] != "warn" {
			t.Errorf("the Git file with the patch applied has data %v, want alice's keys and the colleague's values", merged)
		}
	})
	t.Run("the Event carries the same patch and the conflict", func(t *testing.T) {
		var note string
		if err := harness.Poll(ctx, 30*time.Second, func() error {
			list, err := admin.EventsV1().Events("production").List(ctx, metav1.ListOptions{FieldSelector: "reason=BreakGlassExpired,regarding.name=" + name})
			if err != nil {
				return err
			}
			if len(list.Items) == 0 {
				return errors.New("no BreakGlassExpired event yet")
			}
			note = list.Items[len(list.Items)-1].Note
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("BreakGlassExpired: %s", note)
		for _, want := range []string{"alice", "INC-77", `POOL_SIZE: "200"`, "BURST: \"on\"", `OPS_FLAG: "1"`, `data.LOG_LEVEL: yours "debug", Git "warn"`} {
			if !strings.Contains(note, want) {
				t.Errorf("event note does not say %q:\n%s", want, note)
			}
		}
		if strings.Contains(note, "REQUEST_TIMEOUT") {
			t.Errorf("event note offers to undo the colleague's REQUEST_TIMEOUT:\n%s", note)
		}
	})

	// The record survives another restart.
	stop()
	start()
	t.Run("history after a restart", func(t *testing.T) {
		out, err := driftless(t, cp.Bob, "break-glass", "--history")
		if err != nil {
			t.Fatalf("history: %v\n%s", err, out)
		}
		t.Logf("driftless break-glass --history:\n%s", out)
		var row string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, object) && strings.Contains(line, "expired") {
				row = line
			}
		}
		for _, want := range []string{source, "alice", "INC-77: pool exhausted", "expired"} {
			if !strings.Contains(row, want) {
				t.Errorf("history row %q does not show %q:\n%s", row, want, out)
			}
		}
		for _, want := range []string{"patch to commit", `POOL_SIZE: "200"`, `OPS_FLAG: "1"`, `data.LOG_LEVEL: yours "debug", Git "warn"`, "reverted to Git at " + second[:12]} {
			if !strings.Contains(out, want) {
				t.Errorf("history does not show %q:\n%s", want, out)
			}
		}
		if s, err := session(t, object, reconciler.EndingExpired); err != nil || s.Patch != rec.Patch {
			t.Errorf("history -o json after the restart: %v, patch %q, want %q", err, s.Patch, rec.Patch)
		}
	})

	t.Run("a session ended early is recorded as such", func(t *testing.T) {
		// The reconciler's clock back to the guard's, so that a new break-glass holds for both.
		srv.Clock.SetTime(time.Now())
		if out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/"+name, "--reason", "INC-78: retry storm", "--for", "1h"); err != nil {
			t.Fatalf("break-glass: %v\n%s", err, out)
		}
		if r := cp.Alice.Kubectl(ctx, "patch", "-n", "production", "configmap/"+name, "--type=merge", "-p", `{"data":{"POOL_SIZE":"300"}}`); r.Err != nil {
			t.Fatalf("alice's change: %s", r.Combined())
		}
		waitStatus(t, source, "the second break-glass is held back", func(st reconciler.Status) error {
			if len(st.BreakGlass) != 1 || !strings.Contains(st.BreakGlass[0].Patch, `"300"`) {
				return fmt.Errorf("break-glass in status: %+v", st.BreakGlass)
			}
			return nil
		})
		if out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/"+name, "--end"); err != nil {
			t.Fatalf("--end: %v\n%s", err, out)
		}
		var s reconciler.BreakGlassSession
		if err := harness.Poll(ctx, time.Minute, func() error {
			var err error
			s, err = session(t, object, reconciler.EndingEarly)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if s.Reason != "INC-78: retry storm" || patchKeys(t, s.Patch) != "POOL_SIZE" || len(s.Conflicts) != 0 {
			t.Errorf("record of the session ended early = %+v", s)
		}
		assertKubectlOutput(t, cp.Admin, `{.data.POOL_SIZE}`, "50", "get", "-n", "production", "configmap/"+name)
		out, err := driftless(t, cp.Alice, "break-glass", "--history")
		if err != nil || !strings.Contains(out, "ended early") {
			t.Errorf("history does not show the session ended early (%v):\n%s", err, out)
		}
		st, err := driftless(t, cp.Alice, "status")
		t.Logf("driftless status:\n%s", st)
		if err != nil || !strings.Contains(st, "last change") || !strings.Contains(st, "ended early") {
			t.Errorf("status does not show the last change (%v):\n%s", err, st)
		}
	})
}

// installConfig creates the configuration ConfigMap the break-glass command reads, unless
// another test did.
func installConfig(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	exists := func(r harness.KubectlResult) bool {
		return strings.Contains(r.Stderr, "AlreadyExists") || strings.Contains(r.Stderr, "already exists")
	}
	if r := cp.Admin.Kubectl(ctx, "create", "namespace", v1alpha1.DefaultNamespace); r.Err != nil && !exists(r) {
		t.Fatal(r.Combined())
	}
	cm := cp.Admin.Kubectl(ctx, "create", "configmap", "driftless-config", "-n", v1alpha1.DefaultNamespace,
		"--from-literal=config.yaml="+fmt.Sprintf(guardConfig, "enforce"))
	if cm.Err != nil && !exists(cm) {
		t.Fatal(cm.Combined())
	}
}

// waitRevision waits until the source's status says commit was applied.
func waitRevision(t *testing.T, source, commit string) {
	t.Helper()
	waitStatus(t, source, "revision "+commit+" applied", func(st reconciler.Status) error {
		if st.Revision != commit || st.Result != reconciler.ResultApplied {
			return fmt.Errorf("revision %s, result %s: %s", st.Revision, st.Result, st.Message)
		}
		return nil
	})
}

// waitStatus waits until the source's status satisfies check, and returns it.
func waitStatus(t *testing.T, source, what string, check func(reconciler.Status) error) reconciler.Status {
	t.Helper()
	var st reconciler.Status
	err := harness.Poll(t.Context(), time.Minute, func() error {
		out, err := driftless(t, cp.Alice, "status", "-o", "json")
		if err != nil {
			return fmt.Errorf("status: %v: %s", err, out)
		}
		var all []reconciler.Status
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			return err
		}
		for _, s := range all {
			if s.Source == source {
				st = s
				return check(s)
			}
		}
		return fmt.Errorf("no status for %s", source)
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return st
}

// session returns the newest recorded session on object that ended as ending (or is
// active), as `driftless break-glass --history -o json` prints it.
func session(t *testing.T, object string, ending reconciler.BreakGlassEnding) (reconciler.BreakGlassSession, error) {
	t.Helper()
	out, err := driftless(t, cp.Alice, "break-glass", "--history", "-o", "json")
	if err != nil {
		return reconciler.BreakGlassSession{}, fmt.Errorf("history: %v: %s", err, out)
	}
	var all []reconciler.BreakGlassSession
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		return reconciler.BreakGlassSession{}, fmt.Errorf("decode history: %v: %s", err, out)
	}
	for _, s := range all {
		if s.Object == object && s.Ending == ending {
			return s, nil
		}
	}
	return reconciler.BreakGlassSession{}, fmt.Errorf("no session on %s that is %q in %s", object, ending, out)
}

// patchKeys returns the data keys a patch sets or removes, sorted and joined with commas.
func patchKeys(t *testing.T, patch string) string {
	t.Helper()
	var p struct {
		Data map[string]any `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("decode patch: %v\n%s", err, patch)
	}
	keys := make([]string, 0, len(p.Data))
	for k := range p.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// mergeInto applies patch (YAML) as a JSON merge patch to the object in file (YAML) and
// returns the result's data.
func mergeInto(t *testing.T, file, patch string) map[string]string {
	t.Helper()
	doc, err := yaml.YAMLToJSON([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := yaml.YAMLToJSON([]byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := jsonpatch.MergePatch(doc, p)
	if err != nil {
		t.Fatalf("apply the patch: %v", err)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(merged, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

// dataString formats a ConfigMap's data as sorted key=value pairs.
func dataString(cm *corev1.ConfigMap) string {
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + cm.Data[k]
	}
	return strings.Join(parts, ",")
}
