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

// TestSetFollowsConfiguration changes a running set's configuration as a reload does: an
// added source is applied, a changed one restarts with its new settings, a removed one stops
// and leaves its objects, and a bad configuration changes nothing.
func TestSetFollowsConfiguration(t *testing.T) {
	a, b := newRig(t, unique("set-a"), overFile), newRig(t, unique("set-b"), overFile)
	for _, g := range []*rig{a, b} {
		namespace(t, g.src.Name)
	}
	revA := a.commit(map[string]string{"apps/a.yaml": configMap(a.src.Name, "a", map[string]string{"x": "1"}, nil)})
	revB := b.commit(map[string]string{"apps/b.yaml": configMap(b.src.Name, "b", map[string]string{"y": "1"}, nil)})
	config := func(sources ...v1alpha1.Source) *v1alpha1.DriftlessConfig {
		c := &v1alpha1.DriftlessConfig{Sources: sources}
		v1alpha1.SetDefaults(c)
		return c
	}
	set, err := reconciler.NewSet(config(a.src), a.opts)
	if err != nil {
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
	if err := set.SetConfig(config(a.src, b.src)); err != nil {
		t.Fatal(err)
	}
	b.waitRevision(revB)
	if got := set.Names(); !slices.Equal(got, []string{a.src.Name, b.src.Name}) {
		t.Errorf("running %v, want both sources", got)
	}

	// Changed: a new path restarts the source with it.
	revA2 := a.commit(map[string]string{"other/a2.yaml": configMap(a.src.Name, "a2", map[string]string{"x": "2"}, nil)})
	a.src.Path = "other"
	if err := set.SetConfig(config(a.src, b.src)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "source a applies its new path", func() (bool, string) {
		return getConfigMap(t, a.src.Name, "a2") != nil, "no configmap a2"
	})
	a.waitRevision(revA2)

	// A bad configuration changes nothing.
	bad := b.src
	bad.URL = ""
	if err := set.SetConfig(config(a.src, bad)); err == nil {
		t.Error("a source without a URL was accepted")
	}
	dup := config(a.src, a.src)
	if err := set.Check(dup); err == nil {
		t.Error("a source configured twice was accepted")
	}
	if got := set.Names(); !slices.Equal(got, []string{a.src.Name, b.src.Name}) {
		t.Errorf("after refused configurations running %v, want both sources", got)
	}

	// Removed: b stops, and its objects stay.
	if err := set.SetConfig(config(a.src)); err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); !slices.Equal(got, []string{a.src.Name}) {
		t.Errorf("running %v, want only %s", got, a.src.Name)
	}
	b.commit(map[string]string{"apps/b2.yaml": configMap(b.src.Name, "b2", nil, nil)}, "apps/b.yaml")
	if getConfigMap(t, b.src.Name, "b") == nil {
		t.Error("the removed source's configmap b was deleted")
	}
}

// TestSetBreakGlassMaximumReachesRunningReconcilers raises the break-glass maximum on a
// running set: a break-glass beyond the old maximum is then honoured, not reverted.
func TestSetBreakGlassMaximumReachesRunningReconcilers(t *testing.T) {
	g := newRig(t, unique("set-bg"), overFile)
	namespace(t, g.src.Name)
	rev := g.commit(map[string]string{"apps/a.yaml": configMap(g.src.Name, "a", map[string]string{"x": "1"}, nil)})
	cfg := &v1alpha1.DriftlessConfig{Sources: []v1alpha1.Source{g.src}}
	v1alpha1.SetDefaults(cfg)
	cfg.Guard.BreakGlass.MaxDuration = metav1.Duration{Duration: time.Hour}
	set, err := reconciler.NewSet(cfg, g.opts)
	if err != nil {
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
