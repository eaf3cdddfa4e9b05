package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// safeOpsConfig runs one source from the loopback Git server, synced every minute of its
// own fake clock.
const safeOpsConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: %s
    url: %s
    path: apps
    interval: 1m
guard:
  protectedNamespaces: [production]
`

// safeOpsRepo is what Git declares in production: a Deployment, an autoscaled Deployment
// with its HorizontalPodAutoscaler, a CronJob and a bare Pod.
const safeOpsRepo = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: payment-gateway
  namespace: production
spec:
  replicas: 2
  selector:
    matchLabels: {app: payment-gateway}
  template:
    metadata:
      labels: {app: payment-gateway}
    spec:
      containers:
        - name: app
          image: registry.example.com/payment-gateway:1.4.2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: safeops-scaled
  namespace: production
spec:
  replicas: 2
  selector:
    matchLabels: {app: safeops-scaled}
  template:
    metadata:
      labels: {app: safeops-scaled}
    spec:
      containers:
        - name: app
          image: registry.example.com/api:2.0
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: safeops-scaled
  namespace: production
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: safeops-scaled}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: safeops-report
  namespace: production
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: registry.example.com/report:1.0
---
apiVersion: v1
kind: Pod
metadata:
  name: safeops-static
  namespace: production
spec:
  containers:
    - name: app
      image: registry.example.com/static:1.0
`

// as returns admin's kubectl arguments to act as a Kubernetes controller, which the guard
// never sees (its requests are skipped by matchConditions).
func as(controller string, args ...string) []string {
	return append([]string{"--as", "system:serviceaccount:kube-system:" + controller}, args...)
}

