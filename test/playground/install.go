package playground

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/release"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// certManagerUser is the identity cert-manager's controller runs as in config/default's
// configuration (guard.controllerIdentities); the playground reports the serving Certificate
// Ready as it.
const certManagerUser = "system:serviceaccount:cert-manager:cert-manager"

// personaRBAC is what a platform team grants the personas: bob (developers) and alice (oncall)
// may change workloads in the application namespaces, so that the guard, not RBAC, is what
// stops a manual change there, and may read them everywhere, Driftless's configuration and
// ledger included, Secrets excepted; sourceViewerBinding adds the GitSources, and with them
// Driftless's status. admin is in system:masters. Nobody but Driftless
// may impersonate the reconciler or mint its tokens.
const personaRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: playground-workloads-edit
rules:
  - apiGroups: ["", apps, batch, autoscaling, policy, networking.k8s.io]
    resources: [configmaps, services, pods, pods/exec, pods/attach, pods/portforward, pods/eviction,
      deployments, deployments/scale, replicasets, statefulsets, statefulsets/scale, daemonsets,
      jobs, cronjobs, horizontalpodautoscalers, poddisruptionbudgets, ingresses, networkpolicies]
    verbs: [get, list, watch, create, update, patch, delete, deletecollection]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: playground-read
rules:
  - apiGroups: ["", apps, batch, autoscaling, policy, networking.k8s.io, events.k8s.io, coordination.k8s.io]
    resources: [namespaces, configmaps, services, endpoints, pods, pods/log, events, serviceaccounts,
      deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs, horizontalpodautoscalers,
      poddisruptionbudgets, ingresses, networkpolicies, leases]
    verbs: [get, list, watch]
  - apiGroups: [admissionregistration.k8s.io, rbac.authorization.k8s.io, apiextensions.k8s.io, cert-manager.io]
    resources: ["*"]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: playground-read
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: playground-read}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: playground-cert-manager
rules:
  - apiGroups: [cert-manager.io]
    resources: [certificates, certificates/status, issuers]
    verbs: [get, list, watch, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: playground-cert-manager
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: playground-cert-manager}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: "` + certManagerUser + `"}
`

// sourceViewerBinding lets the developers and the on-call group read the GitSources, and with
// them driftless status and driftless audit, with the ClusterRole config/rbac ships unbound
// for that (it is aggregated into view, which the personas do not have).
const sourceViewerBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: playground-source-viewer
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: driftless-source-viewer}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}
`

// syncRequesterBinding lets the developers request syncs (driftless reconcile) with the Role
// config/rbac ships unbound.
const syncRequesterBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: playground-sync-requester
  namespace: driftless-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: driftless-sync-requester}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
`

// workloadsEditBinding binds the developers and the on-call group to playground-workloads-edit
// in one application namespace.
func workloadsEditBinding(namespace string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: playground-workloads-edit
  namespace: %s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: playground-workloads-edit}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: oncall}
`, namespace)
}

