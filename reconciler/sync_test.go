package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
)

func TestSyncAppliesUpdatesAndPrunes(t *testing.T) {
	for _, transport := range []string{overHTTP, overFile} {
		t.Run(transport, func(t *testing.T) {
			name := unique("apply-" + transport)
			ns := name
			g := newRig(t, name, transport)
			first := g.commit(map[string]string{
				"apps/namespace.yaml": namespaceYAML(ns),
				"apps/a.yaml":         configMap(ns, "a", map[string]string{"x": "1"}, nil),
				"apps/b.yaml":         configMap(ns, "b", map[string]string{"y": "1"}, nil),
				"README.md":           "not rendered\n",
			})
			r := g.reconciler()
			res := g.sync(r)
			if res.RequeueAfter != g.src.Interval.Duration {
				t.Errorf("RequeueAfter = %s, want the interval %s", res.RequeueAfter, g.src.Interval.Duration)
			}
			for _, n := range []string{"a", "b"} {
				cm := getConfigMap(t, ns, n)
				if cm == nil {
					t.Fatalf("configmap %s/%s was not created", ns, n)
				}
				if got := cm.Labels[v1alpha1.LabelSource]; got != name {
					t.Errorf("%s: label %s = %q, want %q", n, v1alpha1.LabelSource, got, name)
				}
				if got := cm.Annotations[v1alpha1.AnnotationRevision]; got != first {
					t.Errorf("%s: annotation %s = %q, want %q", n, v1alpha1.AnnotationRevision, got, first)
				}
			}
			st := g.status()
			if st.Result != reconciler.ResultApplied || st.Revision != first || st.ObjectsApplied != 3 || st.ObjectsManaged != 3 {
				t.Errorf("status after first sync = %+v, want Applied %s with 3 objects applied and managed", st, first)
			}
			if st.Author != "Driftless Test <test@driftless.dev>" || st.Subject != "test change" || st.CommitTime.IsZero() {
				t.Errorf("status commit = %q %q %s, want the test commit's author, subject and time", st.Author, st.Subject, st.CommitTime)
			}
			if strings.Contains(st.URL, "s3cret") {
				t.Errorf("status URL %q carries the password", st.URL)
			}

			second := g.commit(map[string]string{"apps/a.yaml": configMap(ns, "a", map[string]string{"x": "2"}, nil)}, "apps/b.yaml")
			g.sync(r)
			a := getConfigMap(t, ns, "a")
			if got := dataOf(a); got != "x=2" {
				t.Errorf("a after update = %s, want x=2", got)
			}
			if got := a.Annotations[v1alpha1.AnnotationRevision]; got != second {
				t.Errorf("a: revision = %q, want %q", got, second)
			}
			if b := getConfigMap(t, ns, "b"); b != nil {
				t.Errorf("b was not pruned: %s", dataOf(b))
			}
			nsObj := get(t, "v1", "namespaces", "", ns)
			if got := nsObj.GetAnnotations()[v1alpha1.AnnotationRevision]; got != first {
				t.Errorf("unchanged namespace was rewritten: revision = %q, want %q", got, first)
			}
			st = g.status()
			if st.Result != reconciler.ResultApplied || st.Revision != second || st.ObjectsApplied != 1 || st.ObjectsPruned != 1 || st.ObjectsManaged != 2 {
				t.Errorf("status after second sync = %+v, want Applied %s, 1 applied, 1 pruned, 2 managed", st, second)
			}
			inv := inventoryText(t, name)
			if !strings.Contains(inv, `"n":"a"`) || strings.Contains(inv, `"n":"b"`) {
				t.Errorf("inventory = %v, want a and not b", inv)
			}
			waitEvent(t, ns, "b", "Pruned", "left Git")
		})
	}
}

// forbiddenKeyGate stands in for the policy package: a ConfigMap may not have a data key
// called "forbidden", and a ConfigMap called "gate-error" makes the gate fail.
var forbiddenKeyGate = reconciler.GateFunc(func(_ context.Context, policySet string, objs []*unstructured.Unstructured) ([]reconciler.Violation, error) {
	var vs []reconciler.Violation
	for _, u := range objs {
		if u.GetKind() != "ConfigMap" {
			continue
		}
		if u.GetName() == "gate-error" {
			return nil, errors.New("policy set " + policySet + " is not compiled")
		}
		if _, ok, _ := unstructured.NestedString(u.Object, "data", "forbidden"); ok {
			vs = append(vs, reconciler.Violation{
				Object:  "ConfigMap " + u.GetNamespace() + "/" + u.GetName(),
				Rule:    "no-forbidden-key",
				Message: "data key forbidden is not allowed",
			})
		}
	}
	return vs, nil
})