// TestSafeOperations follows bob through the day-2 operations the guard allows without
// break-glass, each recorded, and their near misses, which it denies; and shows that the
// reconciler undoes neither a rollout restart nor the autoscaler's scaling. The shared guard
// decides; a second `driftless run` with its own fake clock reconciles the source.
func TestSafeOperations(t *testing.T) {
	ctx := t.Context()
	const source = "safeops"
	installConfig(t)
	git := gitserver.New(t)
	repo := git.CreateRepo(t, source+".git")
	commit := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{Message: "Payment gateway, API, report", Files: map[string]string{"apps/all.yaml": safeOpsRepo}})

	srv, err := inprocess.New(cp, fmt.Sprintf(safeOpsConfig, source, git.RepoURL(source+".git")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	if err := srv.Start(); err != nil {
		t.Fatalf("start driftless run: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Stop()
		// The reconciler's identity passes the guard; nothing is left in production. The
		// test's context is done by now.
		ctx := context.WithoutCancel(t.Context())
		for _, obj := range []string{"deployment/payment-gateway", "deployment/safeops-scaled", "hpa/safeops-scaled", "cronjob/safeops-report",
			"cronjob/safeops-handmade", "pod/safeops-static", "pod/safeops-loose", "replicaset/payment-gateway-7c9"} {
			_ = cp.Reconciler.Kubectl(ctx, "delete", "-n", "production", obj, "--ignore-not-found", "--wait=false")
		}
		admin, err := cp.Admin.Clientset()
		if err != nil {
			return
		}
		_ = admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Delete(ctx, reconciler.BreakGlassConfigMapName(source), metav1.DeleteOptions{})
		// The source's status and inventory live in its GitSource.
		_ = cp.Reconciler.Kubectl(ctx, "delete", "gitsource", "-n", v1alpha1.DefaultNamespace, source, "--ignore-not-found")
	})
	client, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	waitSourceStatus(t, client, source, func(st reconciler.Status) bool { return st.Revision == commit && st.Result == reconciler.ResultApplied })

	// recorded checks that the guard counted one more decision with reason and wrote a
	// SafeOperation Event about name naming bob.
	recorded := func(t *testing.T, before map[string]float64, reason webhook.Reason, name string) {
		t.Helper()
		after, err := guard.Decisions()
		if err != nil {
			t.Fatal(err)
		}
		// At least one: the API server may call admission more than once for a request.
		key := string(webhook.ResultAllowed) + "/" + string(reason)
		if after[key] <= before[key] {
			t.Errorf("driftless_guard_decisions_total{%s} = %v, want more than %v", key, after[key], before[key])
		}
		if err := waitForEvent(ctx, name, webhook.EventSafeOperation, "safe operation: bob may "); err != nil {
			t.Error(err)
		}
	}
	decisions := func(t *testing.T) map[string]float64 {
		t.Helper()
		d, err := guard.Decisions()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	denied := func(t *testing.T, r harness.KubectlResult, want ...string) {
		t.Helper()
		if r.Err == nil {
			t.Fatalf("allowed, want denied: %s", r.Combined())
		}
		for _, w := range append([]string{"denied the request: driftless: bob may not "}, want...) {
			if !strings.Contains(r.Combined(), w) {
				t.Errorf("denial does not say %q:\n%s", w, r.Combined())
			}
		}
	}
	restartedAt := func(t *testing.T, name string) string {
		t.Helper()
		r := cp.Admin.Kubectl(ctx, "get", "-n", "production", "deployment/"+name, "-o", `jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}`)
		if r.Err != nil {
			t.Fatal(r.Combined())
		}
		return r.Stdout
	}

	var restarted string
	t.Run("bob restarts a rollout", func(t *testing.T) {
		before := decisions(t)
		if r := cp.Bob.Kubectl(ctx, "rollout", "restart", "deployment/payment-gateway", "-n", "production"); r.Err != nil {
			t.Fatalf("kubectl rollout restart: %s", r.Combined())
		}
		if restarted = restartedAt(t, "payment-gateway"); restarted == "" {
			t.Fatal("no restartedAt after kubectl rollout restart")
		}
		recorded(t, before, webhook.ReasonRolloutRestart, "payment-gateway")
	})
	t.Run("a restart that changes one more annotation is denied", func(t *testing.T) {
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q,"debug":"on"}}}}}`, webhook.AnnotationRestartedAt, time.Now().UTC().Format(time.RFC3339Nano))
		denied(t, cp.Bob.Kubectl(ctx, "patch", "deployment/payment-gateway", "-n", "production", "--type=merge", "-p", patch),
			"a rollout restart may change only spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]; this request changes more")
	})

	t.Run("the autoscaler scales an autoscaled Deployment", func(t *testing.T) {
		hpa := rest.CopyConfig(cp.Admin.Config)
		hpa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:horizontal-pod-autoscaler"}
		cs, err := kubernetes.NewForConfig(hpa)
		if err != nil {
			t.Fatal(err)
		}
		scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "safeops-scaled", Namespace: "production"}, Spec: autoscalingv1.ScaleSpec{Replicas: 4}}
		if _, err := cs.AppsV1().Deployments("production").UpdateScale(ctx, "safeops-scaled", scale, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
			t.Fatalf("scale as the autoscaler: %v", err)
		}
		denied(t, cp.Bob.Kubectl(ctx, "scale", "deployment/safeops-scaled", "-n", "production", "--replicas=3"), "(subresource scale)")
	})

	t.Run("the reconciler undoes neither through two syncs", func(t *testing.T) {
		waitSyncs(t, client, srv.Clock, source, 2)
		if got := restartedAt(t, "payment-gateway"); got != restarted {
			t.Errorf("restartedAt = %q after two syncs, want bob's %q", got, restarted)
		}
		assertKubectlOutput(t, cp.Admin, "{.spec.replicas}", "4", "get", "-n", "production", "deployment/safeops-scaled")
		st, _, err := reconciler.ReadSourceStatus(ctx, client, v1alpha1.DefaultNamespace, source)
		if err != nil {
			t.Fatal(err)
		}
		if st.DriftReverts != 0 {
			t.Errorf("driftReverts = %d, want 0: %s", st.DriftReverts, st.LastChange)
		}
	})

	t.Run("bob deletes a pod its ReplicaSet controls", func(t *testing.T) {
		rs := `apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: payment-gateway-7c9
  namespace: production
spec:
  replicas: 1
  selector:
    matchLabels: {app: payment-gateway, pod-template-hash: 7c9}
  template:
    metadata:
      labels: {app: payment-gateway, pod-template-hash: 7c9}
    spec:
      containers:
        - name: app
          image: registry.example.com/payment-gateway:1.4.2
