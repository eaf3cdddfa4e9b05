package reconciler_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NS
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1.0
`

// editor writes a KUBE_EDITOR script that edits the file kubectl hands it with sed.
func editor(t *testing.T, sedArgs ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "editor.sh")
	script := "#!/bin/sh\nset -e\nsed -i"
	for _, a := range sedArgs {
		script += " -e '" + a + "'"
	}
	script += ` "$1"` + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSelfHealRevertsDrift(t *testing.T) {
	tests := []struct {
		name string
		// drift changes the object out of band as admin, with the real kubectl.
		drift func(t *testing.T, ns string)
		// object is the one drifted, for the Event.
		object string
		// note must appear in the DriftReverted Event.
		note []string
	}{{
		name: "kubectl edit changes a value and adds a key",
		drift: func(t *testing.T, ns string) {
			ed := editor(t, `s/color: blue/color: red/`, `s/^data:$/data:\n  extra: added/`)
			r := cp.Admin.KubectlWith(t.Context(), nil, []string{"KUBE_EDITOR=" + ed}, "-n", ns, "edit", "configmap", "app")
			if r.Err != nil || !strings.Contains(r.Stdout, "edited") {
				t.Fatalf("kubectl edit: %v: %s", r.Err, r.Combined())
			}
		},
		object: "app",
		note:   []string{"kubectl-edit", "color: red", "extra: added"},
	}, {
		name: "client-side kubectl apply adds a key",
		drift: func(t *testing.T, ns string) {
			cm := configMap(ns, "app", map[string]string{"color": "blue", "size": "1", "extra": "added"}, nil)
			r := cp.Admin.KubectlWith(t.Context(), []byte(cm), nil, "apply", "-f", "-")
			if r.Err != nil {
				t.Fatalf("kubectl apply: %v: %s", r.Err, r.Combined())
			}
		},
		object: "app",
		note:   []string{"kubectl-client-side-apply", "extra: added"},
	}, {
		name: "server-side kubectl apply adds a key",
		drift: func(t *testing.T, ns string) {
			cm := configMap(ns, "app", map[string]string{"color": "green", "extra": "added"}, nil)
			r := cp.Admin.KubectlWith(t.Context(), []byte(cm), nil, "apply", "--server-side", "--force-conflicts", "-f", "-")
			if r.Err != nil {
				t.Fatalf("kubectl apply --server-side: %v: %s", r.Err, r.Combined())
			}
		},
		object: "app",
		note:   []string{"kubectl", "color: green", "extra: added"},
	}, {
		name: "kubectl patch changes a value",
		drift: func(t *testing.T, ns string) {
			kubectl(t, "-n", ns, "patch", "configmap", "app", "--type=merge", "-p", `{"data":{"size":"9"}}`)
		},
		object: "app",
		note:   []string{"kubectl-patch", `size: "9"`},
	}, {
		name:   "kubectl annotate adds an annotation",
		drift:  func(t *testing.T, ns string) { kubectl(t, "-n", ns, "annotate", "configmap", "app", "note=hand-made") },
		object: "app",
		note:   []string{"kubectl-annotate", "note: hand-made"},
	}, {
		name: "kubectl label removes the source label",
		drift: func(t *testing.T, ns string) {
			kubectl(t, "-n", ns, "label", "configmap", "app", v1alpha1.LabelSource+"-")
		},
		object: "app",
		note:   []string{"labels: null"},
	}, {
		name:   "kubectl delete",
		drift:  func(t *testing.T, ns string) { kubectl(t, "-n", ns, "delete", "configmap", "app") },
		object: "app",
		note:   []string{"recreated"},
	}, {
		name:   "kubectl set env adds a container variable",
		drift:  func(t *testing.T, ns string) { kubectl(t, "-n", ns, "set", "env", "deployment/web", "DEBUG=1") },
		object: "web",
		note:   []string{"kubectl-set", "DEBUG"},
	}, {
		name:   "kubectl scale changes replicas",
		drift:  func(t *testing.T, ns string) { kubectl(t, "-n", ns, "scale", "deployment", "web", "--replicas=5") },
		object: "web",
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := unique(fmt.Sprintf("heal-%d", i))
			g := newRig(t, name, overFile)
			namespace(t, name)
			commit := g.commit(map[string]string{
				"apps/app.yaml": configMap(name, "app", map[string]string{"color": "blue", "size": "1"}, nil),
				"apps/web.yaml": strings.ReplaceAll(deploymentYAML, "NS", name),
			})
			g.start(g.reconciler(), commit)

			tc.drift(t, name)
			eventually(t, "drift reverted", func() (bool, string) {
				cm := getConfigMap(t, name, "app")
				if cm == nil {
					return false, "configmap app does not exist"
				}
				var ann []string
				for k := range cm.Annotations {
					ann = append(ann, k)
				}
				sort.Strings(ann)
				d, err := admin.AppsV1().Deployments(name).Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				env := d.Spec.Template.Spec.Containers[0].Env
				saw := fmt.Sprintf("app data %s, label %q, annotations %v; web replicas %d, env %v", dataOf(cm), cm.Labels[v1alpha1.LabelSource], ann, replicas(d), env)
				return dataOf(cm) == "color=blue,size=1" && cm.Labels[v1alpha1.LabelSource] == name &&
					strings.Join(ann, ",") == v1alpha1.AnnotationRevision && replicas(d) == 2 && len(env) == 0, saw
			})
			ev := waitEvent(t, name, tc.object, "DriftReverted", tc.note...)
			if ev.Type != "Warning" {
				t.Errorf("DriftReverted event type = %s, want Warning", ev.Type)
			}
			eventually(t, "status counts the revert", func() (bool, string) {
				st := g.status()
				return st.DriftReverts >= 1, fmt.Sprintf("driftReverts %d", st.DriftReverts)
			})
		})
	}
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return -1
	}
	return *d.Spec.Replicas
}
