package reconciler_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

// TestSetFollowsSources changes a running set's sources as the GitSource controller does: an
// added source is applied, a changed one restarts with its new settings, a removed one stops
// and leaves its objects, and a source that cannot run changes nothing.
func TestSetFollowsSources(t *testing.T) {
	a, b := newRig(t, unique("set-a"), overFile), newRig(t, unique("set-b"), overFile)
	for _, g := range []*rig{a, b} {
		namespace(t, g.src.Name)
	}
	revA := a.commit(map[string]string{"apps/a.yaml": configMap(a.src.Name, "a", map[string]string{"x": "1"}, nil)})
	revB := b.commit(map[string]string{"apps/b.yaml": configMap(b.src.Name, "b", map[string]string{"y": "1"}, nil)})
	cfg := &v1alpha1.DriftlessConfig{}
	v1alpha1.SetDefaults(cfg)
	set, err := reconciler.NewSet(cfg, a.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Put(reconciler.SourceRun{Source: a.src}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.NewWithInterface(t, testr.Options{})))
	done := make(chan error, 1)
	go func() { done <- set.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("start returned %v", err)
		}
	})
	a.waitRevision(revA)

	// Added: b is applied without a restart.
	if err := set.Put(reconciler.SourceRun{Source: b.src}); err != nil {
		t.Fatal(err)
	}
	b.waitRevision(revB)
	if got := set.Names(); !slices.Equal(got, sorted(a.src.Name, b.src.Name)) {
		t.Errorf("running %v, want both sources", got)
	}

	// Changed: a new path restarts the source with it.
	revA2 := a.commit(map[string]string{"other/a2.yaml": configMap(a.src.Name, "a2", map[string]string{"x": "2"}, nil)})
	a.src.Path = "other"
	if err := set.Put(reconciler.SourceRun{Source: a.src, Generation: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "source a applies its new path", func() (bool, string) {
		return getConfigMap(t, a.src.Name, "a2") != nil, "no configmap a2"
	})
	a.waitRevision(revA2)

	// A source that cannot run changes nothing.
	if err := set.Put(reconciler.SourceRun{}); err == nil {
		t.Error("a source without a name was accepted")
	}
	if got := set.Names(); !slices.Equal(got, sorted(a.src.Name, b.src.Name)) {
		t.Errorf("after a refused source running %v, want both sources", got)
	}

	// Removed: b stops, and its objects stay.
	set.Remove(b.src.Name)
	if got := set.Names(); !slices.Equal(got, []string{a.src.Name}) {
		t.Errorf("running %v, want only %s", got, a.src.Name)
	}
	b.commit(map[string]string{"apps/b2.yaml": configMap(b.src.Name, "b2", nil, nil)}, "apps/b.yaml")
	if getConfigMap(t, b.src.Name, "b") == nil {
		t.Error("the removed source's configmap b was deleted")
	}
}

// sorted returns names sorted.
func sorted(names ...string) []string {
	slices.Sort(names)
	return names
}

// TestSetBreakGlassMaximumReachesRunningReconcilers raises the break-glass maximum on a
// running set: a break-glass beyond the old maximum is then honoured, not reverted.
func TestSetBreakGlassMaximumReachesRunningReconcilers(t *testing.T) {
	g := newRig(t, unique("set-bg"), overFile)
	namespace(t, g.src.Name)
	rev := g.commit(map[string]string{"apps/a.yaml": configMap(g.src.Name, "a", map[string]string{"x": "1"}, nil)})
	cfg := &v1alpha1.DriftlessConfig{}
	v1alpha1.SetDefaults(cfg)
	cfg.Guard.BreakGlass.MaxDuration = metav1.Duration{Duration: time.Hour}
	set, err := reconciler.NewSet(cfg, g.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Put(reconciler.SourceRun{Source: g.src}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.NewWithInterface(t, testr.Options{})))
	done := make(chan error, 1)
	go func() { done <- set.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	g.waitRevision(rev)

	cfg.Guard.BreakGlass.MaxDuration = metav1.Duration{Duration: 6 * time.Hour}
	if err := set.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	until := g.clock.Now().Add(5 * time.Hour).UTC().Format(time.RFC3339)
	kubectl(t, "-n", g.src.Name, "annotate", "configmap/a", v1alpha1.AnnotationBreakGlass+"=INC-7", v1alpha1.AnnotationBreakGlassUntil+"="+until)
	kubectl(t, "-n", g.src.Name, "patch", "configmap/a", "--type=merge", "-p", `{"data":{"x":"500"}}`)
	eventually(t, "the status lists the break-glass", func() (bool, string) {
		st := g.status()
		return len(st.BreakGlass) == 1, dataOf(getConfigMap(t, g.src.Name, "a"))
	})
	if got := getConfigMap(t, g.src.Name, "a").Data["x"]; got != "500" {
		t.Errorf("x = %q under a 5h break-glass with a 6h maximum, want alice's 500", got)
	}
}
