package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

const driftlessNamespace = "driftless-system"

var (
	usersMu sync.Mutex
	users   = map[string]*harness.User{}
)

// user returns a user provisioned once per control plane, bound to cluster-admin like every
// persona but admin, so that only admission stands between it and a change.
func user(t *testing.T, name string, groups ...string) *harness.User {
	t.Helper()
	usersMu.Lock()
	defer usersMu.Unlock()
	if u, ok := users[name]; ok {
		return u
	}
	u, err := cp.AddUser(t.Context(), name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	users[name] = u
	return u
}

// installDefault applies config/default for real as the administrator, in kubectl apply -k's
// order, and waits until the self-protection policy denies the administrator. Cleanup removes
// the binding, waits until the protection is gone and deletes the webhook configuration, which
// points at a Service no pod backs here.
func installDefault(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if r := cp.Admin.Kubectl(ctx, "delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName, "--ignore-not-found"); r.Err != nil {
			t.Errorf("delete the self-protection binding: %v\n%s", r.Err, r.Combined())
			return
		}
		err := harness.Poll(ctx, time.Minute, func() error {
			return admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, webhook.ConfigurationName, metav1.DeleteOptions{})
		})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete the webhook configuration once the protection is gone: %v", err)
		}
		if err := admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, webhook.SelfProtectionName, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete the self-protection policy: %v", err)
		}
	})
	for _, o := range renderDefault(t) {
		if r := cp.Admin.KubectlWith(ctx, toYAML(t, o), nil, "apply", "--server-side", "--force-conflicts", "--field-manager=install-test", "-f", "-"); r.Err != nil {
			t.Fatalf("apply %s: %v\n%s", id(o), r.Err, r.Combined())
		}
	}
	applied := time.Now()
	err = harness.Poll(ctx, time.Minute, func() error {
		err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, webhook.ConfigurationName, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), webhook.SelfProtectionName) {
			return nil
		}
		return fmt.Errorf("self-protection not in effect yet: %v", err)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self-protection in effect %s after its binding was applied", time.Since(applied).Round(100*time.Millisecond))
}

