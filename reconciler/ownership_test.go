package reconciler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

// syncFails runs one sync that must fail with result, with an error naming every string in
// want, and returns the status after it.
func (g *rig) syncFails(r *reconciler.Reconciler, result reconciler.SyncResult, want ...string) reconciler.Status {
	g.t.Helper()
	_, err := r.Sync(testCtx(g.t))
	if err == nil {
		g.t.Fatalf("sync %s succeeded, want %s", g.src.Name, result)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			g.t.Errorf("sync error %q does not name %q", err, w)
		}
	}
	st := g.status()
	if st.Result != result || st.Message != err.Error() {
		g.t.Errorf("status = %s %q, want %s with the error as message", st.Result, st.Message, result)
	}
	return st
}

// namespaceState reads a Namespace as admin: its phase, whether it is being deleted and its
// source label; phase "Gone" when it does not exist.
func namespaceState(t *testing.T, name string) (phase corev1.NamespacePhase, deleting bool, label string) {
	t.Helper()
	ns, err := admin.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return "Gone", false, ""
	}
	return ns.Status.Phase, ns.DeletionTimestamp != nil, ns.Labels[v1alpha1.LabelSource]
}

// requireActive fails the test unless the Namespace exists, is Active, is not being deleted
// and does not carry a source label.
func requireActive(t *testing.T, name, when string) {
	t.Helper()
	phase, deleting, label := namespaceState(t, name)
	if phase != corev1.NamespaceActive || deleting || label != "" {
		t.Fatalf("%s: Namespace %s is %s (deleting %v, label %q), want Active, untouched", when, name, phase, deleting, label)
	}
}

// The attack: an overlay with `namespace: production` builds a base that gains a Namespace
// object. kustomize renames it to production, which exists and which Driftless never
// created; it must neither take it over nor, when the file goes, delete it.
func TestOwnershipNamespaceRenameNeverTouchesTheNamespace(t *testing.T) {
	name := unique("rename")
	production := name + "-production"
	namespace(t, production)
	g := newRig(t, name, overFile)
	g.src.Path = "overlays/production"
	first := g.commit(map[string]string{
		"base/kustomization.yaml":                "resources:\n- app.yaml\n",
		"base/app.yaml":                          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n",
		"overlays/production/kustomization.yaml": "namespace: " + production + "\nresources:\n- ../../base\n",
	})
	r := g.reconciler()
	g.sync(r)
	requireActive(t, production, "after the first revision")

	g.commit(map[string]string{
		"base/kustomization.yaml": "resources:\n- app.yaml\n- team-ns.yaml\n",
		"base/team-ns.yaml":       namespaceYAML("team-data"),
	})
	st := g.syncFails(r, reconciler.ResultRenderFailed,
		"overlays/production/kustomization.yaml sets namespace: "+production, "Namespace team-data (base/team-ns.yaml)")
	if st.Revision != first {
		t.Errorf("status revision = %s, want the last good %s", st.Revision, first)
	}
	requireActive(t, production, "after the revision that adds the Namespace")

	third := g.commit(map[string]string{"base/kustomization.yaml": "resources:\n- app.yaml\n"}, "base/team-ns.yaml")
	g.sync(r)
	if st := g.status(); st.Revision != third || st.ObjectsPruned != 0 {
		t.Errorf("status = %+v, want %s applied with nothing pruned", st, third)
	}
	requireActive(t, production, "after the revision that removes the Namespace file")
	if getConfigMap(t, production, "app") == nil {
		t.Error("the overlay's ConfigMap is gone")
	}
}

