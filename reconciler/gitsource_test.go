package reconciler_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

// TestHistorySurvivesANewReconciler syncs revisions with one reconciler, then with a new one,
// as after a restart or a failover: the history in the GitSource keeps the earlier syncs,
// newest first, bounded to ten, and a failed sync records its result without losing them.
func TestHistorySurvivesANewReconciler(t *testing.T) {
	name := unique("history")
	g := newRig(t, name, overFile)
	namespace(t, name)
	var revs []string
	r := g.reconciler()
	for i := range 3 {
		revs = append(revs, g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"i": fmt.Sprint(i)}, nil)}))
		g.sync(r)
	}
	// A new reconciler, as a new process makes it.
	r2 := g.reconciler()
	revs = append(revs, g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"i": "3"}, nil)}))
	g.sync(r2)
	st := g.status()
	if len(st.History) != 4 {
		t.Fatalf("history has %d records, want 4: %+v", len(st.History), st.History)
	}
	for i, h := range st.History {
		if want := revs[len(revs)-1-i]; h.Revision != want || h.Result != string(reconciler.ResultApplied) || h.Changed+h.Created != 1 {
			t.Errorf("history[%d] = %+v, want %s applied, one object", i, h, want)
		}
	}
	if st.History[3].Created != 1 || st.History[0].Changed != 1 {
		t.Errorf("history counts: first %+v, last %+v; want the first created, the last changed", st.History[3], st.History[0])
	}

	// A broken revision is recorded by a third reconciler; the applied revision stays.
	broken := g.commit(map[string]string{"apps/a.yaml": "not: [yaml"})
	r3 := g.reconciler()
	if _, err := r3.Sync(testCtx(t)); err == nil {
		t.Fatal("a broken revision synced")
	}
	st = g.status()
	if len(st.History) != 5 || st.History[0].Revision != broken || st.History[0].Result != string(reconciler.ResultRenderFailed) || st.Revision != revs[3] {
		t.Errorf("after a failed sync: revision %s, history %+v; want %s kept and RenderFailed of %s first", st.Revision, st.History, revs[3], broken)
	}

	// Bounded: twelve more revisions leave the newest ten.
	for i := range 12 {
		g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"i": fmt.Sprint(10 + i)}, nil)})
		g.sync(r3)
	}
	if st := g.status(); len(st.History) != v1alpha1.MaxHistory || st.History[0].Revision != st.Revision {
		t.Errorf("history has %d records, newest %s; want %d, newest the applied %s", len(st.History), st.History[0].Revision, v1alpha1.MaxHistory, st.Revision)
	}

	// kubectl shows the history and the Ready condition.
	out := kubectl(t, "-n", v1alpha1.DefaultNamespace, "get", "gitsource", name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.history[0].result}")
	if strings.TrimSpace(out) != "True Applied" {
		t.Errorf("kubectl shows %q, want Ready True and the newest record Applied", out)
	}
}
