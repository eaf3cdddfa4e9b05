package webhook

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

const testConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: platform
    url: https://deploy@git.example.com/platform/config.git
    path: overlays/production
guard:
  protectedNamespaces: [production]
  controllerIdentities:
    usernames: [system:serviceaccount:autoscaling:cluster-autoscaler]
    groups: [platform:controllers]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
`

func newTestGuard(t testing.TB, mode v1alpha1.Mode) (*Guard, *prometheus.Registry) {
	t.Helper()
	cfg, err := v1alpha1.Decode([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Guard.Mode = mode
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(Options{Config: cfg, Clock: clocktesting.NewFakePassiveClock(now), Metrics: m, Parents: testCronJobs})
	if err != nil {
		t.Fatal(err)
	}
	return g, reg
}

// obj is an object's metadata for a request.
type obj struct {
	labels      map[string]string
	annotations map[string]string
}

func (o *obj) raw(name, ns string) runtime.RawExtension {
	if o == nil {
		return runtime.RawExtension{}
	}
	data, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns, "uid": "uid-1", "labels": o.labels, "annotations": o.annotations},
	})
	return runtime.RawExtension{Raw: data}
}

type request struct {
	user        string
	groups      []string
	op          admissionv1.Operation
	ns          string
	group       string
	resource    string
	subResource string
	name        string
	object      *obj
	oldObject   *obj
	dryRun      bool
	// rawObject and rawOldObject, when set, replace object and oldObject: whole objects for
	// the decisions that read more than metadata.
	rawObject, rawOldObject []byte
}

func (r request) build() admission.Request {
	if r.resource == "" {
		r.resource = "configmaps"
	}
	if r.name == "" {
		r.name = "payment-config"
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:         types.UID("req-1"),
		Kind:        metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
		Resource:    metav1.GroupVersionResource{Group: r.group, Version: "v1", Resource: r.resource},
		SubResource: r.subResource,
		Name:        r.name,
		Namespace:   r.ns,
		Operation:   r.op,
		UserInfo:    authenticationv1.UserInfo{Username: r.user, Groups: r.groups},
		Object:      r.object.raw(r.name, r.ns),
		OldObject:   r.oldObject.raw(r.name, r.ns),
		DryRun:      ptr.To(r.dryRun),
	}}
	if r.rawObject != nil {
		req.Object = runtime.RawExtension{Raw: r.rawObject}
	}
	if r.rawOldObject != nil {
		req.OldObject = runtime.RawExtension{Raw: r.rawOldObject}
	}
	return req
}

func breakGlassObj(reason string, until time.Time) *obj {
	return &obj{annotations: map[string]string{
		v1alpha1.AnnotationBreakGlass:      reason,
		v1alpha1.AnnotationBreakGlassUntil: until.Format(time.RFC3339),
	}}
}

func withGroup(o *obj, group string) *obj {
	o.annotations[v1alpha1.AnnotationBreakGlassGroup] = group
	return o
}

func withBy(o *obj, user string) *obj {
	o.annotations[v1alpha1.AnnotationBreakGlassBy] = user
	return o
}

var (
	bob   = []string{"developers", "system:authenticated"}
	alice = []string{"oncall", "system:authenticated"}
	owned = &obj{labels: map[string]string{v1alpha1.LabelSource: "platform"}}
)

// TestBreakGlassWritesGoBackToGit: under break-glass, a write whose field manager the
// reconciler would leave in place when the session ends (a controller's name, or a write
// through a subresource) is denied, so that nothing written under break-glass outlives it;
// kubectl's own managers, and others, are allowed.
func TestBreakGlassWritesGoBackToGit(t *testing.T) {
	g, _ := newTestGuard(t, v1alpha1.ModeEnforce)
	until := now.Add(time.Hour).Format(time.RFC3339)
	object := func(entries ...string) []byte {
		return []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"payment-config","namespace":"production",` +
			`"labels":{"driftless.dev/source":"platform"},"annotations":{"driftless.dev/break-glass":"INC-1","driftless.dev/break-glass-until":"` + until + `"},` +
			`"managedFields":[` + strings.Join(entries, ",") + `]}}`)
	}
	entry := func(manager, subresource, time string) string {
		return `{"manager":"` + manager + `","operation":"Update","apiVersion":"v1","time":"` + time + `","subresource":"` + subresource + `","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:A":{}}}}`
	}
	driftless := `{"manager":"driftless","operation":"Apply","apiVersion":"v1","time":"2026-11-26T09:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:A":{}}}}`
	controller := entry("hpa-controller", "", "2026-11-26T08:00:00Z")
	for _, c := range []struct {
		name    string
		written string
		allow   bool
	}{
		{"kubectl edit", entry("kubectl-edit", "", "2026-11-26T10:00:00Z"), true},
		{"another tool", entry("ops-tool", "", "2026-11-26T10:00:00Z"), true},
		{"a controller's name", entry("ops-controller", "", "2026-11-26T10:00:00Z"), false},
		{"a Kubernetes component's name", entry("kube-controller-manager", "", "2026-11-26T10:00:00Z"), false},
		{"through a subresource", entry("kubectl-patch", "status", "2026-11-26T10:00:00Z"), false},
		{"a controller's earlier write, unchanged", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries := []string{driftless, controller}
			if c.written != "" {
				entries = append(entries, c.written)
			}
			req := request{user: "alice", groups: alice, op: admissionv1.Update, ns: "production",
				rawObject: object(entries...), rawOldObject: object(driftless, controller)}.build()
			resp := g.Handle(t.Context(), req)
			if resp.Allowed != c.allow {
				t.Fatalf("allowed %v, want %v: %v", resp.Allowed, c.allow, resp.Result)
			}
			if !c.allow && !strings.Contains(resp.Result.Message, "whose fields go back to Git when the session ends") {
				t.Errorf("the denial does not say why: %s", resp.Result.Message)
			}
		})
	}
}