`
		r := cp.Admin.KubectlWith(ctx, []byte(rs), nil, as("deployment-controller", "create", "-f", "-", "-o", "jsonpath={.metadata.uid}")...)
		if r.Err != nil {
			t.Fatalf("create the ReplicaSet as its controller: %s", r.Combined())
		}
		pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: payment-gateway-7c9-x2k
  namespace: production
  labels: {app: payment-gateway, pod-template-hash: 7c9}
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: payment-gateway-7c9, uid: %s, controller: true, blockOwnerDeletion: true}
spec:
  containers:
    - name: app
      image: registry.example.com/payment-gateway:1.4.2
`, r.Stdout)
		if r := cp.Admin.KubectlWith(ctx, []byte(pod), nil, as("replicaset-controller", "create", "-f", "-")...); r.Err != nil {
			t.Fatalf("create the pod as the ReplicaSet controller: %s", r.Combined())
		}
		before := decisions(t)
		if r := cp.Bob.Kubectl(ctx, "delete", "pod", "payment-gateway-7c9-x2k", "-n", "production"); r.Err != nil {
			t.Fatalf("bob deletes a controlled pod: %s", r.Combined())
		}
		recorded(t, before, webhook.ReasonControlledPodDelete, "payment-gateway-7c9-x2k")
	})
	t.Run("bob may not delete a pod without a controller", func(t *testing.T) {
		if r := cp.Admin.Kubectl(ctx, as("replicaset-controller", "run", "safeops-loose", "-n", "production", "--image=registry.example.com/debug:1.0")...); r.Err != nil {
			t.Fatalf("create a pod without owner: %s", r.Combined())
		}
		denied(t, cp.Bob.Kubectl(ctx, "delete", "pod", "safeops-loose", "-n", "production"), "this pod has no controller")
	})
	t.Run("bob may not delete a pod applied from Git", func(t *testing.T) {
		denied(t, cp.Bob.Kubectl(ctx, "delete", "pod", "safeops-static", "-n", "production"), "this pod is applied from Git (source safeops)")
	})

	t.Run("bob runs a Git CronJob now, and deletes the Job", func(t *testing.T) {
		before := decisions(t)
		if r := cp.Bob.Kubectl(ctx, "create", "job", "safeops-report-now", "--from=cronjob/safeops-report", "-n", "production"); r.Err != nil {
			t.Fatalf("kubectl create job --from: %s", r.Combined())
		}
		recorded(t, before, webhook.ReasonJobFromCronJob, "safeops-report-now")
		before = decisions(t)
		if r := cp.Bob.Kubectl(ctx, "delete", "job", "safeops-report-now", "-n", "production"); r.Err != nil {
			t.Fatalf("bob deletes the Job he created: %s", r.Combined())
		}
		after := decisions(t)
		if key := "allowed/" + string(webhook.ReasonJobFromCronJob); after[key] <= before[key] {
			t.Errorf("decisions{%s} = %v, want more than %v", key, after[key], before[key])
		}
	})
	t.Run("bob may not create a free-standing Job", func(t *testing.T) {
		denied(t, cp.Bob.Kubectl(ctx, "create", "job", "safeops-free", "--image=registry.example.com/report:1.0", "-n", "production"), "may not create jobs.batch/safeops-free")
	})
	t.Run("bob may not run a CronJob that is not in Git", func(t *testing.T) {
		// Created with an identity the guard lets through, without a source's label.
		if r := cp.Reconciler.Kubectl(ctx, "create", "cronjob", "safeops-handmade", "-n", "production", "--schedule=0 4 * * *", "--image=registry.example.com/report:1.0"); r.Err != nil {
			t.Fatalf("create a CronJob outside Git: %s", r.Combined())
		}
		denied(t, cp.Bob.Kubectl(ctx, "create", "job", "safeops-handmade-now", "--from=cronjob/safeops-handmade", "-n", "production"), "cronjobs/safeops-handmade is not applied from Git")
	})

	t.Run("a safe operation switched off is denied again", func(t *testing.T) {
		setConfig(t, guard, fmt.Sprintf(guardConfig, "enforce")+"  safeOperations:\n    rolloutRestart: {enabled: false}\n")
		t.Cleanup(func() { setConfig(t, guard, fmt.Sprintf(guardConfig, "enforce")) })
		denied(t, cp.Bob.Kubectl(ctx, "rollout", "restart", "deployment/payment-gateway", "-n", "production"),
			"a rollout-restart is switched off in this cluster: guard.safeOperations.rolloutRestart.enabled")
		if got := restartedAt(t, "payment-gateway"); got != restarted {
			t.Errorf("restartedAt = %q after a denied restart, want %q", got, restarted)
		}
	})
}

// waitSyncs advances the source's fake clock by its interval until n more syncs of the
// source have ended with the revision applied, as the status's last attempt says.
func waitSyncs(t *testing.T, client dynamic.Interface, clock *clocktesting.FakeClock, source string, n int) {
	t.Helper()
	st, _, err := reconciler.ReadSourceStatus(t.Context(), client, v1alpha1.DefaultNamespace, source)
	if err != nil {
		t.Fatal(err)
	}
	last := st.LastAttempt
	for i := range n {
		err := harness.Poll(t.Context(), time.Minute, func() error {
			st, _, err := reconciler.ReadSourceStatus(t.Context(), client, v1alpha1.DefaultNamespace, source)
			if err != nil {
				return err
			}
			if st.LastAttempt.After(last) && st.Result == reconciler.ResultApplied {
				last = st.LastAttempt
				return nil
			}
			if clock.HasWaiters() {
				clock.Step(time.Minute)
			}
			return fmt.Errorf("sync %d of %d: last attempt %s, result %s: %s", i+1, n, st.LastAttempt, st.Result, st.Message)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