func TestSyncPruneOptOut(t *testing.T) {
	name := unique("optout")
	g := newRig(t, name, overFile)
	namespace(t, name)
	g.commit(map[string]string{
		"apps/keep.yaml":  configMap(name, "keep", map[string]string{"k": "v"}, map[string]string{v1alpha1.AnnotationPrune: v1alpha1.PruneDisabled}),
		"apps/prune.yaml": configMap(name, "prune", map[string]string{"p": "v"}, nil),
		"apps/stay.yaml":  configMap(name, "stay", map[string]string{"s": "v"}, nil),
	})
	r := g.reconciler()
	g.sync(r)
	g.commit(nil, "apps/keep.yaml", "apps/prune.yaml")
	g.sync(r)
	if getConfigMap(t, name, "keep") == nil {
		t.Error("configmap keep, annotated driftless.dev/prune: disabled, was pruned")
	}
	if cm := getConfigMap(t, name, "prune"); cm != nil {
		t.Error("configmap prune was not pruned")
	}
	if getConfigMap(t, name, "stay") == nil {
		t.Error("configmap stay, still in Git, was deleted")
	}
	if st := g.status(); st.ObjectsPruned != 1 || st.ObjectsManaged != 1 {
		t.Errorf("status = %+v, want 1 pruned and 1 managed (keep is abandoned)", st)
	}
}

func TestSyncRefusesBadRevisions(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		delete []string
		want   reconciler.SyncResult
		// message must contain these.
		message []string
	}{{
		name:    "empty render",
		delete:  []string{"apps/a.yaml", "apps/b.yaml"},
		files:   map[string]string{"apps/README.md": "nothing to apply\n"},
		want:    reconciler.ResultPruneRefused,
		message: []string{"no objects", "refusing"},
	}, {
		name: "kustomize error",
		files: map[string]string{
			"apps/kustomization.yaml": "resources:\n- a.yaml\n- missing.yaml\n",
		},
		want:    reconciler.ResultRenderFailed,
		message: []string{"kustomize build", "missing.yaml"},
	}, {
		name:    "broken yaml",
		files:   map[string]string{"apps/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n"},
		want:    reconciler.ResultRenderFailed,
		message: []string{"apps/c.yaml"},
	}, {
		name:    "policy violation",
		files:   map[string]string{"apps/c.yaml": configMap("NS", "c", map[string]string{"forbidden": "yes"}, nil)},
		want:    reconciler.ResultPolicyDenied,
		message: []string{"ConfigMap NS/c: no-forbidden-key: data key forbidden is not allowed"},
	}, {
		name:    "policy gate error",
		files:   map[string]string{"apps/c.yaml": configMap("NS", "gate-error", map[string]string{"k": "v"}, nil)},
		want:    reconciler.ResultPolicyFailed,
		message: []string{"is not compiled"},
	}, {
		name:    "dry-run rejects an object",
		files:   map[string]string{"apps/c.yaml": configMap("NS", "Not_A_Name", map[string]string{"k": "v"}, nil)},
		want:    reconciler.ResultApplyFailed,
		message: []string{"dry-run", "nothing applied", "Not_A_Name"},
	}, {
		name:    "unknown kind",
		files:   map[string]string{"apps/c.yaml": "apiVersion: example.driftless.dev/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: NS\n"},
		want:    reconciler.ResultRenderFailed,
		message: []string{"Gadget"},
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := unique(fmt.Sprintf("bad-%d", i))
			g := newRig(t, name, overFile)
			g.src.PolicySet = "production"
			g.opts.Gate = forbiddenKeyGate
			namespace(t, name)
			good := g.commit(map[string]string{
				"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
				"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
			})
			r := g.reconciler()
			g.sync(r)

			// The bad revision also changes a, which must not be applied either.
			files := map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"x": "2"}, nil)}
			if tc.delete != nil {
				files = map[string]string{}
			}
			for p, c := range tc.files {
				files[p] = strings.ReplaceAll(c, "NS", name)
			}
			bad := g.commit(files, tc.delete...)
			res, err := r.Sync(testCtx(t))
			if err == nil {
				t.Fatal("sync of a bad revision succeeded")
			}
			if got := dataOf(getConfigMap(t, name, "a")); got != "x=1" {
				t.Errorf("a = %s, want x=1 from the last good revision", got)
			}
			if got := dataOf(getConfigMap(t, name, "b")); got != "y=1" {
				t.Errorf("b = %s, want y=1 from the last good revision", got)
			}
			if res.RequeueAfter >= g.src.Interval.Duration {
				t.Errorf("RequeueAfter = %s, want a backoff shorter than the interval", res.RequeueAfter)
			}
			st := g.status()
			msg := strings.ReplaceAll(strings.Join(tc.message, "|"), "NS", name)
			if st.Result != tc.want || st.Revision != good || st.AttemptedRevision != bad {
				t.Errorf("status = %s at %s (attempted %s), want %s at %s (attempted %s)", st.Result, st.Revision, st.AttemptedRevision, tc.want, good, bad)
			}
			for _, m := range strings.Split(msg, "|") {
				if !strings.Contains(st.Message, m) {
					t.Errorf("status message %q does not contain %q", st.Message, m)
				}
			}
			if tc.want == reconciler.ResultPolicyDenied {
				want := []reconciler.Violation{{Object: "ConfigMap " + name + "/c", Rule: "no-forbidden-key", Message: "data key forbidden is not allowed"}}
				if !reflect.DeepEqual(st.Violations, want) {
					t.Errorf("status violations = %+v, want %+v", st.Violations, want)
				}
			}
			waitEvent(t, v1alpha1.DefaultNamespace, name, string(tc.want), strings.Split(msg, "|")...)
		})
	}
}