func TestDecisionTable(t *testing.T) {
	update := func(user string, groups []string, object, old *obj) request {
		return request{user: user, groups: groups, op: admissionv1.Update, ns: "production", object: object, oldObject: old}
	}
	tests := []struct {
		name   string
		req    request
		reason Reason
		allow  bool
		msg    []string
	}{
		{"reconciler", update("system:serviceaccount:driftless-system:driftless", nil, owned, owned), ReasonReconciler, true, nil},
		{"kube-system service account", update("system:serviceaccount:kube-system:deployment-controller", nil, owned, owned), ReasonKubernetes, true, nil},
		{"controller manager", update("system:kube-controller-manager", nil, owned, owned), ReasonKubernetes, true, nil},
		{"scheduler", update("system:kube-scheduler", nil, owned, owned), ReasonKubernetes, true, nil},
		{"node", update("system:node:worker-1", []string{"system:nodes"}, owned, owned), ReasonKubernetes, true, nil},
		{"configured controller user", update("system:serviceaccount:autoscaling:cluster-autoscaler", nil, owned, owned), ReasonController, true, nil},
		{"configured controller group", update("argo", []string{"platform:controllers"}, owned, owned), ReasonController, true, nil},
		{"status subresource", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status", object: owned, oldObject: owned}, ReasonStatus, true, nil},
		{"status write that relabels", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status",
			object: &obj{labels: map[string]string{v1alpha1.LabelSource: "platform", "app": "payments-db-clients"}}, oldObject: owned}, ReasonProtected, false,
			[]string{"a status write may change the status only, not labels, annotations, owner references or finalizers"}},
		{"status write that drops the source label", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status", object: &obj{}, oldObject: owned}, ReasonProtected, false, nil},
		{"status write that sets break-glass", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status",
			object: withBy(breakGlassObj("INC-1", now.Add(time.Hour)), "alice"), oldObject: &obj{}}, ReasonBreakGlassNotMember, false, nil},
		{"status write that adds a finalizer", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status",
			rawObject:    []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"payment-config","namespace":"production","finalizers":["example.com/hold"]}}`),
			rawOldObject: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"payment-config","namespace":"production"}}`)}, ReasonProtected, false, nil},
		{"status write that sets an owner", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", subResource: "status",
			rawObject:    []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"payment-config","namespace":"production","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"gone","uid":"u-1"}]}}`),
			rawOldObject: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"payment-config","namespace":"production"}}`)}, ReasonProtected, false, nil},
		{"delete of a protected Namespace under break-glass", request{user: "alice", groups: alice, op: admissionv1.Delete, resource: "namespaces", name: "production", oldObject: breakGlassObj("INC-1", now.Add(time.Hour))}, ReasonBreakGlassInvalid, false,
			[]string{"break-glass does not cover deleting a protected Namespace"}},
		{"status write in an unprotected namespace that relabels", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "sandbox", subResource: "status", object: &obj{}, oldObject: owned}, ReasonUnprotected, true, nil},
		{"connect to a node", request{user: "bob", groups: bob, op: admissionv1.Connect, resource: "nodes", subResource: "proxy", object: &obj{}}, ReasonNotGuarded, true, nil},
		{"exec in an unprotected namespace", request{user: "bob", groups: bob, op: admissionv1.Connect, ns: "sandbox", resource: "pods", subResource: "exec", object: &obj{}}, ReasonUnprotected, true, nil},
		{"reconciler execs", request{user: "system:serviceaccount:driftless-system:driftless", op: admissionv1.Connect, ns: "production", resource: "pods", subResource: "exec", object: &obj{}}, ReasonReconciler, true, nil},
		{"event", request{user: "bob", groups: bob, op: admissionv1.Create, ns: "production", resource: "events", object: &obj{}}, ReasonIgnoredResource, true, nil},
		{"lease", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", group: "coordination.k8s.io", resource: "leases", object: &obj{}, oldObject: &obj{}}, ReasonIgnoredResource, true, nil},
		{"unprotected namespace", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "sandbox", object: owned, oldObject: owned}, ReasonUnprotected, true, nil},
		{"exempt namespace even if listed nowhere", request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "kube-system", oldObject: owned}, ReasonUnprotected, true, nil},
		{"unmanaged cluster object", request{user: "bob", groups: bob, op: admissionv1.Update, resource: "clusterroles", group: "rbac.authorization.k8s.io", object: &obj{}, oldObject: &obj{}}, ReasonUnmanagedCluster, true, nil},

		{"bob execs", request{user: "bob", groups: bob, op: admissionv1.Connect, ns: "production", resource: "pods", subResource: "exec", name: "app", object: &obj{}}, ReasonConnect, false, []string{
			"driftless: bob may not connect to pods/app (subresource exec) in namespace production: namespace \"production\" is protected: exec, attach, port-forward and proxy",
			"driftless break-glass -n production pods/app --reason",
		}},
		{"bob port-forwards to a Service", request{user: "bob", groups: bob, op: admissionv1.Connect, ns: "production", resource: "services", subResource: "proxy", name: "web", object: &obj{}}, ReasonConnect, false, nil},
		{"alice execs without break-glass", request{user: "alice", groups: alice, op: admissionv1.Connect, ns: "production", resource: "pods", subResource: "attach", name: "app", object: &obj{}}, ReasonConnect, false, nil},
		{"bob resizes", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", resource: "pods", subResource: "resize", object: owned, oldObject: owned}, ReasonProtected, false, nil},
		{"bob finalizes a protected namespace", request{user: "bob", groups: bob, op: admissionv1.Update, resource: "namespaces", subResource: "finalize", name: "production", object: &obj{}, oldObject: &obj{}}, ReasonProtected, false, nil},
		{"bob updates", update("bob", bob, owned, owned), ReasonProtected, false, []string{
			"driftless: bob may not update configmaps/payment-config in namespace production: namespace \"production\" is protected",
			`Owner: source "platform", repository https://redacted@git.example.com/platform/config.git, path overlays/production.`,
			"1. Change it in Git under overlays/production",
			`2. In an incident, a member of group "oncall" may break glass for at most 2h`,
			`driftless break-glass -n production configmaps/payment-config --reason "INC-123: what and why" --for 1h`,
			"driftless.dev/break-glass=<reason> and driftless.dev/break-glass-until=<RFC 3339 expiry>",
		}},
		{"bob creates", request{user: "bob", groups: bob, op: admissionv1.Create, ns: "production", object: &obj{}}, ReasonProtected, false, []string{"bob may not create configmaps/payment-config", "no Driftless source applies this object yet"}},
		{"bob deletes", request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production", oldObject: owned}, ReasonProtected, false, []string{"bob may not delete", `source "platform"`}},
		{"bob deletes without old object", request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production"}, ReasonProtected, false, []string{"bob may not delete"}},
		{"bob scales", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", group: "apps", resource: "deployments", subResource: "scale", object: &obj{}, oldObject: &obj{}}, ReasonProtected, false, []string{"update deployments.apps/payment-config (subresource scale)"}},
		{"bob adds a debug container", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", resource: "pods", subResource: "ephemeralcontainers", object: owned, oldObject: owned}, ReasonProtected, false, nil},
		{"bob deletes the protected namespace", request{user: "bob", groups: bob, op: admissionv1.Delete, resource: "namespaces", name: "production", oldObject: &obj{}}, ReasonProtected, false, []string{"bob may not delete namespaces/production:", "driftless break-glass namespaces/production"}},
		{"bob may delete an unprotected namespace", request{user: "bob", groups: bob, op: admissionv1.Delete, resource: "namespaces", name: "sandbox", oldObject: &obj{}}, ReasonUnprotected, true, nil},
		{"bob changes a managed cluster object", request{user: "bob", groups: bob, op: admissionv1.Update, resource: "clusterroles", group: "rbac.authorization.k8s.io", object: &obj{}, oldObject: owned}, ReasonManagedCluster, false, []string{"carries driftless.dev/source=platform", "bob may not update clusterroles.rbac.authorization.k8s.io/payment-config:"}},
		{"unknown source", update("bob", bob, &obj{labels: map[string]string{v1alpha1.LabelSource: "other"}}, &obj{}), ReasonProtected, false, []string{`source "other" (no such source found)`}},

		{"alice with valid break-glass", update("alice", alice, breakGlassObj("INC-1", now.Add(time.Hour)), owned), ReasonBreakGlass, true, nil},
		{"alice at the maximum", update("alice", alice, breakGlassObj("INC-1", now.Add(2*time.Hour)), owned), ReasonBreakGlass, true, nil},
		{"alice beyond the maximum", update("alice", alice, breakGlassObj("INC-1", now.Add(2*time.Hour+time.Second)), owned), ReasonBreakGlassInvalid, false, []string{"more than the maximum of 2h ahead", "latest allowed now: 2026-11-26T12:00:00Z"}},
		{"alice expired", update("alice", alice, breakGlassObj("INC-1", now), owned), ReasonBreakGlassInvalid, false, []string{"expired at 2026-11-26T10:00:00Z"}},
		{"alice without reason", update("alice", alice, breakGlassObj("  ", now.Add(time.Hour)), owned), ReasonBreakGlassInvalid, false, []string{"needs a reason"}},
		{"alice without expiry", update("alice", alice, &obj{annotations: map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1"}}, owned), ReasonBreakGlassInvalid, false, []string{"needs an expiry"}},
		{"alice with a bad expiry", update("alice", alice, &obj{annotations: map[string]string{v1alpha1.AnnotationBreakGlass: "INC-1", v1alpha1.AnnotationBreakGlassUntil: "tomorrow"}}, owned), ReasonBreakGlassInvalid, false, []string{`"tomorrow" is not an RFC 3339 time`}},
		{"alice records herself", update("alice", alice, withBy(breakGlassObj("INC-1", now.Add(time.Hour)), "alice"), owned), ReasonBreakGlass, true, nil},
		{"alice may not record someone else", update("alice", alice, withBy(breakGlassObj("INC-1", now.Add(time.Hour)), "carol"), owned), ReasonBreakGlassInvalid, false, []string{`driftless.dev/break-glass-by="carol" must name the requester, alice`}},
		{"a second on-call member changes alice's break-glass object", update("dave", alice, withBy(breakGlassObj("INC-1", now.Add(time.Hour)), "alice"), withBy(breakGlassObj("INC-1", now.Add(time.Hour)), "alice")), ReasonBreakGlass, true, nil},
		{"alice without break-glass", update("alice", alice, owned, owned), ReasonProtected, false, []string{"alice may not update"}},
		{"alice may not create under break-glass", request{user: "alice", groups: alice, op: admissionv1.Create, ns: "production", object: breakGlassObj("INC-1", now.Add(time.Hour))}, ReasonBreakGlassCreate, false, []string{"break-glass covers changes to objects that exist", "add a new object in Git"}},
		{"alice records her group", update("alice", alice, withGroup(breakGlassObj("INC-1", now.Add(time.Hour)), "oncall"), owned), ReasonBreakGlass, true, nil},
		{"alice may not claim a group she is not in", update("alice", alice, withGroup(breakGlassObj("INC-1", now.Add(time.Hour)), "sre"), owned), ReasonBreakGlassInvalid, false, []string{`driftless.dev/break-glass-group="sre" must name a break-glass group alice is in`}},
		{"alice deletes under break-glass", request{user: "alice", groups: alice, op: admissionv1.Delete, ns: "production", oldObject: breakGlassObj("INC-1", now.Add(time.Hour))}, ReasonBreakGlass, true, nil},
		{"alice ends break-glass early", update("alice", alice, owned, breakGlassObj("INC-1", now.Add(time.Hour))), ReasonBreakGlass, true, nil},
		{"alice may not end an expired break-glass", update("alice", alice, owned, breakGlassObj("INC-1", now.Add(-time.Minute))), ReasonProtected, false, nil},
		{"bob sets break-glass", update("bob", bob, breakGlassObj("INC-1", now.Add(time.Hour)), owned), ReasonBreakGlassNotMember, false, []string{"bob sets break-glass annotations but is not in a break-glass group (groups: oncall)"}},
		{"bob changes an object under alice's break-glass", update("bob", bob, breakGlassObj("INC-1", now.Add(time.Hour)), breakGlassObj("INC-1", now.Add(time.Hour))), ReasonProtected, false, nil},
		{"bob's dry-run is decided the same", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned, dryRun: true}, ReasonProtected, false, []string{"bob may not update"}},

		{"bob restarts a Deployment", restart("deployments", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z"))), ReasonRolloutRestart, true, nil},
		{"bob restarts a StatefulSet again", restart("statefulsets", deployment(restarted("2026-11-25T09:00:00Z")), deployment(restarted("2026-11-26T10:00:00Z"))), ReasonRolloutRestart, true, nil},
		{"bob restarts a DaemonSet", restart("daemonsets", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z"))), ReasonRolloutRestart, true, nil},
		{"bob restarts and adds an annotation", restart("deployments", deployment(nil), deployment(func(d map[string]any) {
			restarted("2026-11-26T10:00:00Z")(d)
			setPath(d, "yes", "spec", "template", "metadata", "annotations", "debug")
		})), ReasonProtected, false, []string{"may change only spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]; this request changes more"}},
		{"bob restarts and scales", restart("deployments", deployment(nil), deployment(func(d map[string]any) {
			restarted("2026-11-26T10:00:00Z")(d)
			setPath(d, int64(5), "spec", "replicas")
		})), ReasonProtected, false, []string{"changes more"}},
		{"bob restarts and labels the Deployment", restart("deployments", deployment(nil), deployment(func(d map[string]any) {
			restarted("2026-11-26T10:00:00Z")(d)
			setPath(d, "x", "metadata", "labels", "team")
		})), ReasonProtected, false, []string{"changes more"}},
		{"bob sets the same restartedAt and an image", restart("deployments", deployment(restarted("2026-11-26T10:00:00Z")), deployment(func(d map[string]any) {
			restarted("2026-11-26T10:00:00Z")(d)
			setPath(d, []any{map[string]any{"name": "app", "image": "evil:latest"}}, "spec", "template", "spec", "containers")
		})), ReasonProtected, false, nil},
		{"bob removes restartedAt", restart("deployments", deployment(restarted("2026-11-26T10:00:00Z")), deployment(nil)), ReasonProtected, false, nil},
		{"bob restarts a ReplicaSet", restart("replicasets", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z"))), ReasonProtected, false, nil},
		{"bob restarts the scale subresource", func() request {
			r := restart("deployments", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z")))
			r.subResource = "scale"
			return r
		}(), ReasonProtected, false, nil},

		{"bob deletes a pod a ReplicaSet controls", deletePod(pod(nil, controlledBy("apps/v1", "ReplicaSet", "web-7c9"))), ReasonControlledPodDelete, true, nil},
		{"bob deletes a pod a StatefulSet controls", deletePod(pod(nil, controlledBy("apps/v1", "StatefulSet", "db"))), ReasonControlledPodDelete, true, nil},
		{"bob deletes a pod a DaemonSet controls", deletePod(pod(nil, controlledBy("apps/v1", "DaemonSet", "agent"))), ReasonControlledPodDelete, true, nil},
		{"bob deletes a pod a Job controls", deletePod(pod(nil, controlledBy("batch/v1", "Job", "report-1"))), ReasonControlledPodDelete, true, nil},
		{"bob deletes a pod without owner", deletePod(pod(nil)), ReasonProtected, false, []string{"bob may not delete pods/", "this pod has no controller"}},
		{"bob deletes a pod with an owner that is not its controller", deletePod(pod(nil, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u"})), ReasonProtected, false, []string{"this pod has no controller"}},
		{"bob deletes a pod another kind controls", deletePod(pod(nil, controlledBy("example.com/v1", "Widget", "w"))), ReasonProtected, false, []string{"this pod's controller is a Widget"}},
		{"bob deletes a pod applied from Git", deletePod(pod(map[string]string{v1alpha1.LabelSource: "platform"}, controlledBy("apps/v1", "ReplicaSet", "web"))), ReasonProtected, false, []string{"this pod is applied from Git (source platform)"}},
		{"bob deletes a pod without the old object", request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production", resource: "pods", name: "web-1"}, ReasonProtected, false, nil},

		{"bob creates a Job from a Git CronJob", createJob(job(gitCronJob, cronJobTemplate("nightly"))), ReasonJobFromCronJob, true, nil},
		{"bob deletes a Job made from a Git CronJob", deleteJob(job(gitCronJob, cronJobTemplate("nightly"))), ReasonJobFromCronJob, true, nil},
		{"bob creates a Job from a CronJob not in Git", createJob(job(manualCronJob, cronJobTemplate("adhoc"))), ReasonProtected, false, []string{"cronjobs/adhoc is not applied from Git"}},
		{"bob creates a free-standing Job", createJob(job(nil, cronJobTemplate("nightly"))), ReasonProtected, false, []string{"bob may not create jobs.batch/"}},
		{"bob creates a manual Job with no CronJob", createJob(job(nil, cronJobTemplate("nightly"), manual)), ReasonProtected, false, []string{"this Job has no CronJob as its controller"}},
		{"bob creates a Job from a Git CronJob with another image", createJob(job(gitCronJob, cronJobTemplate("other"))), ReasonProtected, false, []string{"the Job's pod template spec differs from the CronJob's"}},
		{"bob creates a Job naming a Git CronJob by a stale uid", createJob(job(cronOwner("nightly", "uid-old"), cronJobTemplate("nightly"))), ReasonProtected, false, []string{"is not the CronJob the Job names"}},
		{"bob creates a Job from a CronJob that does not exist", createJob(job(cronOwner("gone", "uid-gone"), cronJobTemplate("nightly"))), ReasonProtected, false, []string{"could not read cronjobs/gone"}},
		{"bob creates a Job from a Git CronJob claiming Git", createJob(job(gitCronJob, cronJobTemplate("nightly"), func(m map[string]any) {
			setPath(m, "platform", "metadata", "labels", v1alpha1.LabelSource)
		})), ReasonProtected, false, []string{"this Job carries driftless.dev/source=platform"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, reg := newTestGuard(t, v1alpha1.ModeEnforce)
			resp := g.Handle(t.Context(), tt.req.build())
			if resp.Allowed != tt.allow {
				t.Fatalf("allowed = %v, want %v; message: %s", resp.Allowed, tt.allow, resp.Result.Message)
			}
			result := ResultAllowed
			if !tt.allow {
				result = ResultDenied
				if resp.Result.Code != 403 {
					t.Errorf("denial code = %d, want 403", resp.Result.Code)
				}
			}
			if got := testutil.ToFloat64(g.metrics.decisions.WithLabelValues(string(result), string(tt.reason))); got != 1 {
				t.Errorf("decisions{result=%s,reason=%s} = %v, want 1 (reasons are in the metric registry %v)", result, tt.reason, got, gatherNames(t, reg))
			}
			for _, want := range tt.msg {
				if !strings.Contains(resp.Result.Message, want) {
					t.Errorf("message does not contain %q:\n%s", want, resp.Result.Message)
				}
			}
			if strings.Contains(resp.Result.Message, "deploy@") {
				t.Errorf("message leaks the repository user:\n%s", resp.Result.Message)
			}
		})
	}
}

func gatherNames(t *testing.T, reg *prometheus.Registry) []string {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, mf.GetName()+"{"+strings.Join(labels, ",")+"}")
		}
	}
	return out
}

func TestModes(t *testing.T) {
	req := request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build()
	tests := []struct {
		mode     v1alpha1.Mode
		allowed  bool
		result   Result
		warnings bool
	}{
		{v1alpha1.ModeEnforce, false, ResultDenied, false},
		{v1alpha1.ModeWarn, true, ResultWarned, true},
		{v1alpha1.ModeDryRun, true, ResultRecorded, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			g, _ := newTestGuard(t, tt.mode)
			resp := g.Handle(t.Context(), req)
			if resp.Allowed != tt.allowed {
				t.Errorf("allowed = %v, want %v", resp.Allowed, tt.allowed)
			}
			if (len(resp.Warnings) > 0) != tt.warnings {
				t.Errorf("warnings = %q", resp.Warnings)
			}
			for _, w := range resp.Warnings {
				if strings.Contains(w, "\n") || len(w) > 256 {
					t.Errorf("warning is not one short line: %q", w)
				}
			}
			if got := testutil.ToFloat64(g.metrics.decisions.WithLabelValues(string(tt.result), string(ReasonProtected))); got != 1 {
				t.Errorf("decisions{result=%s} = %v, want 1", tt.result, got)
			}
		})
	}
}

func TestBreakGlassFollowsTheClock(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktesting.NewFakePassiveClock(now)
	g, err := NewGuard(Options{Config: cfg, Clock: clock, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	annotated := breakGlassObj("INC-9", now.Add(30*time.Minute))
	req := request{user: "alice", groups: alice, op: admissionv1.Update, ns: "production", object: annotated, oldObject: annotated}.build()
	if resp := g.Handle(t.Context(), req); !resp.Allowed {
		t.Fatalf("denied within the break-glass: %s", resp.Result.Message)
	}
	clock.SetTime(now.Add(30 * time.Minute))
	if resp := g.Handle(t.Context(), req); resp.Allowed {
		t.Fatal("allowed at the expiry")
	}
	if got := testutil.ToFloat64(m.breakGlass.WithLabelValues("oncall")); got != 1 {
		t.Errorf("break-glass uses by alice = %v, want 1", got)
	}
}

// Malformed requests are rejected with 400 in every mode. Request-level problems are found
// everywhere; an object is decoded only where the decision needs it (protected scope), so
// object-level problems are tested there.
func TestMalformedRequestsAreDenied(t *testing.T) {
	g, _ := newTestGuard(t, v1alpha1.ModeWarn)
	good := request{user: "alice", groups: alice, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}
	tests := map[string]func(*admission.Request){
		"unprotected, no uid": func(r *admission.Request) { r.UID = ""; r.Namespace = "sandbox" },
		"unprotected, update without old": func(r *admission.Request) {
			r.OldObject = runtime.RawExtension{}
			r.Namespace = "sandbox"
		},
		"no uid":             func(r *admission.Request) { r.UID = "" },
		"no resource":        func(r *admission.Request) { r.Resource = metav1.GroupVersionResource{} },
		"unknown operation":  func(r *admission.Request) { r.Operation = "PATCH" },
		"update without obj": func(r *admission.Request) { r.Object = runtime.RawExtension{} },
		"update without old": func(r *admission.Request) { r.OldObject = runtime.RawExtension{} },
		"object not json":    func(r *admission.Request) { r.Object.Raw = []byte("{not json") },
		"metadata wrong type": func(r *admission.Request) {
			r.Object.Raw = []byte(`{"metadata":{"labels":["a"]}}`)
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			req := good.build()
			mutate(&req)
			resp := g.Handle(t.Context(), req)
			if resp.Allowed {
				t.Fatal("malformed request allowed (warn mode must not allow it either)")
			}
			if resp.Result.Code != 400 {
				t.Errorf("code = %d, want 400", resp.Result.Code)
			}
		})
	}
}

func TestGuardWithoutConfigFailsClosed(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewGuard(Options{Metrics: m}); err == nil {
		t.Fatal("NewGuard accepted a nil config")
	}
	var g Guard
	g.metrics = m
	resp := g.Handle(t.Context(), request{user: "bob", op: admissionv1.Create, ns: "sandbox", object: &obj{}}.build())
	if resp.Allowed || resp.Result.Code != 500 {
		t.Fatalf("guard without rules answered allowed=%v code=%d", resp.Allowed, resp.Result.Code)
	}
}

func TestDenialMessageGolden(t *testing.T) {
	g, _ := newTestGuard(t, v1alpha1.ModeEnforce)
	resp := g.Handle(t.Context(), request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build())
	golden := filepath.Join("testdata", "denial.golden.txt")
	if *update {
		if err := os.WriteFile(golden, []byte(resp.Result.Message+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if resp.Result.Message+"\n" != string(want) {
		t.Errorf("denial message differs from %s (go test -update to accept):\n%s", golden, resp.Result.Message)
	}
}

// TestDenialAdviceWorks checks that each denial's break-glass advice can be followed as
// printed: creates get none (break-glass cannot create), an unnamed object a placeholder.
func TestDenialAdviceWorks(t *testing.T) {
	g, _ := newTestGuard(t, v1alpha1.ModeEnforce)
	for _, tc := range []struct {
		name      string
		req       admission.Request
		want, not []string
	}{
		{"update names the object", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", object: owned, oldObject: owned}.build(),
			[]string{"driftless break-glass -n production configmaps/payment-config --reason"}, nil},
		{"create offers no break-glass", request{user: "bob", groups: bob, op: admissionv1.Create, ns: "production", object: &obj{}}.build(),
			[]string{"break-glass covers only objects that exist"}, []string{"driftless break-glass"}},
		{"group-qualified resource", request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", group: "apps", resource: "deployments", object: owned, oldObject: owned}.build(),
			[]string{"driftless break-glass -n production deployments.apps/payment-config --reason"}, nil},
		{"an object without a name", func() admission.Request {
			r := request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production"}.build()
			r.Name, r.OldObject.Raw = "", nil
			return r
		}(), []string{"configmaps/NAME --reason", "one object at a time"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := g.Handle(t.Context(), tc.req)
			if resp.Allowed {
				t.Fatal("allowed, want denied")
			}
			for _, w := range tc.want {
				if !strings.Contains(resp.Result.Message, w) {
					t.Errorf("message does not contain %q:\n%s", w, resp.Result.Message)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(resp.Result.Message, n) {
					t.Errorf("message contains %q:\n%s", n, resp.Result.Message)
				}
			}
		})
	}
}
