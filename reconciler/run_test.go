package reconciler_test

import (
	"testing"
)

func TestStartSyncsEveryInterval(t *testing.T) {
	name := unique("interval")
	g := newRig(t, name, overHTTP)
	namespace(t, name)
	first := g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil)})
	r := g.reconciler()
	if !r.NeedLeaderElection() {
		t.Error("NeedLeaderElection = false; only the leader may apply")
	}
	g.start(r, first)

	second := g.commit(map[string]string{"apps/a.yaml": configMap(name, "a", map[string]string{"x": "2"}, nil)})
	// The loop waits for the interval on the fake clock; nothing happens before it passes.
	eventually(t, "the loop waits for the interval", func() (bool, string) { return g.clock.HasWaiters(), "no timer" })
	if got := dataOf(getConfigMap(t, name, "a")); got != "x=1" {
		t.Fatalf("a = %s before the interval passed, want x=1", got)
	}
	g.clock.Step(g.src.Interval.Duration)
	g.waitRevision(second)
	if got := dataOf(getConfigMap(t, name, "a")); got != "x=2" {
		t.Errorf("a = %s after the interval, want x=2", got)
	}
}