func TestSyncGitOutageKeepsClusterAndRecovers(t *testing.T) {
	name := unique("outage")
	g := newRig(t, name, overHTTP)
	namespace(t, name)
	first := g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
		"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
	})
	r := g.reconciler()
	g.sync(r)

	g.server.Stop()
	second := g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"x": "2"}, nil)}, "apps/b.yaml")
	var backoffs []time.Duration
	for range 3 {
		res, err := r.Sync(testCtx(t))
		if err == nil {
			t.Fatal("sync succeeded with the Git server down")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error carries the password: %v", err)
		}
		backoffs = append(backoffs, res.RequeueAfter)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !reflect.DeepEqual(backoffs, want) {
		t.Errorf("backoffs = %v, want %v", backoffs, want)
	}
	if got := dataOf(getConfigMap(t, name, "a")); got != "x=1" {
		t.Errorf("a = %s during the outage, want x=1", got)
	}
	if getConfigMap(t, name, "b") == nil {
		t.Error("b was pruned during the outage")
	}
	st := g.status()
	if st.Result != reconciler.ResultFetchFailed || st.Revision != first || st.AttemptedRevision != "" || st.ObjectsManaged != 2 {
		t.Errorf("status during outage = %+v, want FetchFailed keeping %s and 2 managed objects", st, first)
	}

	g.server.Start(t)
	g.sync(r)
	if got := dataOf(getConfigMap(t, name, "a")); got != "x=2" {
		t.Errorf("a = %s after the outage, want x=2", got)
	}
	if getConfigMap(t, name, "b") != nil {
		t.Error("b was not pruned after the outage")
	}
	if st := g.status(); st.Result != reconciler.ResultApplied || st.Revision != second {
		t.Errorf("status after outage = %s at %s, want Applied at %s", st.Result, st.Revision, second)
	}
}

