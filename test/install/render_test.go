package install

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/cmd/driftless/app"
	"github.com/driftless-dev/driftless/reconciler/render"
	"github.com/driftless-dev/driftless/webhook"
)

// renderDefault renders config/default with the reconciler's in-process kustomize.
func renderDefault(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render.Render(t.Context(), root, "config/default")
	if err != nil {
		t.Fatalf("render config/default: %v", err)
	}
	return objs
}

func id(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetName()
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && (o.GetName() == name || kind == "ConfigMap" && strings.HasPrefix(o.GetName(), name+"-")) {
			return o
		}
	}
	t.Fatalf("config/default has no %s %s", kind, name)
	return nil
}

// convert decodes a rendered object into a typed one.
func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s: %v", id(o), err)
	}
	return out
}

func toYAML(t *testing.T, o *unstructured.Unstructured) []byte {
	t.Helper()
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDefaultInstallApplies renders config/default and has the API server accept every object
// in a server-side dry run, as the administrator who installs Driftless.
func TestDefaultInstallApplies(t *testing.T) {
	ctx := t.Context()
	objs := renderDefault(t)

	var got []string
	for _, o := range objs {
		got = append(got, id(o))
	}
	// The order is the order kubectl apply -k uses: the self-protection binding comes last, so
	// that it cannot deny the installation its own objects.
	want := []string{
		"Namespace/driftless-system",
		"CustomResourceDefinition/gitsources.driftless.dev",
		"ServiceAccount/driftless-system/driftless",
		"Role/driftless-system/driftless-config-reader",
		"Role/driftless-system/driftless-leader-election",
		"Role/driftless-system/driftless-ledger",
		"Role/driftless-system/driftless-sources",
		"Role/driftless-system/driftless-sync-requester",
		"ClusterRole/driftless-guard",
		"ClusterRole/driftless-reconciler",
		"ClusterRole/driftless-source-viewer",
		"RoleBinding/driftless-system/driftless-config-reader",
		"RoleBinding/driftless-system/driftless-leader-election",
		"RoleBinding/driftless-system/driftless-ledger",
		"RoleBinding/driftless-system/driftless-sources",
		"ClusterRoleBinding/driftless-guard",
		"ClusterRoleBinding/driftless-reconciler",
		"ConfigMap/driftless-system/" + find(t, objs, "ConfigMap", "driftless-config").GetName(),
		"Service/driftless-system/driftless-metrics",
		"Service/driftless-system/driftless-webhook",
		"Deployment/driftless-system/driftless",
		"PodDisruptionBudget/driftless-system/driftless",
		"Certificate/driftless-system/driftless-apiserver-client",
		"Certificate/driftless-system/driftless-ca",
		"Certificate/driftless-system/driftless-webhook",
		"Issuer/driftless-system/driftless-ca",
		"Issuer/driftless-system/driftless-selfsigned",
		"NetworkPolicy/driftless-system/driftless",
		"ValidatingWebhookConfiguration/driftless-guard",
		"ValidatingAdmissionPolicy/driftless-self-protection",
		"ValidatingAdmissionPolicyBinding/driftless-self-protection",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("config/default renders\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Namespaced objects can only be dry-run into a namespace that exists.
	if r := cp.Admin.KubectlWith(ctx, toYAML(t, objs[0]), nil, "apply", "--server-side", "-f", "-"); r.Err != nil {
		t.Fatalf("apply %s: %v\n%s", id(objs[0]), r.Err, r.Combined())
	}
	t.Run("kubectl apply -k config/default", func(t *testing.T) {
		r := cp.Admin.Kubectl(ctx, "apply", "-k", filepath.Join(root, "config", "default"), "--server-side", "--dry-run=server", "--field-manager=install-test")
		if r.Err != nil {
			t.Fatalf("%v\n%s", r.Err, r.Combined())
		}
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != len(objs) {
			t.Fatalf("kubectl applied %d objects, want %d:\n%s", len(lines), len(objs), r.Stdout)
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "validatingadmissionpolicybinding.admissionregistration.k8s.io/"+webhook.SelfProtectionName+" ") {
			t.Errorf("kubectl applies %q last, want the self-protection binding:\n%s", last, r.Stdout)
		}
	})
	for _, o := range objs[1:] {
		t.Run(id(o), func(t *testing.T) {
			r := cp.Admin.KubectlWith(ctx, toYAML(t, o), nil, "apply", "--server-side", "--dry-run=server", "--field-manager=install-test", "-f", "-")
			if r.Err != nil {
				t.Fatalf("kubectl apply --server-side --dry-run=server: %v\n%s", r.Err, r.Combined())
			}
			// Pod Security warns here when the pod template breaks the namespace's level.
			if strings.Contains(r.Stderr, "Warning") {
				t.Errorf("the API server warns:\n%s", r.Stderr)
			}
		})
	}
}

// TestDefaultInstallFitsTogether checks the references between the pieces of config/default
// that neither kustomize nor the API server checks.
func TestDefaultInstallFitsTogether(t *testing.T) {
	objs := renderDefault(t)
	deploy := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "driftless"))
	webhookSvc := convert[corev1.Service](t, find(t, objs, "Service", "driftless-webhook"))
	metricsSvc := convert[corev1.Service](t, find(t, objs, "Service", "driftless-metrics"))
	crt := convert[cmapi.Certificate](t, find(t, objs, "Certificate", "driftless-webhook"))
	vwc := convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, find(t, objs, "ValidatingWebhookConfiguration", webhook.ConfigurationName))
	configMap := find(t, objs, "ConfigMap", "driftless-config")
	pdb := find(t, objs, "PodDisruptionBudget", "driftless")

	// The serving certificate covers the name the API server calls.
	svc := types.NamespacedName{Namespace: webhookSvc.Namespace, Name: webhookSvc.Name}
	if errs := webhook.ValidateServingCertificate(crt, svc); len(errs) > 0 {
		t.Errorf("Certificate %s does not serve Service %s: %v", crt.Name, svc, errs.ToAggregate())
	}
	for _, w := range vwc.Webhooks {
		ref := w.ClientConfig.Service
		if ref == nil || ref.Namespace != svc.Namespace || ref.Name != svc.Name || ref.Port == nil || *ref.Port != webhookSvc.Spec.Ports[0].Port {
			t.Errorf("webhook %s calls %+v, want Service %s port %d", w.Name, ref, svc, webhookSvc.Spec.Ports[0].Port)
		}
	}
	if got, want := vwc.Annotations["cert-manager.io/inject-ca-from"], crt.Namespace+"/"+crt.Name; got != want {
		t.Errorf("webhook configuration injects the CA from %q, want %q", got, want)
	}

	// The Deployment serves what the Services target and mounts what cert-manager and the
	// generator produce.
	pod := deploy.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, s := range []*corev1.Service{webhookSvc, metricsSvc} {
		if !labelsMatch(s.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selects %v, pods are labelled %v", s.Name, s.Spec.Selector, pod.Labels)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.StrVal]; !ok {
				t.Errorf("Service %s targets port %q, the container has %v", s.Name, p.TargetPort.String(), ports)
			}
		}
	}
	// driftless run listens on its flags' defaults, and needs its cache directory writable on
	// a read-only root filesystem.
	run, _, err := app.NewCommand().Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	flagDefault := func(name string) string {
		f := run.Flags().Lookup(name)
		if f == nil {
			t.Fatalf("driftless run has no --%s", name)
		}
		return f.DefValue
	}
	for port, flag := range map[string]string{"webhook": "webhook-addr", "metrics": "metrics-addr", "health": "health-addr"} {
		if want := flagDefault(flag); want != fmt.Sprintf(":%d", ports[port]) {
			t.Errorf("container port %s is %d, driftless run listens on --%s %s", port, ports[port], flag, want)
		}
	}
	if cacheDir := flagDefault("cache-dir"); !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == cacheDir && !m.ReadOnly }) {
		t.Errorf("nothing writable is mounted at driftless run's --cache-dir %s: %+v", cacheDir, c.VolumeMounts)
	}
	selector, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if !labelsMatch(selector, pod.Labels) {
		t.Errorf("PodDisruptionBudget selects %v, pods are labelled %v", selector, pod.Labels)
	}
	var mounted []string
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				mounted = append(mounted, "configmap "+src.ConfigMap.Name)
			case src.Secret != nil:
				mounted = append(mounted, "secret "+src.Secret.Name)
			}
		}
	}
	for _, want := range []string{"configmap " + configMap.GetName(), "secret " + crt.Spec.SecretName} {
		if !slices.Contains(mounted, want) {
			t.Errorf("Deployment mounts %v, want %s", mounted, want)
		}
	}
	wantArgs := []string{"run", "--config", "/etc/driftless/config.yaml", "--cert-dir", "/etc/driftless/certs", "--client-ca-file", "ca.crt"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args %q, want %q", c.Args, wantArgs)
	}
	if pod.Spec.ServiceAccountName != "driftless" {
		t.Errorf("serviceAccountName %q, want driftless", pod.Spec.ServiceAccountName)
	}

	// Only the API server calls the webhook: the client CA the args name is mounted from the
	// serving certificate's Secret (the installation CA, ca.crt), and that CA's Issuer also
	// issues the API server's client certificate, for client authentication.
	var clientCAMounted bool
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret == nil || src.Secret.Name != crt.Spec.SecretName {
				continue
			}
			for _, item := range src.Secret.Items {
				if item.Key == "ca.crt" && item.Path == "certs/ca.crt" {
					clientCAMounted = true
				}
			}
		}
	}
	if !clientCAMounted {
		t.Errorf("Deployment does not mount ca.crt of Secret %s at certs/ca.crt, which --client-ca-file ca.crt names", crt.Spec.SecretName)
	}
	client := convert[cmapi.Certificate](t, find(t, objs, "Certificate", "driftless-apiserver-client"))
	if client.Spec.IssuerRef != crt.Spec.IssuerRef {
		t.Errorf("the API server's client certificate is issued by %+v, the serving certificate (whose ca.crt the guard trusts) by %+v", client.Spec.IssuerRef, crt.Spec.IssuerRef)
	}
	if !slices.Contains(client.Spec.Usages, cmapi.UsageClientAuth) || slices.Contains(crt.Spec.Usages, cmapi.UsageClientAuth) {
		t.Errorf("usages: client certificate %v must include client auth, serving certificate %v must not", client.Spec.Usages, crt.Spec.Usages)
	}
	// The network policy admits the webhook port of the pods it selects.
	np := convert[networkingv1.NetworkPolicy](t, find(t, objs, "NetworkPolicy", "driftless"))
	if !labelsMatch(np.Spec.PodSelector.MatchLabels, pod.Labels) {
		t.Errorf("NetworkPolicy selects %v, pods are labelled %v", np.Spec.PodSelector.MatchLabels, pod.Labels)
	}
	webhookOpen := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.StrVal == "webhook" && len(rule.From) == 0 {
				webhookOpen = true
			}
			if p.Port != nil {
				if _, ok := ports[p.Port.StrVal]; !ok {
					t.Errorf("NetworkPolicy admits port %q, the container has %v", p.Port.String(), ports)
				}
			}
		}
	}
	if !webhookOpen {
		t.Errorf("NetworkPolicy does not admit the API server to the webhook port: %+v", np.Spec.Ingress)
	}

	// The ConfigMap carries config/default/driftless.yaml under the key the args name.
	want, err := os.ReadFile(filepath.Join(root, "config", "default", "driftless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(configMap.Object, "data", "config.yaml"); got != string(want) {
		t.Errorf("ConfigMap %s config.yaml differs from config/default/driftless.yaml", configMap.GetName())
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestGeneratedManifestsAreCurrent regenerates the files `make manifests` writes and compares
// them with the checked-in ones.
func TestGeneratedManifestsAreCurrent(t *testing.T) {
	config := filepath.Join(root, "config", "default", "driftless.yaml")
	tests := []struct {
		file string
		args []string
	}{
		{"config/webhook/manifests.yaml", []string{"manifests", "webhook", "--config", config}},
		{"config/default/self-protection.yaml", []string{"manifests", "self-protection", "--config", config}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cmd := app.NewCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetArgs(tt.args)
			if err := cmd.ExecuteContext(t.Context()); err != nil {
				t.Fatalf("driftless %s: %v", strings.Join(tt.args, " "), err)
			}
			want, err := os.ReadFile(filepath.Join(root, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s is out of date: run `driftless %s > %s`", tt.file, strings.Join(tt.args[:2], " ")+" --config config/default/driftless.yaml", tt.file)
			}
		})
	}
}
