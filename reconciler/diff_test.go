package reconciler_test

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"

	"github.com/driftless-dev/driftless/reconciler"
)

// webDeployment is a Deployment that leaves most fields to the API server's defaults,
// including the protocol in its ports' list keys.
func webDeployment(ns, name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1
          ports:
            - containerPort: 8080
          env:
            - name: MODE
              value: git
`, ns, name)
}

func TestDiffReportsWhatASyncWouldChange(t *testing.T) {
	name := unique("diff")
	g := newRig(t, name, overFile)
	namespace(t, name)
	g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "1"}, nil),
		"apps/b.yaml": configMap(name, "b", map[string]string{"y": "1"}, nil),
		"apps/u.yaml": configMap(name, "u", map[string]string{"z": "1"}, nil),
		"apps/d.yaml": webDeployment(name, "d"),
		"apps/e.yaml": webDeployment(name, "e"),
	})
	r := g.reconciler()
	g.sync(r)
	// Out of band, with no reconciler running: a gains a key, e a container variable.
	kubectl(t, "-n", name, "patch", "configmap", "a", "--type=merge", "-p", `{"data":{"oob":"added"}}`)
	kubectl(t, "-n", name, "patch", "deployment", "e", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"OOB","value":"added"}]}]}}}}`)
	commit := g.commit(map[string]string{
		"apps/a.yaml": configMap(name, "a", map[string]string{"x": "2"}, nil),
		"apps/c.yaml": configMap(name, "c", map[string]string{"new": "1"}, nil),
	}, "apps/b.yaml")

	tests := []struct {
		object string
		action reconciler.Action
		diff   []string
		// readOnly: only the read diff predicts it; the dry-run's removal of foreign fields
		// stops at lists.
		readOnly bool
	}{
		{"ConfigMap " + name + "/a", reconciler.ActionUpdate, []string{"--- cluster", "+++ git@" + commit[:12], `-  oob: added`, `-  x: "1"`, `+  x: "2"`}, false},
		{"ConfigMap " + name + "/c", reconciler.ActionCreate, []string{`+  new: "1"`, "+kind: ConfigMap"}, false},
		{"Deployment.apps " + name + "/e", reconciler.ActionUpdate, []string{"-        - name: OOB", "-          value: added"}, true},
		{"ConfigMap " + name + "/b", reconciler.ActionPrune, nil, false},
	}
	reports := map[reconciler.DiffMode]*reconciler.DiffReport{}
	for _, mode := range []reconciler.DiffMode{reconciler.DiffRead, reconciler.DiffServerDryRun} {
		t.Run(string(mode), func(t *testing.T) {
			report, err := r.Diff(testCtx(t), mode)
			if err != nil {
				t.Fatalf("diff: %v", err)
			}
			reports[mode] = report
			// The read diff merged with the API server's schemas, and says what it cannot know.
			if notes := strings.Join(report.Notes, "\n"); mode == reconciler.DiffRead &&
				(strings.Contains(notes, "lists compared whole") || !strings.Contains(notes, "defaulting, mutating admission webhooks")) {
				t.Errorf("read diff notes:\n%s", notes)
			}
			// u and d are unchanged: d's defaulted fields (the ports' protocol among them)
			// are no change.
			want := 2
			for _, tc := range tests {
				if tc.readOnly && mode != reconciler.DiffRead {
					want++
				}
			}
			if report.Revision != commit || report.Unchanged != want || report.Mode != mode {
				t.Errorf("report %s revision %s with %d unchanged, want %s with %d:\n%+v", report.Mode, report.Revision, report.Unchanged, commit, want, report.Changes)
			}
			for _, tc := range tests {
				var found *reconciler.ObjectDiff
				for i := range report.Changes {
					if report.Changes[i].Object == tc.object {
						found = &report.Changes[i]
					}
				}
				if tc.readOnly && mode != reconciler.DiffRead {
					continue
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
		})
	}
	// Both modes agree on the ConfigMaps, diff for diff.
	if rd, dr := reports[reconciler.DiffRead], reports[reconciler.DiffServerDryRun]; rd != nil && dr != nil {
		byObject := map[string]reconciler.ObjectDiff{}
		for _, c := range dr.Changes {
			byObject[c.Object] = c
		}
		for _, c := range rd.Changes {
			if strings.HasPrefix(c.Object, "ConfigMap ") && byObject[c.Object] != c {
				t.Errorf("%s: read diff %+v, dry-run diff %+v", c.Object, c, byObject[c.Object])
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

// TestDiffNewKindsNamespacesAndRefusals: a revision that brings its own Namespace, CRD and
// custom resource shows them all as created, in both modes; an object that exists without the
// source's label shows as refused, as the sync would refuse it; after the sync a custom
// resource typed by the CRD's published schema is unchanged.
func TestDiffNewKindsNamespacesAndRefusals(t *testing.T) {
	name := unique("diffkinds")
	group := name + ".example.com"
	g := newRig(t, name, overFile)
	namespace(t, name+"-other")
	kubectl(t, "-n", name+"-other", "create", "configmap", "taken", "--from-literal=k=v")
	files := map[string]string{
		"apps/namespace.yaml": namespaceYAML(name),
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
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
`,
		"apps/widget.yaml": `apiVersion: ` + group + `/v1
kind: Widget
metadata:
  name: gear
  namespace: ` + name + `
spec:
  size: 3
  ports:
  - name: http
    port: 80
`,
		"apps/taken.yaml": configMap(name+"-other", "taken", map[string]string{"k": "git"}, nil),
	}
	g.commit(files)
	r := g.reconciler()
	for _, mode := range []reconciler.DiffMode{reconciler.DiffRead, reconciler.DiffServerDryRun} {
		report, err := r.Diff(testCtx(t), mode)
		if err != nil {
			t.Fatalf("diff (%s): %v", mode, err)
		}
		got := map[string]reconciler.Action{}
		for _, c := range report.Changes {
			got[c.Object] = c.Action
		}
		want := map[string]reconciler.Action{
			"Namespace " + name: reconciler.ActionCreate,
			"CustomResourceDefinition.apiextensions.k8s.io widgets." + group: reconciler.ActionCreate,
			"Widget." + group + " " + name + "/gear":                         reconciler.ActionCreate,
			"ConfigMap " + name + "-other/taken":                             reconciler.ActionAdoptionRefused,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || report.Unchanged != 0 {
			t.Errorf("diff (%s) = %v with %d unchanged, want %v", mode, got, report.Unchanged, want)
		}
	}

	// Without the refused object, the sync applies; then a person adds a port to the widget.
	delete(files, "apps/taken.yaml")
	g.commit(files, "apps/taken.yaml")
	g.sync(r)
	// The API server publishes a new CRD's schema a moment after it is established; until
	// then a diff compares without it and says so.
	disco, err := discovery.NewDiscoveryClientForConfig(reconcilerConfig)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the widget's schema is published", func() (bool, string) {
		paths, err := disco.OpenAPIV3().Paths()
		_, ok := paths["apis/"+group+"/v1"]
		return ok, fmt.Sprintf("%d paths, %v", len(paths), err)
	})
	// kubectl owns a field Git declares too (kept) and a list item Git does not (removed).
	kubectl(t, "-n", name, "patch", "widgets."+group, "gear", "--type=merge", "-p", `{"spec":{"size":3}}`)
	kubectl(t, "-n", name, "patch", "widgets."+group, "gear", "--type=json", "-p", `[{"op":"add","path":"/spec/ports/-","value":{"name":"debug","port":9000}}]`)
	report, err := r.Diff(testCtx(t), reconciler.DiffRead)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	if len(report.Changes) != 1 || report.Changes[0].Action != reconciler.ActionUpdate ||
		!strings.Contains(report.Changes[0].Diff, "-  - name: debug") || strings.Contains(report.Changes[0].Diff, "-  - name: http") {
		t.Errorf("diff after a port was added = %+v, want the added port removed and nothing else", report.Changes)
	}
	if strings.Contains(strings.Join(report.Notes, "\n"), "lists compared whole") {
		t.Errorf("the widget was compared without its schema: %v", report.Notes)
	}
}

// TestDiffShowsAnObjectAnotherSourceApplies: the sync refuses a revision that declares an
// object another source applies, and the diff says so instead of showing an update.
func TestDiffShowsAnObjectAnotherSourceApplies(t *testing.T) {
	ns, first, second := unique("diffclaim"), unique("diff-first"), unique("diff-second")
	namespace(t, ns)
	a := newRig(t, first, overFile)
	b := newRig(t, second, overFile)
	a.commit(map[string]string{"apps/shared.yaml": configMap(ns, "shared", map[string]string{"owner": "a"}, nil)})
	a.sync(a.reconciler())
	b.commit(map[string]string{"apps/shared.yaml": configMap(ns, "shared", map[string]string{"owner": "b"}, nil)})
	rb := b.reconciler()
	for _, mode := range []reconciler.DiffMode{reconciler.DiffRead, reconciler.DiffServerDryRun} {
		report, err := rb.Diff(testCtx(t), mode)
		if err != nil {
			t.Fatalf("diff (%s): %v", mode, err)
		}
		if len(report.Changes) != 1 || report.Changes[0].Action != reconciler.ActionConflict || !strings.Contains(report.Changes[0].Message, "source "+first+" applies it too") {
			t.Errorf("diff (%s) = %+v, want a conflict with %s", mode, report.Changes, first)
		}
	}
	if _, err := rb.Sync(testCtx(t)); err == nil || !strings.Contains(err.Error(), "applied by source "+first+" too") {
		t.Errorf("sync of %s: %v, want the refusal the diff predicted", second, err)
	}
}