func TestSyncVerifiesSignatures(t *testing.T) {
	trusted := gitserver.NewKey(t, "Release Bot", "release@driftless.dev")
	stranger := gitserver.NewKey(t, "Stranger", "stranger@example.com")
	tests := []struct {
		name    string
		key     *gitserver.Key
		want    reconciler.SyncResult
		applied bool
	}{
		{"unsigned", nil, reconciler.ResultVerificationFailed, false},
		{"untrusted key", stranger, reconciler.ResultVerificationFailed, false},
		{"trusted key", trusted, reconciler.ResultApplied, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := unique(fmt.Sprintf("verify-%d", i))
			g := newRig(t, name, overHTTP)
			g.src.Verify = &v1alpha1.Verification{KeyringFiles: []string{trusted.WritePublic(t)}}
			namespace(t, name)
			change := gitserver.Change{Files: map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil)}}
			if tc.key != nil {
				change.SignKey = tc.key.Entity
			}
			commit := g.repo.Commit(t, "main", change)
			_, err := g.reconciler().Sync(testCtx(t))
			if (err == nil) != tc.applied {
				t.Errorf("sync error = %v, want applied %v", err, tc.applied)
			}
			if got := getConfigMap(t, name, "a") != nil; got != tc.applied {
				t.Errorf("configmap a exists = %v, want %v", got, tc.applied)
			}
			st := g.status()
			if st.Result != tc.want {
				t.Errorf("status result = %s (%s), want %s", st.Result, st.Message, tc.want)
			}
			if tc.applied && st.Revision != commit {
				t.Errorf("status revision = %s, want %s", st.Revision, commit)
			}
		})
	}
}

func TestSyncAfterRestartPrunesNothing(t *testing.T) {
	name := unique("restart")
	g := newRig(t, name, overHTTP)
	namespace(t, name)
	g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
		"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
	})
	g.sync(g.reconciler())
	before := map[string]string{}
	for _, n := range []string{"a", "b"} {
		before[n] = getConfigMap(t, name, n).ResourceVersion
	}

	// A new process starts while Git is unreachable: it must not prune or change anything.
	g.server.Stop()
	restarted := g.reconciler()
	if _, err := restarted.Sync(testCtx(t)); err == nil {
		t.Fatal("sync succeeded with the Git server down")
	}
	g.server.Start(t)
	g.sync(restarted)
	for _, n := range []string{"a", "b"} {
		cm := getConfigMap(t, name, n)
		if cm == nil {
			t.Fatalf("%s was deleted by the restarted reconciler", n)
		}
		if cm.ResourceVersion != before[n] {
			t.Errorf("%s was rewritten by the restarted reconciler (resourceVersion %s, was %s)", n, cm.ResourceVersion, before[n])
		}
	}
	if st := g.status(); st.ObjectsApplied != 0 || st.ObjectsPruned != 0 {
		t.Errorf("status after restart = %+v, want nothing applied or pruned", st)
	}

	// The inventory survived the restart: what leaves Git now is pruned.
	g.commit(nil, "apps/b.yaml")
	g.sync(restarted)
	if getConfigMap(t, name, "b") != nil {
		t.Error("b, removed from Git after the restart, was not pruned")
	}
}

