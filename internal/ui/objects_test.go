package ui

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/reconciler"
)

// liveObject is a Deployment as the API server returns it after Driftless applied it and
// kubectl edit changed a data key and added a container, while the controller manager wrote
// an annotation.
const liveObject = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: production
  labels: {driftless.dev/source: payments}
  annotations:
    driftless.dev/revision: 0123456789abcdef0123456789abcdef01234567
    deployment.kubernetes.io/revision: "2"
  managedFields:
  - manager: driftless
    operation: Apply
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata: {f:labels: {f:driftless.dev/source: {}}, f:annotations: {f:driftless.dev/revision: {}}}
      f:spec:
        f:replicas: {}
        f:template: {f:spec: {f:containers: {'k:{"name":"app"}': {.: {}, f:name: {}, f:image: {}}}}}
  - manager: kubectl-edit
    operation: Update
    apiVersion: apps/v1
    time: "2026-01-01T10:00:00Z"
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        f:paused: {}
        f:template: {f:spec: {f:containers: {'k:{"name":"debug"}': {.: {}, f:name: {}, f:image: {}}}}}
  - manager: kube-controller-manager
    operation: Update
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata: {f:annotations: {f:deployment.kubernetes.io/revision: {}}}
  - manager: kube-controller-manager
    operation: Update
    subresource: status
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1: {f:status: {f:replicas: {}}}
spec:
  replicas: 3
  paused: true
  template:
    spec:
      containers:
      - {name: app, image: registry.example.com/app:1}
      - {name: debug, image: busybox}
status: {replicas: 3}
`

// TestObjectDiff: the diff shows what others wrote, the writers name their fields, and a
// person's tool makes the object "changed outside Git" while a controller does not.
func TestObjectDiff(t *testing.T) {
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(liveObject), &u.Object); err != nil {
		t.Fatal(err)
	}
	o := describeObject(&u, "0123456789abcdef0123456789abcdef01234567", nil, time.Now())
	if o.State != StateChanged {
		t.Errorf("state %q, want %q", o.State, StateChanged)
	}
	for _, want := range []string{"+  paused: true", "+      - image: busybox", "+        name: debug", `+    deployment.kubernetes.io/revision: "2"`, "--- applied by driftless at 0123456789ab", "+++ live"} {
		if !strings.Contains(o.Diff, want) {
			t.Errorf("the diff lacks %q:\n%s", want, o.Diff)
		}
	}
	for _, line := range strings.Split(o.Diff, "\n") {
		if strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "---") {
			t.Errorf("the diff removes a line; it should only add what others wrote: %q", line)
		}
	}
	if strings.Contains(o.Diff, "replicas: 3\n+") || strings.Contains(o.Diff, "status:") {
		t.Errorf("the diff shows Driftless's own fields or the status:\n%s", o.Diff)
	}
	if len(o.Writers) != 2 || o.Writers[0].Manager != "kube-controller-manager" || o.Writers[1].Manager != "kubectl-edit" {
		t.Fatalf("writers %+v, want kube-controller-manager and kubectl-edit", o.Writers)
	}
	if o.Writers[0].Person || !o.Writers[1].Person {
		t.Errorf("writers %+v: kubectl-edit is a person's tool, kube-controller-manager is not", o.Writers)
	}
	if got := strings.Join(o.Writers[1].Fields, " "); !strings.Contains(got, ".spec.paused") || !strings.Contains(got, `[name="debug"]`) {
		t.Errorf("kubectl-edit's fields %q, want .spec.paused and the debug container", got)
	}

	// Without the person's change, only the controller wrote: in sync.
	mf := u.GetManagedFields()
	u.SetManagedFields(append(mf[:1:1], mf[2:]...))
	unstructured.RemoveNestedField(u.Object, "spec", "paused")
	if o := describeObject(&u, "0123456789abcdef0123456789abcdef01234567", nil, time.Now()); o.State != StateInSync {
		t.Errorf("state %q with only a controller's write, want %q", o.State, StateInSync)
	}
	if o := describeObject(&u, "fedcba9876543210fedcba9876543210fedcba98", nil, time.Now()); o.State != StateBehind {
		t.Errorf("state %q at another revision, want %q", o.State, StateBehind)
	}
	held := map[string]*reconciler.BreakGlassObject{"Deployment.apps production/web": {Object: "Deployment.apps production/web"}}
	if o := describeObject(&u, "", held, time.Now()); o.State != StateBreakGlass || o.BreakGlass == nil {
		t.Errorf("state %q for an object the status holds under break-glass, want %q", o.State, StateBreakGlass)
	}
}
