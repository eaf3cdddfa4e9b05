package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

// cronJobReader serves CronJobs by name, as the guard's client would read them.
type cronJobReader map[string]*unstructured.Unstructured

func (c cronJobReader) ParentMeta(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	return nil, fmt.Errorf("%s %s/%s not found", gvr.Resource, namespace, name)
}

func (c cronJobReader) Object(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	u, ok := c[name]
	if !ok || gvr != cronJobsResource || namespace != "production" {
		return nil, fmt.Errorf("%s %s/%s not found", gvr.Resource, namespace, name)
	}
	return u.DeepCopy(), nil
}

// cronJobTemplate is the job template of a CronJob; "other" runs another image.
func cronJobTemplate(name string) map[string]any {
	image := "registry.example.com/report:2.0"
	if name == "other" {
		image = "registry.example.com/shell:latest"
	}
	return map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "report"}},
		"spec": map[string]any{
			"backoffLimit": int64(2),
			"template": map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{"team": "payments"}},
				"spec": map[string]any{
					"restartPolicy": "Never",
					"containers":    []any{map[string]any{"name": "report", "image": image}},
				},
			},
		},
	}
}

func cronJob(name, uid string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1", "kind": "CronJob",
		"metadata": map[string]any{"name": name, "namespace": "production", "uid": uid},
		"spec":     map[string]any{"schedule": "0 3 * * *", "jobTemplate": cronJobTemplate(name)},
	}}
	u.SetLabels(labels)
	return u
}

// testCronJobs holds a CronJob applied from Git (nightly) and one created by hand (adhoc).
var testCronJobs = cronJobReader{
	"nightly": cronJob("nightly", "uid-nightly", map[string]string{v1alpha1.LabelSource: "platform"}),
	"adhoc":   cronJob("adhoc", "uid-adhoc", nil),
}

func cronOwner(name, uid string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: name, UID: types.UID(uid), Controller: ptr.To(true)}
}

var (
	gitCronJob    = cronOwner("nightly", "uid-nightly")
	manualCronJob = cronOwner("adhoc", "uid-adhoc")
)

// manual marks a Job as created by kubectl create job --from.
func manual(m map[string]any) {
	setPath(m, "manual", "metadata", "annotations", AnnotationInstantiate)
}

// job is a Job as kubectl create job --from=cronjob builds it from tmpl, after the API
// server's defaulting added its labels; owner nil makes a free-standing Job.
func job(owner *metav1.OwnerReference, tmpl map[string]any, mutate ...func(map[string]any)) []byte {
	m := map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": "report-manual", "namespace": "production", "uid": "uid-job"},
		"spec":     runtime.DeepCopyJSONValue(tmpl["spec"]),
	}
	setPath(m, "report-manual", "spec", "template", "metadata", "labels", "batch.kubernetes.io/job-name")
	if owner != nil {
		manual(m)
		ref, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(owner)
		setPath(m, []any{ref}, "metadata", "ownerReferences")
	}
	for _, f := range mutate {
		f(m)
	}
	return mustJSON(m)
}

func createJob(raw []byte) request {
	return request{user: "bob", groups: bob, op: admissionv1.Create, ns: "production", group: "batch", resource: "jobs", name: "report-manual", rawObject: raw}
}

func deleteJob(raw []byte) request {
	return request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production", group: "batch", resource: "jobs", name: "report-manual", rawOldObject: raw}
}

// deployment is a workload as the API server sends it, changed by mutate.
func deployment(mutate func(map[string]any)) []byte {
	m := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{
			"name": "web", "namespace": "production", "uid": "uid-web", "resourceVersion": "41", "generation": int64(3),
			"labels": map[string]any{v1alpha1.LabelSource: "platform"},
		},
		"spec": map[string]any{
			"replicas": int64(2),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "web:1"}}},
			},
		},
		"status": map[string]any{"replicas": int64(2)},
	}
	if mutate != nil {
		mutate(m)
	}
	return mustJSON(m)
}

// restarted sets restartedAt as kubectl rollout restart does, and what the API server
// changes along with it.
func restarted(at string) func(map[string]any) {
	return func(m map[string]any) {
		setPath(m, at, "spec", "template", "metadata", "annotations", AnnotationRestartedAt)
		setPath(m, int64(4), "metadata", "generation")
		setPath(m, []any{map[string]any{"manager": "kubectl-rollout", "operation": "Update"}}, "metadata", "managedFields")
	}
}

func restart(resource string, old, updated []byte) request {
	return request{user: "bob", groups: bob, op: admissionv1.Update, ns: "production", group: "apps", resource: resource, name: "web", rawObject: updated, rawOldObject: old}
}

func pod(labels map[string]string, owners ...metav1.OwnerReference) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": metav1.ObjectMeta{Name: "web-1", Namespace: "production", UID: "uid-pod", Labels: labels, OwnerReferences: owners},
	})
}

func controlledBy(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}
}

func deletePod(raw []byte) request {
	return request{user: "bob", groups: bob, op: admissionv1.Delete, ns: "production", resource: "pods", name: "web-1", rawOldObject: raw}
}