func TestSyncAppliesCRDAndCustomResourceInOrder(t *testing.T) {
	name := unique("crd")
	group := name + ".example.driftless.dev"
	g := newRig(t, name, overFile)
	commit := g.commit(map[string]string{
		"apps/widget.yaml": `apiVersion: ` + group + `/v1
kind: Widget
metadata:
  name: gear
  namespace: ` + name + `
spec:
  size: 3
`,
		"apps/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.` + group + `
spec:
  group: ` + group + `
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`,
		"apps/namespace.yaml": namespaceYAML(name),
	})
	r := g.reconciler()
	g.sync(r)
	w := get(t, group+"/v1", "widgets", name, "gear")
	if w == nil {
		t.Fatal("custom resource Widget gear was not created")
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 || w.GetLabels()[v1alpha1.LabelSource] != name {
		t.Errorf("widget = %v, want size 3 labelled with the source", w.Object)
	}
	inv := inventoryText(t, name)
	iNS, iCRD, iW := strings.Index(inv, `"k":"Namespace"`), strings.Index(inv, `"k":"CustomResourceDefinition"`), strings.Index(inv, `"k":"Widget"`)
	if iNS < 0 || iCRD < 0 || iW < 0 || iW < iCRD || iW < iNS {
		t.Errorf("inventory order = %s, want the Namespace and the CRD before the Widget", inv)
	}
	if st := g.status(); st.Revision != commit || st.ObjectsApplied != 3 {
		t.Errorf("status = %+v, want %s with 3 objects applied", st, commit)
	}
	// A second sync finds everything in place.
	g.sync(r)
	if st := g.status(); st.ObjectsApplied != 0 {
		t.Errorf("resync applied %d objects, want 0", st.ObjectsApplied)
	}
}

func TestSyncSourcesDoNotPruneEachOther(t *testing.T) {
	ns, teamA, teamB := unique("shared"), unique("team-a"), unique("team-b")
	namespace(t, ns)
	a := newRig(t, teamA, overFile)
	b := newRig(t, teamB, overHTTP)
	a.commit(map[string]string{
		"apps/a1.yaml":         configMap(ns, "a1", map[string]string{"k": "a"}, nil),
		"apps/a2.yaml":         configMap(ns, "a2", map[string]string{"k": "a"}, nil),
		"apps/moved.yaml":      configMap(ns, "moved", map[string]string{"owner": "a"}, nil),
		"apps/relabelled.yaml": configMap(ns, "relabelled", map[string]string{"k": "a"}, nil),
	})
	b.commit(map[string]string{
		"apps/b1.yaml": configMap(ns, "b1", map[string]string{"k": "b"}, nil),
	})
	ra, rb := a.reconciler(), b.reconciler()
	a.sync(ra)
	b.sync(rb)

	// team-b declares moved while team-a still does: a conflict, and nothing of team-b's
	// revision is applied.
	b.commit(map[string]string{
		"apps/moved.yaml": configMap(ns, "moved", map[string]string{"owner": "b"}, nil),
		"apps/b1.yaml":    configMap(ns, "b1", map[string]string{"k": "b2"}, nil),
	})
	if _, err := rb.Sync(testCtx(t)); err == nil || !strings.Contains(err.Error(), "applied by source "+teamA) {
		t.Fatalf("sync of a conflicting revision: %v, want a conflict with team-a", err)
	}
	if got := dataOf(getConfigMap(t, ns, "b1")); got != "k=b" {
		t.Errorf("b1 = %s after the conflict, want k=b", got)
	}
	// Someone relabels one of team-a's objects by hand, with no reconciler watching.
	kubectl(t, "-n", ns, "label", "configmap", "relabelled", v1alpha1.LabelSource+"="+teamB, "--overwrite")

	a.commit(nil, "apps/a1.yaml", "apps/moved.yaml", "apps/relabelled.yaml")
	a.sync(ra)
	if st := a.status(); st.ObjectsPruned != 2 {
		t.Errorf("team-a pruned %d objects, want 2 (a1 and moved, not the relabelled one)", st.ObjectsPruned)
	}
	b.sync(rb)
	a.sync(ra)

	want := map[string]string{"a1": "<none>", "a2": "k=a", "b1": "k=b2", "moved": "owner=b", "relabelled": "k=a"}
	for n, w := range want {
		if got := dataOf(getConfigMap(t, ns, n)); got != w {
			t.Errorf("%s = %s, want %s", n, got, w)
		}
	}
	if got := getConfigMap(t, ns, "moved").Labels[v1alpha1.LabelSource]; got != teamB {
		t.Errorf("moved is labelled %q, want team-b", got)
	}
	if st := a.status(); st.ObjectsPruned != 0 || st.ObjectsManaged != 1 {
		t.Errorf("team-a status = %+v, want 1 managed object and nothing pruned by its last sync", st)
	}
	if st := b.status(); st.ObjectsManaged != 2 {
		t.Errorf("team-b manages %d objects, want 2", st.ObjectsManaged)
	}
}

func TestSyncKustomizationIntoTargetNamespace(t *testing.T) {
	name := unique("kustomize")
	g := newRig(t, name, overHTTP)
	g.src.TargetNamespace = name
	namespace(t, name)
	commit := g.commit(map[string]string{
		"apps/kustomization.yaml": "resources:\n- app.yaml\nlabels:\n- pairs: {team: payments}\n",
		"apps/app.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n",
		"apps/ignored.yaml":       configMap(name, "ignored", map[string]string{"k": "v"}, nil),
	})
	g.sync(g.reconciler())
	cm := getConfigMap(t, name, "app")
	if cm == nil {
		t.Fatalf("configmap app was not created in the target namespace %s", name)
	}
	if cm.Labels["team"] != "payments" || cm.Labels[v1alpha1.LabelSource] != name || cm.Annotations[v1alpha1.AnnotationRevision] != commit {
		t.Errorf("app labels %v annotations %v, want kustomize's team label, the source label and the revision", cm.Labels, cm.Annotations)
	}
	if getConfigMap(t, name, "ignored") != nil {
		t.Error("a file the kustomization does not list was applied")
	}
}
