package reconciler_test

import (
	"fmt"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/reconciler"
)

const hpaYAML = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: NS
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 70}
`

// webState reads the Deployment web: its restartedAt annotation, replicas and container env.
func webState(t *testing.T, ns string) (restartedAt string, replicas int32, env int) {
	t.Helper()
	d, err := admin.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment %s/web: %v", ns, err)
	}
	r := int32(-1)
	if d.Spec.Replicas != nil {
		r = *d.Spec.Replicas
	}
	return d.Spec.Template.Annotations[reconciler.AnnotationRestartedAt], r, len(d.Spec.Template.Spec.Containers[0].Env)
}

// revertEnv sets a container variable out of band and waits until the reconciler reverted it:
// the watch has then processed every change made before it.
func revertEnv(t *testing.T, g *rig, ns string) {
	t.Helper()
	before := g.status().DriftReverts
	kubectl(t, "-n", ns, "set", "env", "deployment/web", "DEBUG=1")
	eventually(t, "the variable set out of band is reverted", func() (bool, string) {
		_, _, env := webState(t, ns)
		st := g.status()
		return env == 0 && st.DriftReverts > before, fmt.Sprintf("env %d, driftReverts %d", env, st.DriftReverts)
	})
}

// TestRolloutRestartIsKept shows that kubectl rollout restart is not drift: neither healing
// (which reverts another change to the same Deployment meanwhile) nor a sync removes
// restartedAt, so the workload is not rolled out a second time.
func TestRolloutRestartIsKept(t *testing.T) {
	name := unique("restart")
	g := newRig(t, name, overFile)
	namespace(t, name)
	commit := g.commit(map[string]string{"apps/web.yaml": strings.ReplaceAll(deploymentYAML, "NS", name)})
	r := g.reconciler()
	g.start(r, commit)

	kubectl(t, "-n", name, "rollout", "restart", "deployment/web")
	at, _, _ := webState(t, name)
	if at == "" {
		t.Fatal("kubectl rollout restart set no restartedAt")
	}
	revertEnv(t, g, name)
	g.sync(r)
	if got, _, _ := webState(t, name); got != at {
		t.Errorf("restartedAt = %q after healing and a sync, want %q (kubectl rollout restart's)", got, at)
	}
	if st := g.status(); st.DriftReverts != 1 {
		t.Errorf("driftReverts = %d, want 1 (the variable only): %s", st.DriftReverts, st.LastChange)
	}
}

// TestRolloutRestartOfAGitRestartedAt shows a restartedAt that Git declares giving way to a
// rollout restart until Git's object changes, when Git's wins.
func TestRolloutRestartOfAGitRestartedAt(t *testing.T) {
	name := unique("gitrestart")
	g := newRig(t, name, overFile)
	namespace(t, name)
	const gitAt = "2026-01-01T00:00:00Z"
	web := strings.ReplaceAll(strings.ReplaceAll(deploymentYAML, "NS", name),
		"      labels: {app: web}\n    spec:", "      labels: {app: web}\n      annotations: {"+reconciler.AnnotationRestartedAt+": \""+gitAt+"\"}\n    spec:")
	commit := g.commit(map[string]string{"apps/web.yaml": web})
	r := g.reconciler()
	g.start(r, commit)
	if at, _, _ := webState(t, name); at != gitAt {
		t.Fatalf("restartedAt = %q, want Git's %q", at, gitAt)
	}

	kubectl(t, "-n", name, "rollout", "restart", "deployment/web")
	at, _, _ := webState(t, name)
	revertEnv(t, g, name)
	g.sync(r)
	if got, _, _ := webState(t, name); got != at {
		t.Errorf("restartedAt = %q after healing and a sync, want the restart's %q", got, at)
	}

	next := g.commit(map[string]string{"apps/web.yaml": strings.ReplaceAll(web, "web:1.0", "web:1.1")})
	g.sync(r)
	g.waitRevision(next)
	if got, _, _ := webState(t, name); got != gitAt {
		t.Errorf("restartedAt = %q after Git changed the Deployment, want Git's %q", got, gitAt)
	}
}

// TestAutoscaledReplicasAreKept shows that the replicas a HorizontalPodAutoscaler in Git sets
// are not drift: healing and syncs leave them, while other changes are still reverted.
func TestAutoscaledReplicasAreKept(t *testing.T) {
	name := unique("hpa")
	g := newRig(t, name, overFile)
	namespace(t, name)
	commit := g.commit(map[string]string{
		"apps/web.yaml": strings.ReplaceAll(deploymentYAML, "NS", name),
		"apps/hpa.yaml": strings.ReplaceAll(hpaYAML, "NS", name),
	})
	r := g.reconciler()
	g.start(r, commit)
	if _, n, _ := webState(t, name); n != 2 {
		t.Fatalf("replicas = %d, want Git's 2 on creation", n)
	}

	// The autoscaler scales through the scale subresource, as kube-controller-manager.
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: name},
		Spec:       autoscalingv1.ScaleSpec{Replicas: 5},
	}
	if _, err := admin.AppsV1().Deployments(name).UpdateScale(t.Context(), "web", scale, metav1.UpdateOptions{FieldManager: "kube-controller-manager"}); err != nil {
		t.Fatalf("scale as the autoscaler: %v", err)
	}
	revertEnv(t, g, name)
	g.sync(r)
	if _, n, _ := webState(t, name); n != 5 {
		t.Errorf("replicas = %d after healing and a sync, want the autoscaler's 5", n)
	}
	if st := g.status(); st.DriftReverts != 1 {
		t.Errorf("driftReverts = %d, want 1 (the variable only): %s", st.DriftReverts, st.LastChange)
	}

	// Without the autoscaler in Git, Git's replicas are applied again.
	next := g.commit(nil, "apps/hpa.yaml")
	g.sync(r)
	g.waitRevision(next)
	if _, n, _ := webState(t, name); n != 2 {
		t.Errorf("replicas = %d once the autoscaler left Git, want Git's 2", n)
	}
}