// Removing a Namespace Driftless created orphans it unless the live object confirms the prune.
func TestOwnershipNamespacePruneNeedsConfirmation(t *testing.T) {
	name := unique("confirm")
	kept, confirmed := name+"-kept", name+"-confirmed"
	g := newRig(t, name, overFile)
	g.commit(map[string]string{
		"apps/kept.yaml":      namespaceYAML(kept),
		"apps/confirmed.yaml": namespaceYAML(confirmed),
		"apps/cm.yaml":        configMap(kept, "cm", map[string]string{"k": "v"}, nil),
	})
	r := g.reconciler()
	g.sync(r)
	kubectl(t, "annotate", "namespace", confirmed, v1alpha1.AnnotationPrune+"="+v1alpha1.PruneConfirm)

	removed := g.commit(nil, "apps/kept.yaml", "apps/confirmed.yaml")
	g.sync(r)
	st := g.status()
	if st.Revision != removed || st.ObjectsPruned != 1 || st.ObjectsManaged != 1 {
		t.Errorf("status = %+v, want %s with 1 pruned and 1 managed", st, removed)
	}
	for _, w := range []string{"1 orphaned", "Namespace " + kept, v1alpha1.AnnotationPrune + ": " + v1alpha1.PruneConfirm} {
		if !strings.Contains(st.Message, w) {
			t.Errorf("status message %q does not report %q", st.Message, w)
		}
	}
	requireActive(t, kept, "the unconfirmed Namespace that left Git")
	if phase, deleting, _ := namespaceState(t, confirmed); phase != "Gone" && !deleting {
		t.Errorf("the confirmed Namespace is %s and not being deleted, want it pruned", phase)
	}
	waitEvent(t, metav1.NamespaceDefault, kept, "Orphaned", "left Git but not deleted", "source "+name)
	inv := inventoryText(t, name)
	if strings.Contains(inv, `"k":"Namespace"`) || !strings.Contains(inv, `"n":"cm"`) {
		t.Errorf("inventory = %s, want only the ConfigMap", inv)
	}
}

func TestOwnershipAdoption(t *testing.T) {
	name := unique("adopt")
	ns := name
	namespace(t, ns)
	kubectl(t, "-n", ns, "create", "configmap", "pre", "--from-literal=k=by-hand")
	g := newRig(t, name, overFile)
	first := g.commit(map[string]string{"apps/keep.yaml": configMap(ns, "keep", map[string]string{"k": "v"}, nil)})
	r := g.reconciler()
	g.sync(r)

	// The revision declares two objects that exist without the source's label.
	second := g.commit(map[string]string{
		"apps/pre.yaml": configMap(ns, "pre", map[string]string{"k": "git"}, nil),
		"apps/ns.yaml":  namespaceYAML(ns),
	})
	st := g.syncFails(r, reconciler.ResultAdoptionRefused, "ConfigMap "+ns+"/pre", "Namespace "+ns, v1alpha1.AnnotationAdopt, "adopt: true")
	if st.Revision != first {
		t.Errorf("status revision = %s, want the last good %s", st.Revision, first)
	}
	pre := getConfigMap(t, ns, "pre")
	if dataOf(pre) != "k=by-hand" || pre.Labels[v1alpha1.LabelSource] != "" {
		t.Errorf("pre = %s labels %v after the refusal, want it untouched", dataOf(pre), pre.Labels)
	}
	requireActive(t, ns, "after the refusal")
	waitEvent(t, ns, "pre", string(reconciler.ResultAdoptionRefused), "source "+name, v1alpha1.AnnotationAdopt)

	// Both objects opt in.
	kubectl(t, "-n", ns, "annotate", "configmap", "pre", v1alpha1.AnnotationAdopt+"="+v1alpha1.AdoptAllowed)
	kubectl(t, "annotate", "namespace", ns, v1alpha1.AnnotationAdopt+"="+v1alpha1.AdoptAllowed)
	g.sync(r)
	if st := g.status(); st.Revision != second {
		t.Errorf("status = %+v, want %s applied", st, second)
	}
	if pre := getConfigMap(t, ns, "pre"); dataOf(pre) != "k=git" || pre.Labels[v1alpha1.LabelSource] != name {
		t.Errorf("pre = %s labels %v, want adopted with Git's data", dataOf(pre), pre.Labels)
	}
	inv := inventoryText(t, name)
	for _, w := range []string{`"n":"pre","o":"a"`, `"k":"Namespace","n":"` + ns + `","o":"a"`, `"n":"keep","o":"c"`} {
		if !strings.Contains(inv, w) {
			t.Errorf("inventory %s does not record %s", inv, w)
		}
	}

	// Adopted objects that leave Git are orphaned, not deleted.
	g.commit(nil, "apps/pre.yaml", "apps/ns.yaml")
	g.sync(r)
	st = g.status()
	if st.ObjectsPruned != 0 || !strings.Contains(st.Message, "2 orphaned") || !strings.Contains(st.Message, "adopted") {
		t.Errorf("status = %+v, want nothing pruned and the two adopted objects orphaned", st)
	}
	if pre := getConfigMap(t, ns, "pre"); pre == nil || pre.Labels[v1alpha1.LabelSource] != "" {
		t.Errorf("pre = %v, want it kept without the source label", pre)
	}
	if phase, deleting, _ := namespaceState(t, ns); phase != corev1.NamespaceActive || deleting {
		t.Errorf("the adopted Namespace is %s (deleting %v), want it kept", phase, deleting)
	}

	// The source opts in: every object it declares may be adopted.
	kubectl(t, "-n", ns, "create", "configmap", "pre2", "--from-literal=k=by-hand")
	third := g.commit(map[string]string{"apps/pre2.yaml": configMap(ns, "pre2", map[string]string{"k": "git"}, nil)})
	g.src.Adopt = true
	g.sync(g.reconciler())
	if st := g.status(); st.Revision != third {
		t.Errorf("status = %+v, want %s applied by the source that adopts", st, third)
	}
	if pre2 := getConfigMap(t, ns, "pre2"); dataOf(pre2) != "k=git" || pre2.Labels[v1alpha1.LabelSource] != name {
		t.Errorf("pre2 = %s labels %v, want adopted", dataOf(pre2), pre2.Labels)
	}
}

