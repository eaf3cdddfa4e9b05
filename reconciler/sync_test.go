package reconciler_test

import (
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

func TestSyncAppliesUpdatesAndPrunes(t *testing.T) {
	for _, transport := range []string{overHTTP, overFile} {
		t.Run(transport, func(t *testing.T) {
			name := "apply-" + transport
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
			inv := getConfigMap(t, v1alpha1.DefaultNamespace, reconciler.InventoryConfigMapName(name))
			if inv == nil || !strings.Contains(inv.Data["objects"], `"n":"a"`) || strings.Contains(inv.Data["objects"], `"n":"b"`) {
				t.Errorf("inventory = %v, want a and not b", inv)
			}
			waitEvent(t, ns, "b", "Pruned", "left Git")
		})
	}
}