func setPath(m map[string]any, v any, path ...string) {
	if err := unstructured.SetNestedField(m, runtime.DeepCopyJSONValue(v), path...); err != nil {
		panic(err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// eventRecorder keeps the Events a guard records.
type eventRecorder struct {
	mu     sync.Mutex
	events []string
}

func (e *eventRecorder) Eventf(regarding runtime.Object, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, eventtype+" "+reason+" "+fmt.Sprintf(note, args...))
}

// TestSafeOperationsFollowTheConfiguration shows that each safe operation can be switched off
// and restricted to groups, and that an allowed one is recorded: a metric with a fixed
// reason and an Event naming the user.
func TestSafeOperationsFollowTheConfiguration(t *testing.T) {
	requests := map[SafeOperation]request{
		SafeRolloutRestart:      restart("deployments", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z"))),
		SafeControlledPodDelete: deletePod(pod(nil, controlledBy("apps/v1", "ReplicaSet", "web-7c9"))),
		SafeJobFromCronJob:      createJob(job(gitCronJob, cronJobTemplate("nightly"))),
	}
	fields := map[SafeOperation]string{SafeRolloutRestart: "rolloutRestart", SafeControlledPodDelete: "deleteControlledPods", SafeJobFromCronJob: "jobFromCronJob"}
	for op, req := range requests {
		for _, tc := range []struct {
			name     string
			settings string
			user     string
			groups   []string
			allowed  bool
			message  string
		}{
			{"on by default", "", "bob", bob, true, ""},
			{"switched off", "{enabled: false}", "bob", bob, false, "a " + string(op) + " is switched off in this cluster: guard.safeOperations." + fields[op] + ".enabled"},
			{"restricted, not a member", "{groups: [oncall]}", "bob", bob, false, `a ` + string(op) + ` is allowed only to group "oncall"`},
			{"restricted, member", "{groups: [oncall]}", "alice", alice, true, ""},
		} {
			t.Run(string(op)+"/"+tc.name, func(t *testing.T) {
				cfgText := testConfig
				if tc.settings != "" {
					cfgText += "  safeOperations:\n    " + fields[op] + ": " + tc.settings + "\n"
				}
				cfg, err := v1alpha1.Decode([]byte(cfgText))
				if err != nil {
					t.Fatal(err)
				}
				m, err := NewMetrics(prometheus.NewRegistry())
				if err != nil {
					t.Fatal(err)
				}
				rec := &eventRecorder{}
				g, err := NewGuard(Options{Config: cfg, Clock: clocktesting.NewFakePassiveClock(now), Metrics: m, Parents: testCronJobs, Recorder: rec})
				if err != nil {
					t.Fatal(err)
				}
				req.user, req.groups = tc.user, tc.groups
				resp := g.Handle(t.Context(), req.build())
				if resp.Allowed != tc.allowed {
					t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tc.allowed, resp.Result.Message)
				}
				if !tc.allowed {
					if !strings.Contains(resp.Result.Message, tc.message) {
						t.Errorf("message does not say %q:\n%s", tc.message, resp.Result.Message)
					}
					if got := testutil.ToFloat64(m.decisions.WithLabelValues(string(ResultDenied), string(ReasonProtected))); got != 1 {
						t.Errorf("denials = %v, want 1", got)
					}
					return
				}
				if got := testutil.ToFloat64(m.decisions.WithLabelValues(string(ResultAllowed), string(op.reason()))); got != 1 {
					t.Errorf("decisions{allowed,%s} = %v, want 1", op.reason(), got)
				}
				if len(rec.events) != 1 || !strings.HasPrefix(rec.events[0], "Normal "+EventSafeOperation+" safe operation: "+tc.user+" may ") {
					t.Errorf("events = %q, want one %s naming %s", rec.events, EventSafeOperation, tc.user)
				}
			})
		}
	}
}

// TestPolicyDeniedSafeOperation shows that the admission policy still applies to a safe
// operation: a restart of a Deployment the policy rejects is denied and recorded as a policy
// violation, not as a safe operation.
func TestPolicyDeniedSafeOperation(t *testing.T) {
	dir := t.TempDir()
	rule := "package main\n\ndeny contains msg if {\n\tinput.kind == \"Deployment\"\n\tnot input.metadata.labels.team\n\tmsg := \"Deployment has no team label\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "team.rego"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	engine := policy.New()
	if err := engine.Load(t.Context(), policy.Options{DisableLibrary: true, Paths: []string{dir}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := v1alpha1.Decode([]byte(policyConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := &eventRecorder{}
	g, err := NewGuard(Options{Config: cfg, Clock: clocktesting.NewFakePassiveClock(now), Metrics: m, Policy: engine, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	resp := g.Handle(t.Context(), restart("deployments", deployment(nil), deployment(restarted("2026-11-26T10:00:00Z"))).build())
	if resp.Allowed || !strings.Contains(resp.Result.Message, "Deployment has no team label") {
		t.Fatalf("allowed = %v, want a policy denial: %s", resp.Allowed, resp.Result.Message)
	}
	if len(rec.events) != 1 || !strings.Contains(rec.events[0], EventPolicyDenied) {
		t.Errorf("events = %q, want one %s", rec.events, EventPolicyDenied)
	}
}