// An installation upgraded from a version whose inventory recorded no origins: its objects
// carry the source's label, so they count as created; nothing is pruned or re-created.
func TestOwnershipUpgradeFromInventoryWithoutOrigins(t *testing.T) {
	name := unique("upgrade")
	ns := name
	namespace(t, ns)
	g := newRig(t, name, overFile)
	commit := g.commit(map[string]string{
		"apps/a.yaml": configMap(ns, "a", map[string]string{"k": "a"}, nil),
		"apps/b.yaml": configMap(ns, "b", map[string]string{"k": "b"}, nil),
	})
	// What the previous version left: the objects labelled with the source, and its inventory.
	uids := map[string]types.UID{}
	for _, n := range []string{"a", "b", "unlabelled"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns, Labels: map[string]string{v1alpha1.LabelSource: name}}, Data: map[string]string{"k": n}}
		if n == "unlabelled" {
			cm.Labels = nil
		}
		created, err := admin.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[n] = created.UID
	}
	old := "[\n" + `{"v":"v1","k":"ConfigMap","ns":"` + ns + `","n":"a"},` + "\n" +
		`{"v":"v1","k":"ConfigMap","ns":"` + ns + `","n":"b"},` + "\n" +
		`{"v":"v1","k":"ConfigMap","ns":"` + ns + `","n":"unlabelled"}` + "\n]\n"
	if _, err := admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: reconciler.InventoryConfigMapName(name)},
		Data:       map[string]string{"source": name, "objects": old},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: reconciler.StatusConfigMapName(name)},
		Data:       map[string]string{"source": name, "driftReverts": "7", "lastChange": "reverted by the old version"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := g.reconciler()
	g.sync(r)
	if st := g.status(); st.Revision != commit || st.ObjectsPruned != 0 || strings.Contains(st.Message, "orphaned") {
		t.Errorf("status = %+v, want %s applied, nothing pruned or orphaned", st, commit)
	}
	for n, uid := range uids {
		cm := getConfigMap(t, ns, n)
		if cm == nil || cm.UID != uid {
			t.Errorf("configmap %s = %v, want the object the previous version left (uid %s)", n, cm, uid)
		}
	}
	// The inventory and the status moved into the GitSource, and the old ConfigMaps are gone.
	for _, cm := range []string{reconciler.InventoryConfigMapName(name), reconciler.StatusConfigMapName(name)} {
		if got := getConfigMap(t, v1alpha1.DefaultNamespace, cm); got != nil {
			t.Errorf("the ConfigMap %s of the previous version is still there: %v", cm, got.Data)
		}
	}
	if st := g.status(); st.DriftReverts != 7 {
		t.Errorf("drift reverts = %d, want the 7 the previous version counted", st.DriftReverts)
	}
	if got := kubectl(t, "-n", v1alpha1.DefaultNamespace, "get", "gitsource", name, "-o", "jsonpath={.status.inventory.entries[*].id}"); !strings.Contains(got, ns+"_a__ConfigMap") {
		t.Errorf("gitsource inventory = %q, want a", got)
	}
	inv := inventoryText(t, name)
	if !strings.Contains(inv, `"n":"a","o":"c"`) || !strings.Contains(inv, `"n":"b","o":"c"`) || strings.Contains(inv, "unlabelled") {
		t.Errorf("inventory = %s, want a and b recorded as created, and the unlabelled object dropped", inv)
	}

	// Objects from the old inventory count as created: they are pruned when they leave Git.
	g.commit(nil, "apps/b.yaml")
	g.sync(r)
	if getConfigMap(t, ns, "b") != nil || g.status().ObjectsPruned != 1 {
		t.Errorf("b was not pruned: status %+v", g.status())
	}
}

