package reconciler_test

import (
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/reconciler"
)

func TestDiffReportsWhatASyncWouldChange(t *testing.T) {
	name := unique("diff")
	g := newRig(t, name, overFile)
	namespace(t, name)
	g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
		"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
		"apps/u.yaml": configMap(name, "u", map[string]string{"z": "1"}, nil),
	})
	r := g.reconciler()
	g.sync(r)
	// Out of band, with no reconciler running: a gains a key.
	kubectl(t, "-n", name, "patch", "configmap", "a", "--type=merge", "-p", `{"data":{"oob":"added"}}`)
	commit := g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "2"}, nil),
		"apps/c.yaml": configMap(name, "c", map[string]string{"new": "1"}, nil),
	}, "apps/b.yaml")

	report, err := r.Diff(testCtx(t))
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	if report.Revision != commit || report.Unchanged != 1 {
		t.Errorf("report revision %s with %d unchanged, want %s with 1 (u)", report.Revision, report.Unchanged, commit)
	}
	tests := []struct {
		object string
		action reconciler.Action
		diff   []string
	}{
		{"ConfigMap " + name + "/a", reconciler.ActionUpdate, []string{"--- cluster", "+++ git@" + commit[:12], `-  oob: added`, `-  x: "1"`, `+  x: "2"`}},
		{"ConfigMap " + name + "/c", reconciler.ActionCreate, []string{`+  new: "1"`, "+kind: ConfigMap"}},
		{"ConfigMap " + name + "/b", reconciler.ActionPrune, nil},
	}
	if len(report.Changes) != len(tests) {
		t.Fatalf("changes = %+v, want %d", report.Changes, len(tests))
	}
	for _, tc := range tests {
		var found *reconciler.ObjectDiff
		for i := range report.Changes {
			if report.Changes[i].Object == tc.object {
				found = &report.Changes[i]
			}
		}
		if found == nil {
			t.Errorf("no change for %s in %+v", tc.object, report.Changes)
			continue
		}
		if found.Action != tc.action {
			t.Errorf("%s: action %s, want %s", tc.object, found.Action, tc.action)
		}
		for _, w := range tc.diff {
			if !strings.Contains(found.Diff, w) {
				t.Errorf("%s: diff does not contain %q:\n%s", tc.object, w, found.Diff)
			}
		}
		for _, noise := range []string{"managedFields", "resourceVersion", "driftless.dev/revision"} {
			if strings.Contains(found.Diff, noise) {
				t.Errorf("%s: diff shows %s:\n%s", tc.object, noise, found.Diff)
			}
		}
	}
	// Diff changed nothing.
	if got := dataOf(getConfigMap(t, name, "a")); got != "oob=added,x=1" {
		t.Errorf("a = %s after diff, want it untouched", got)
	}
	if getConfigMap(t, name, "c") != nil || getConfigMap(t, name, "b") == nil {
		t.Error("diff created c or deleted b")
	}
}