// replicasEditor writes a KUBE_EDITOR script that changes the Deployment's replicas, as a person
// would in kubectl edit.
func replicasEditor(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor.sh")
	script := "#!/bin/sh\nsed -i -e 's/^  replicas: 2$/  replicas: 1/' \"$1\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// podFromTemplate is the pod the ReplicaSet controller creates for the Driftless Deployment.
func podFromTemplate(t *testing.T, name string, labels map[string]string) *corev1.Pod {
	t.Helper()
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	d, err := admin.AppsV1().Deployments(driftlessNamespace).Get(t.Context(), "driftless", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := d.Spec.Template
	if labels == nil {
		labels = tmpl.Labels
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: driftlessNamespace, Labels: labels},
		Spec:       tmpl.Spec,
	}
}

func TestSelfProtection(t *testing.T) {
	ctx := t.Context()
	installDefault(t)

	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	// A pod of the Driftless Deployment, as the ReplicaSet controller would create it, placed by
	// the scheduler and reported running by its node: the Kubernetes components a Deployment
	// needs keep working in the protected namespace.
	// The reconciler, whom self-protection never stops, removes what the test creates below;
	// without a kubelet, a bound pod goes only when forced.
	t.Cleanup(func() {
		r := cp.Reconciler.Kubectl(context.Background(), "delete", "-n", driftlessNamespace, "pod/driftless-6b7c9-x2k4p", "pod/evictable",
			"secret/driftless-webhook-tls", "--ignore-not-found", "--force", "--grace-period=0")
		if r.Err != nil {
			t.Errorf("clean up: %v\n%s", r.Err, r.Combined())
		}
	})
	rsController := user(t, "system:serviceaccount:kube-system:replicaset-controller", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	scheduler := user(t, "system:kube-scheduler")
	node := user(t, "system:node:worker-1", "system:nodes", "system:authenticated")
	endpointSlices := user(t, "system:serviceaccount:kube-system:endpointslice-controller", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	t.Run("Kubernetes components run the Deployment", func(t *testing.T) {
		rs, err := rsController.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		pod, err := rs.CoreV1().Pods(driftlessNamespace).Create(ctx, podFromTemplate(t, "driftless-6b7c9-x2k4p", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("replicaset-controller creates a pod from the Deployment's template (which must meet Pod Security restricted): %v", err)
		}
		sched, err := scheduler.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "worker-1"}}
		if err := sched.CoreV1().Pods(driftlessNamespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatalf("kube-scheduler binds the pod: %v", err)
		}
		kubelet, err := node.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		pod, err = kubelet.CoreV1().Pods(driftlessNamespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = "10.0.0.7"
		pod.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.7"}}
		if _, err := kubelet.CoreV1().Pods(driftlessNamespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("the node reports the pod's status: %v", err)
		}
		if _, err := kubelet.CoreV1().Events(driftlessNamespace).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: pod.Name + "-"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: driftlessNamespace, Name: pod.Name},
			Reason:         "Started", Message: "Started container driftless", Type: corev1.EventTypeNormal,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("the node records an event: %v", err)
		}
		es, err := endpointSlices.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{GenerateName: "driftless-webhook-", Labels: map[string]string{discoveryv1.LabelServiceName: "driftless-webhook"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("webhook"), Port: ptr.To[int32](9443)}},
		}
		if _, err := es.DiscoveryV1().EndpointSlices(driftlessNamespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatalf("endpointslice-controller publishes the pod: %v", err)
		}
	})

	t.Run("cert-manager issues the certificate and injects its CA", func(t *testing.T) {
		certManager := user(t, "system:serviceaccount:cert-manager:cert-manager", "system:serviceaccounts", "system:serviceaccounts:cert-manager")
		cainjector := user(t, "system:serviceaccount:cert-manager:cert-manager-cainjector", "system:serviceaccounts", "system:serviceaccounts:cert-manager")
		ca, err := harness.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := ca.WriteServingCert(dir, 2, "driftless-webhook.driftless-system.svc"); err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "driftless-webhook-tls", Namespace: driftlessNamespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"ca.crt": ca.PEM},
		}
		for _, key := range []string{"tls.crt", "tls.key"} {
			if secret.Data[key], err = os.ReadFile(filepath.Join(dir, key)); err != nil {
				t.Fatal(err)
			}
		}
		cm, err := certManager.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cm.CoreV1().Secrets(driftlessNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatalf("cert-manager writes the serving certificate's Secret: %v", err)
		}
		inj, err := cainjector.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		vwc, err := inj.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.CABundle = ca.PEM
		}
		if _, err := inj.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("cert-manager's CA injector sets the caBundle: %v", err)
		}
	})

	// A pod no PodDisruptionBudget covers, so that the eviction goes through here, where no
	// disruption controller computes the budget's status.
	rs, err := rsController.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.CoreV1().Pods(driftlessNamespace).Create(ctx, podFromTemplate(t, "evictable", map[string]string{"app": "evictable"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	editorPath := replicasEditor(t)
	generatedFile := filepath.Join(t.TempDir(), "configmap.yaml")
	generated := "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: driftless-config-, namespace: driftless-system}\ndata: {config.yaml: 'guard: {mode: dry-run}'}\n"
	if err := os.WriteFile(generatedFile, []byte(generated), 0o600); err != nil {
		t.Fatal(err)
	}
	// A pod that passes Pod Security restricted, so that only self-protection stands in its way.
	podFile := filepath.Join(t.TempDir(), "pod.yaml")
	shell := podFromTemplate(t, "shell", map[string]string{"app": "shell"})
	shell.Spec.Containers[0].Image = "registry.example.com/shell:1"
	shell.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	if b, err := yaml.Marshal(shell); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(podFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const guardWays = `Ways forward: 1. Change the installation in Git and merge; Driftless applies it. 2. In an incident, a member of group "oncall" may change it directly.`
	denied := []struct {
		name string
		user *harness.User
		env  []string
		args []string
		// want is what the denial names: who may not do what.
		want string
	}{
		{"delete the webhook configuration", cp.Admin, nil,
			[]string{"delete", "validatingwebhookconfiguration", webhook.ConfigurationName},
			"driftless: admin may not delete validatingwebhookconfigurations.admissionregistration.k8s.io/driftless-guard: "},
		{"patch the webhook configuration", cp.Admin, nil,
			[]string{"patch", "validatingwebhookconfiguration", webhook.ConfigurationName, "--type=json", "-p", `[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]`},
			"driftless: admin may not update validatingwebhookconfigurations.admissionregistration.k8s.io/driftless-guard: "},
		{"edit the Deployment", cp.Admin, []string{"KUBE_EDITOR=" + editorPath},
			[]string{"edit", "-n", driftlessNamespace, "deployment/driftless"},
			"driftless: admin may not update deployments.apps/driftless in namespace driftless-system: "},
		{"set the Deployment's image", cp.Admin, nil,
			[]string{"set", "image", "-n", driftlessNamespace, "deployment/driftless", "driftless=attacker.example.com/driftless:evil"},
			"driftless: admin may not update deployments.apps/driftless in namespace driftless-system: "},
		{"scale the Deployment", cp.Admin, nil,
			[]string{"scale", "-n", driftlessNamespace, "deployment/driftless", "--replicas=0"},
			"driftless: admin may not update deployments.apps/driftless (subresource scale) in namespace driftless-system: "},
		{"delete the Deployment", cp.Admin, nil,
			[]string{"delete", "-n", driftlessNamespace, "deployment/driftless", "--wait=false"},
			"driftless: admin may not delete deployments.apps/driftless in namespace driftless-system: "},
		{"create a pod that mounts the service account's token", cp.Bob, nil,
			[]string{"create", "-f", podFile},
			"driftless: bob may not create pods/shell in namespace driftless-system: "},
		{"exec into a Driftless pod", cp.Admin, nil,
			[]string{"exec", "-n", driftlessNamespace, "driftless-6b7c9-x2k4p", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"},
			"driftless: admin may not connect pods/driftless-6b7c9-x2k4p (subresource exec) in namespace driftless-system: "},
		{"create a token for the service account", cp.Admin, nil,
			[]string{"create", "token", "-n", driftlessNamespace, "driftless"},
			"driftless: admin may not create serviceaccounts/driftless (subresource token) in namespace driftless-system: "},
		{"create a ConfigMap with a generated name (the denial names the generated name)", cp.Bob, nil,
			[]string{"create", "-f", generatedFile},
			"driftless: bob may not create configmaps/driftless-config-"},
		{"create a ConfigMap", cp.Bob, nil,
			[]string{"create", "configmap", "-n", driftlessNamespace, "driftless-config-override", "--from-literal=config.yaml=guard: {mode: dry-run}"},
			"driftless: bob may not create configmaps/driftless-config-override in namespace driftless-system: "},
		{"label the namespace", cp.Admin, nil,
			[]string{"label", "namespace", driftlessNamespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite"},
			"driftless: admin may not update namespaces/driftless-system: "},
		{"delete the namespace", cp.Admin, nil,
			[]string{"delete", "namespace", driftlessNamespace, "--wait=false"},
			"driftless: admin may not delete namespaces/driftless-system: "},
	}
	for _, tt := range denied {
		t.Run("denied/"+tt.user.Name+"/"+tt.name, func(t *testing.T) {
			r := tt.user.KubectlWith(ctx, nil, tt.env, tt.args...)
			if r.Err == nil {
				t.Fatalf("kubectl %s succeeded, want it denied:\n%s", strings.Join(tt.args, " "), r.Combined())
			}
			msg := r.Combined()
			for _, want := range []string{tt.want, "Driftless protects its own installation (namespace driftless-system and webhook configuration driftless-guard)", guardWays} {
				if !strings.Contains(msg, want) {
					t.Errorf("denial does not say %q:\n%s", want, msg)
				}
			}
		})
	}
	t.Run("denied changes changed nothing", func(t *testing.T) {
		d, err := admin.AppsV1().Deployments(driftlessNamespace).Get(ctx, "driftless", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		installed := find(t, renderDefault(t), "Deployment", "driftless")
		image, _, _ := unstructured.NestedSlice(installed.Object, "spec", "template", "spec", "containers")
		if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != image[0].(map[string]any)["image"] {
			t.Errorf("Deployment changed: replicas %d, image %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
		}
		vwc, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("webhook configuration: %v", err)
		}
		if p := vwc.Webhooks[0].FailurePolicy; p == nil || *p != admissionregistrationv1.Fail {
			t.Errorf("webhook failurePolicy changed to %v", p)
		}
	})

	allowed := []struct {
		name string
		user *harness.User
		args []string
	}{
		{"reconciler scales the Deployment", cp.Reconciler, []string{"patch", "-n", driftlessNamespace, "deployment/driftless", "--type=merge", "-p", `{"spec":{"replicas":3}}`}},
		{"reconciler restores the Deployment", cp.Reconciler, []string{"patch", "-n", driftlessNamespace, "deployment/driftless", "--type=merge", "-p", `{"spec":{"replicas":2}}`}},
		{"reconciler creates a ConfigMap", cp.Reconciler, []string{"create", "configmap", "-n", driftlessNamespace, "driftless-scratch", "--from-literal=a=b"}},
		{"reconciler deletes a ConfigMap", cp.Reconciler, []string{"delete", "configmap", "-n", driftlessNamespace, "driftless-scratch"}},
		{"reconciler could delete the webhook configuration", cp.Reconciler, []string{"delete", "validatingwebhookconfiguration", webhook.ConfigurationName, "--dry-run=server"}},
		{"break-glass member annotates the Deployment", cp.Alice, []string{"annotate", "-n", driftlessNamespace, "deployment/driftless", "driftless.dev/break-glass=INC-42: webhook restarts", "--overwrite"}},
		{"break-glass member could delete the webhook configuration", cp.Alice, []string{"delete", "validatingwebhookconfiguration", webhook.ConfigurationName, "--dry-run=server"}},
		{"break-glass member could delete the namespace", cp.Alice, []string{"delete", "namespace", driftlessNamespace, "--dry-run=server"}},
		// Nothing but RBAC guards the policy and binding: the API server never applies
		// ValidatingAdmissionPolicies from its API to policies and bindings.
		{"anyone RBAC allows could delete the self-protection binding", cp.Bob, []string{"delete", "validatingadmissionpolicybinding", webhook.SelfProtectionName, "--dry-run=server"}},
	}
	for _, tt := range allowed {
		t.Run("allowed/"+tt.name, func(t *testing.T) {
			if r := tt.user.Kubectl(ctx, tt.args...); r.Err != nil {
				t.Fatalf("kubectl %s: %v\n%s", strings.Join(tt.args, " "), r.Err, r.Combined())
			}
		})
	}

	t.Run("allowed/an administrator drains a node", func(t *testing.T) {
		eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "evictable", Namespace: driftlessNamespace}}
		if err := admin.PolicyV1().Evictions(driftlessNamespace).Evict(ctx, eviction); err != nil {
			t.Fatalf("evict a pod in driftless-system: %v", err)
		}
	})

	t.Run("the break-glass change stuck", func(t *testing.T) {
		d, err := admin.AppsV1().Deployments(driftlessNamespace).Get(ctx, "driftless", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Annotations["driftless.dev/break-glass"] == "" {
			t.Errorf("alice's annotation is missing: %v", d.Annotations)
		}
	})
}