// A revision over a limit is refused with the limit named; the last good revision stays
// applied and keeps healing.
func TestLimitsKeepTheLastGoodRevisionHealing(t *testing.T) {
	name := unique("limits")
	ns := name
	namespace(t, ns)
	g := newRig(t, name, overHTTP)
	g.src.Limits.MaxFileSize = resource.MustParse("1Mi")
	good := g.commit(map[string]string{"apps/cm.yaml": configMap(ns, "cm", map[string]string{"k": "git"}, nil)})
	r := g.reconciler()
	g.start(r, good)

	g.commit(map[string]string{"base/huge.bin": strings.Repeat("\x00", 5<<20)})
	eventually(t, "g.clock.HasWaiters", func() (bool, string) { return g.clock.HasWaiters(), "no timer" })
	g.clock.Step(g.src.Interval.Duration)
	const want = "5 MiB, over the source's limits.maxFileSize of 1 MiB"
	eventually(t, "status LimitExceeded", func() (bool, string) {
		st := g.status()
		return st.Result == reconciler.ResultLimitExceeded && strings.Contains(st.Message, want) && st.Revision == good, st.Message
	})

	kubectl(t, "-n", ns, "patch", "configmap", "cm", "--type=merge", "-p", `{"data":{"k":"by-hand"}}`)
	eventually(t, "the drift is reverted from the last good revision", func() (bool, string) {
		got := dataOf(getConfigMap(t, ns, "cm"))
		return got == "k=git", got
	})
}

func TestLimitsOnTheRender(t *testing.T) {
	name := unique("render-limits")
	ns := name
	namespace(t, ns)
	g := newRig(t, name, overFile)
	g.src.Limits.MaxObjects = 2
	g.commit(map[string]string{
		"apps/a.yaml": configMap(ns, "a", nil, nil),
		"apps/b.yaml": configMap(ns, "b", nil, nil),
		"apps/c.yaml": configMap(ns, "c", nil, nil),
	})
	g.syncFails(g.reconciler(), reconciler.ResultLimitExceeded, "more than 2 objects, over the source's limits.maxObjects of 2")
	if getConfigMap(t, ns, "a") != nil {
		t.Error("an object of a revision over the limit was applied")
	}
}

// An object the API server rejects halfway through the staged apply: the revision's
// Namespace is applied, the object in it is refused. The status names it, nothing is pruned,
// and the next good commit recovers.
func TestSyncPartialFailureMidApply(t *testing.T) {
	name := unique("partial")
	ns, fresh := name, name+"-new"
	g := newRig(t, name, overFile)
	first := g.commit(map[string]string{
		"apps/ns.yaml":  namespaceYAML(ns),
		"apps/old.yaml": configMap(ns, "old", map[string]string{"k": "v"}, nil),
	})
	r := g.reconciler()
	g.sync(r)

	g.commit(map[string]string{
		"apps/fresh.yaml": namespaceYAML(fresh),
		"apps/good.yaml":  configMap(fresh, "good", map[string]string{"k": "v"}, nil),
		"apps/bad.yaml":   configMap(fresh, "bad", map[string]string{"not a key!": "v"}, nil),
	}, "apps/old.yaml")
	st := g.syncFails(r, reconciler.ResultApplyFailed, "ConfigMap "+fresh+"/bad")
	if st.Revision != first || st.ObjectsPruned != 0 {
		t.Errorf("status = %+v, want the last good %s and nothing pruned", st, first)
	}
	if phase, _, label := namespaceState(t, fresh); phase != corev1.NamespaceActive || label != name {
		t.Errorf("Namespace %s is %s labelled %q, want it applied by the first stage", fresh, phase, label)
	}
	if getConfigMap(t, ns, "old") == nil {
		t.Error("old was pruned by a revision that failed")
	}
	if getConfigMap(t, fresh, "bad") != nil {
		t.Error("the rejected object exists")
	}

	fixed := g.commit(map[string]string{"apps/bad.yaml": configMap(fresh, "bad", map[string]string{"key": "v"}, nil)})
	g.sync(r)
	if st := g.status(); st.Revision != fixed || st.ObjectsPruned != 1 {
		t.Errorf("status = %+v, want %s applied with old pruned", st, fixed)
	}
	if getConfigMap(t, ns, "old") != nil || getConfigMap(t, fresh, "good") == nil || getConfigMap(t, fresh, "bad") == nil {
		t.Error("after the good commit: want old pruned, good and bad applied")
	}
}