// install sets up Driftless as `kubectl apply -k config/default` does on a real cluster, minus
// the Deployment: the guard and the reconciler run in this process instead of in pods, as the
// reconciler's service account with config/rbac's rights. The playground's configuration
// replaces the default one in the generated ConfigMap, and the webhook configuration and the
// self-protection policy are generated from it, as `make manifests` does for config/default.
// There is no cert-manager here: the guard's serving certificate comes from the playground's
// own CA, and the serving Certificate is reported Ready as cert-manager's controller would.
// The self-protection binding is applied last, as config/default orders it: from then on only
// Driftless's own identities and the on-call group may change driftless-system, admin included.
func (e *env) install(ctx context.Context, root, config string, namespaces []string) error {
	cfg, err := v1alpha1.Decode([]byte(config))
	if err != nil {
		return fmt.Errorf("the playground's configuration: %w", err)
	}
	e.say("installing config/default (cert-manager CRDs, RBAC, configuration; no Deployment)")
	crds, err := harness.CertManagerCRDs(root)
	if err != nil {
		return err
	}
	args := []string{"apply", "--server-side", "--field-manager=playground"}
	for _, f := range crds {
		args = append(args, "-f", f)
	}
	if r := e.cp.Admin.Kubectl(ctx, args...); r.Err != nil {
		return fmt.Errorf("apply the cert-manager CRDs: %v: %s", r.Err, r.Combined())
	}
	if r := e.cp.Admin.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io"); r.Err != nil {
		return fmt.Errorf("wait for the cert-manager CRDs: %v: %s", r.Err, r.Combined())
	}

	// The Deployment's image is never pulled here; any digest pins it.
	objs, err := release.Render(ctx, release.Options{Root: root, Path: "config/default", Digest: "sha256:" + strings.Repeat("0", 64)})
	if err != nil {
		return err
	}
	var first, webhookConfig []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			// Pods do not run here; self-protection is generated from the playground's
			// configuration below.
		case "ValidatingWebhookConfiguration":
			webhookConfig = append(webhookConfig, o)
		case "ConfigMap":
			if o.GetLabels()["driftless.dev/component"] == "config" {
				if err := unstructured.SetNestedField(o.Object, config, "data", "config.yaml"); err != nil {
					return err
				}
			}
			first = append(first, o)
		default:
			first = append(first, o)
		}
	}
	if len(webhookConfig) != 1 {
		return fmt.Errorf("config/default renders %d webhook configurations, want 1", len(webhookConfig))
	}
	docs := []string{personaRBAC}
	for _, ns := range namespaces {
		docs = append(docs, workloadsEditBinding(ns))
	}
	for _, o := range first {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		docs = append(docs, string(y))
	}
	// After config/default's Namespace and Roles.
	docs = append(docs, sourceViewerBinding, syncRequesterBinding, e.gitSource)
	if err := e.apply(ctx, e.cp.Admin, docs...); err != nil {
		return fmt.Errorf("apply config/default: %w", err)
	}

	crt, err := e.cp.AddUser(ctx, certManagerUser, "system:serviceaccounts", "system:serviceaccounts:cert-manager")
	if err != nil {
		return err
	}
	status := harness.CertificateReadyStatus(time.Now())
	if err := e.waitFor(ctx, "cert-manager's rights on the serving Certificate", time.Minute, func() error {
		if r := crt.Kubectl(ctx, "patch", "certificate", "-n", v1alpha1.DefaultNamespace, "driftless-webhook", "--subresource=status", "--type=merge", "-p", status); r.Err != nil {
			return fmt.Errorf("%v: %s", r.Err, r.Combined())
		}
		return nil
	}); err != nil {
		return err
	}

	e.say("starting driftless run: the guard and the reconciler, as the reconciler's service account")
	if e.server, err = inprocess.NewWithOptions(e.cp, config, inprocess.Options{
		Dir:       e.dir + "/driftless",
		RealClock: true,
		Logger:    e.logger,
	}); err != nil {
		return err
	}
	if err := e.server.Start(); err != nil {
		return fmt.Errorf("%w (see %s)", err, e.logPath)
	}
	e.serverUp = true

	// The webhook configuration config/default installs, with the guard's address and CA in
	// place of the Service and the bundle cert-manager's CA injector would write.
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To("https://" + e.server.WebhookAddr + webhook.GuardPath),
		CABundle: e.server.CA.PEM,
	})
	vwc.Annotations = webhookConfig[0].GetAnnotations()
	vwc.Labels = webhookConfig[0].GetLabels()
	policy, binding := webhook.SelfProtection(cfg)
	for _, step := range []struct {
		what string
		obj  runtime.Object
	}{{"the webhook configuration", vwc}, {"the self-protection policy", policy}} {
		if err := e.applyObject(ctx, step.obj); err != nil {
			return fmt.Errorf("apply %s: %w", step.what, err)
		}
	}
	if err := e.server.WaitEnforcing(ctx); err != nil {
		return fmt.Errorf("the guard does not enforce: %w (see %s)", err, e.logPath)
	}
	if err := e.applyObject(ctx, binding); err != nil {
		return fmt.Errorf("apply the self-protection binding: %w", err)
	}
	return nil
}

// applyObject applies a typed object server-side as admin.
func (e *env) applyObject(ctx context.Context, obj runtime.Object) error {
	y, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	return e.apply(ctx, e.cp.Admin, string(y))
}

// apply applies YAML documents server-side as u.
func (e *env) apply(ctx context.Context, u *harness.User, docs ...string) error {
	docs = slices.DeleteFunc(docs, func(d string) bool { return strings.TrimSpace(d) == "" })
	r := u.KubectlWith(ctx, []byte(strings.Join(docs, "\n---\n")), nil, "apply", "--server-side", "--field-manager=playground", "-f", "-")
	if r.Err != nil {
		return fmt.Errorf("%v: %s", r.Err, r.Combined())
	}
	return nil
}
