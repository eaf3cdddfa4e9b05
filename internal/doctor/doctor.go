// Package doctor checks a Driftless installation in a live cluster: the preflight behind
// `driftless doctor`. Each check reports ok, warn or FAIL with what it found and how to fix it.
//
// It only reads, plus one server-side dry-run request that nothing persists. It must not change
// the cluster, and it must not need anything a pod-less control plane lacks to tell a sound
// installation from a broken one: it reads objects and asks the API server, it does not wait
// for pods.
package doctor

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/installation"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/webhook"
)

// Status is the outcome of one check.
type Status string

// The outcomes, as printed.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Result is one line of the report.
type Result struct {
	// Status is ok, warn or FAIL.
	Status Status `json:"status"`
	// Check names what was checked.
	Check string `json:"check"`
	// Message says what was found.
	Message string `json:"message"`
	// Fix says what to do about a warn or FAIL; empty for ok.
	Fix string `json:"fix,omitempty"`
}

// String formats the result on one line.
func (r Result) String() string {
	s := fmt.Sprintf("%-4s %s: %s", r.Status, r.Check, r.Message)
	if r.Fix != "" {
		s += " (fix: " + r.Fix + ")"
	}
	return s
}

// Failed reports whether any result is a FAIL.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

// Options are the clients and the installation to check. Kube, Dynamic and Namespace are
// required.
type Options struct {
	// Kube and Dynamic talk to the cluster as the caller.
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Namespace is where Driftless is installed.
	Namespace string
	// Now is the time certificates and syncs are judged at.
	Now time.Time
}

// certManagerCAAnnotation names the Certificate whose CA cert-manager injects.
const certManagerCAAnnotation = "cert-manager.io/inject-ca-from"

var certificatesGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// checker runs the checks and collects their results.
type checker struct {
	Options
	results []Result
	cfg     *v1alpha1.DriftlessConfig
	vwc     *admissionregistrationv1.ValidatingWebhookConfiguration
}

func (c *checker) add(s Status, check, msg, fix string) {
	c.results = append(c.results, Result{Status: s, Check: check, Message: msg, Fix: fix})
}

// Run checks the installation and returns one result per finding, in a fixed order.
func Run(ctx context.Context, o Options) []Result {
	c := &checker{Options: o}
	c.configuration(ctx)
	c.certManager(ctx)
	c.webhookConfiguration(ctx)
	c.servingCertificate(ctx)
	c.guardAnswers(ctx)
	c.selfProtection(ctx)
	c.access(ctx)
	c.sources(ctx)
	return c.results
}

// configuration finds the installed DriftlessConfig by its label and decodes it strictly.
func (c *checker) configuration(ctx context.Context) {
	const check = "configuration"
	cfg, cm, err := installation.Config(ctx, c.Kube, c.Namespace)
	switch {
	case errors.Is(err, installation.ErrNotInstalled):
		c.add(Fail, check, err.Error(), "install Driftless (kubectl apply --server-side -f dist/install.yaml), or pass --driftless-namespace")
		return
	case err != nil && cm != nil:
		c.add(Fail, check, err.Error(), "fix config/default/driftless.yaml and re-apply the installation")
		return
	case err != nil:
		c.add(Fail, check, err.Error(), "check the kubeconfig and that you may read ConfigMaps and Deployments in "+c.Namespace)
		return
	}
	c.cfg = cfg
	ns := "every namespace but the exempt ones"
	if len(cfg.Guard.ProtectedNamespaces) > 0 {
		ns = strings.Join(cfg.Guard.ProtectedNamespaces, ", ")
	}
	msg := fmt.Sprintf("ConfigMap %s/%s: guard %s in %s", c.Namespace, cm.Name, cfg.Guard.Mode, ns)
	if n := len(cfg.Sources); n > 0 {
		// Sources declared in the file (deprecated); GitSources have checks of their own.
		msg += fmt.Sprintf(", %d source(s) declared in the file", n)
	}
	if cfg.Guard.Mode != v1alpha1.ModeEnforce {
		c.add(Warn, check, msg+": the guard denies nothing", "set guard.mode: enforce once the dry-run records look right")
		return
	}
	c.add(OK, check, msg, "")
}

func (c *checker) certManager(ctx context.Context) {
	const check = "cert-manager"
	res, err := c.Kube.Discovery().ServerResourcesForGroupVersion("cert-manager.io/v1")
	if err != nil || !slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "certificates" }) {
		c.add(Fail, check, fmt.Sprintf("the API server serves no cert-manager.io/v1 certificates: %v", err), "install cert-manager (https://cert-manager.io/docs/installation/) before Driftless")
		return
	}
	c.add(OK, check, "cert-manager.io/v1 Certificates are served", "")
}

// webhookConfiguration compares the live webhook configuration with what the installed
// configuration generates, ignoring only the client config (service or URL, and the CA bundle
// cert-manager injects).
func (c *checker) webhookConfiguration(ctx context.Context) {
	const check = "webhook configuration"
	live, err := c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
	if err != nil {
		c.add(Fail, check, fmt.Sprintf("ValidatingWebhookConfiguration %s: %v", webhook.ConfigurationName, err), "re-apply the installation; without it nothing is guarded")
		return
	}
	c.vwc = live
	for _, w := range live.Webhooks {
		if w.FailurePolicy != nil && *w.FailurePolicy == admissionregistrationv1.Ignore {
			c.add(Fail, check, fmt.Sprintf("webhook %s has failurePolicy Ignore: changes pass unchecked whenever the guard is down", w.Name), "re-apply the installation (failurePolicy Fail); Ignore is for a lockout only, see docs/install.md#lockout")
		}
	}
	if c.cfg == nil {
		c.add(Fail, check, "cannot compare with the configuration, which could not be read", "fix the configuration first")
		return
	}
	var problems []string
	want := webhook.WebhookConfiguration(c.cfg, admissionregistrationv1.WebhookClientConfig{})
	for _, w := range want.Webhooks {
		i := slices.IndexFunc(live.Webhooks, func(l admissionregistrationv1.ValidatingWebhook) bool { return l.Name == w.Name })
		if i < 0 {
			problems = append(problems, "webhook "+w.Name+" is missing")
			continue
		}
		if d := webhookDiff(w, live.Webhooks[i]); len(d) > 0 {
			problems = append(problems, fmt.Sprintf("webhook %s differs in %s", w.Name, strings.Join(d, ", ")))
		}
	}
	for _, l := range live.Webhooks {
		if !slices.ContainsFunc(want.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool { return w.Name == l.Name }) {
			problems = append(problems, "extra webhook "+l.Name)
		}
	}
	if len(problems) > 0 {
		c.add(Fail, check, fmt.Sprintf("%s is not what the installed configuration generates: %s", webhook.ConfigurationName, strings.Join(problems, "; ")),
			"regenerate it (make manifests) and re-apply the installation")
		return
	}
	c.add(OK, check, fmt.Sprintf("%s matches the installed configuration (%d webhooks, failurePolicy Fail)", webhook.ConfigurationName, len(want.Webhooks)), "")
}

// webhookDiff names the fields in which live differs from want, the client config aside.
func webhookDiff(want, live admissionregistrationv1.ValidatingWebhook) []string {
	var d []string
	for _, f := range []struct {
		name      string
		want, got any
	}{
		{"rules", want.Rules, live.Rules},
		{"failurePolicy", want.FailurePolicy, live.FailurePolicy},
		{"matchPolicy", want.MatchPolicy, live.MatchPolicy},
		{"namespaceSelector", want.NamespaceSelector, live.NamespaceSelector},
		{"objectSelector", want.ObjectSelector, live.ObjectSelector},
		{"sideEffects", want.SideEffects, live.SideEffects},
		{"timeoutSeconds", want.TimeoutSeconds, live.TimeoutSeconds},
		{"matchConditions", want.MatchConditions, live.MatchConditions},
	} {
		if !equality.Semantic.DeepEqual(f.want, f.got) {
			d = append(d, f.name)
		}
	}
	return d
}

// servingCertificate checks the Certificate whose CA is injected, and the injected CA bundle.
func (c *checker) servingCertificate(ctx context.Context) {
	const check = "serving certificate"
	if c.vwc == nil {
		return
	}
	ref := c.vwc.Annotations[certManagerCAAnnotation]
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		c.add(Fail, check, fmt.Sprintf("%s has no %s annotation naming the serving Certificate", webhook.ConfigurationName, certManagerCAAnnotation), "re-apply the installation")
		return
	}
	u, err := c.Dynamic.Resource(certificatesGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		c.add(Fail, check, fmt.Sprintf("Certificate %s: %v", ref, err), "re-apply the installation")
		return
	}
	var crt cmapi.Certificate
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crt); err != nil {
		c.add(Fail, check, fmt.Sprintf("Certificate %s: %v", ref, err), "")
		return
	}
	h := webhook.CertificateReadiness(&crt, c.Now)
	switch {
	case !h.Ready:
		c.add(Fail, check, h.String(), fmt.Sprintf("kubectl -n %s describe certificate %s, and cert-manager's logs; the API server cannot call the guard without it", ns, name))
	case h.NotAfter != nil && h.NotAfter.Sub(c.Now) < 14*24*time.Hour:
		c.add(Warn, check, h.String(), fmt.Sprintf("it expires within 14 days and cert-manager renews 30 days ahead: cmctl renew -n %s %s", ns, name))
	default:
		c.add(OK, check, h.String(), "")
	}
	for _, w := range c.vwc.Webhooks {
		if svc := w.ClientConfig.Service; svc != nil {
			if errs := webhook.ValidateServingCertificate(&crt, types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}); len(errs) > 0 {
				c.add(Fail, check, fmt.Sprintf("Certificate %s does not cover Service %s/%s that webhook %s calls: %v", ref, svc.Namespace, svc.Name, w.Name, errs.ToAggregate()), "re-apply the installation")
			}
		}
		if msg := caBundleProblem(w.ClientConfig.CABundle, c.Now); msg != "" {
			c.add(Fail, "CA bundle", fmt.Sprintf("webhook %s: %s", w.Name, msg),
				fmt.Sprintf("check that cert-manager's CA injector runs and that %s is Ready; the API server cannot call the guard until it is injected", ref))
			continue
		}
	}
	if !slices.ContainsFunc(c.results, func(r Result) bool { return r.Check == "CA bundle" }) {
		c.add(OK, "CA bundle", fmt.Sprintf("injected into every webhook of %s", webhook.ConfigurationName), "")
	}
}

// caBundleProblem says what is wrong with an injected CA bundle, or "".
func caBundleProblem(bundle []byte, now time.Time) string {
	if len(bundle) == 0 {
		return "no CA bundle injected"
	}
	n := 0
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Sprintf("the CA bundle holds a bad certificate: %v", err)
		}
		if now.After(cert.NotAfter) {
			return fmt.Sprintf("the CA %q expired at %s", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		n++
	}
	if n == 0 {
		return "the CA bundle holds no PEM certificate"
	}
	return ""
}

// probeName is the ConfigMap the dry-run probe creates; nothing is stored.
const probeName = "driftless-doctor-probe"

// guardAnswers sends a server-side dry-run create in a protected namespace as the caller and
// expects the guard's own denial: proof that the API server calls the guard and trusts its
// certificate.
func (c *checker) guardAnswers(ctx context.Context) {
	const check = "guard reachable"
	if c.cfg == nil || c.vwc == nil {
		return
	}
	ns := "default"
	if len(c.cfg.Guard.ProtectedNamespaces) > 0 {
		ns = c.cfg.Guard.ProtectedNamespaces[0]
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: probeName, Namespace: ns}}
	_, err := c.Kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		c.add(Warn, check, fmt.Sprintf("a dry-run create of configmap %s in %s was allowed: your identity is exempt (or the guard is not enforcing), so this cannot show that the API server calls the guard", probeName, ns),
			"run doctor as a person the guard applies to")
	case strings.Contains(err.Error(), "failed calling webhook"):
		c.add(Fail, check, fmt.Sprintf("the API server cannot call the guard: %v", err),
			fmt.Sprintf("kubectl -n %s get pods,endpointslices; until a replica is ready, changes in protected namespaces are refused (docs/install.md#lockout)", c.Namespace))
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "driftless:"):
		c.add(OK, check, fmt.Sprintf("the API server called the guard, which denied a dry-run create of configmap %s in %s", probeName, ns), "")
	case apierrors.IsNotFound(err):
		c.add(Warn, check, fmt.Sprintf("protected namespace %s does not exist, so nothing was sent to the guard", ns), "create it, or fix guard.protectedNamespaces")
	default:
		c.add(Warn, check, fmt.Sprintf("a dry-run create of configmap %s in %s failed without reaching the guard: %v", probeName, ns, err), "run doctor as someone who may create ConfigMaps there")
	}
}

// selfProtection checks that the ValidatingAdmissionPolicy and its binding exist as the
// configuration generates them.
func (c *checker) selfProtection(ctx context.Context) {
	const check = "self-protection"
	if c.cfg == nil {
		return
	}
	wantPolicy, wantBinding := webhook.SelfProtection(c.cfg)
	api := c.Kube.AdmissionregistrationV1()
	fix := "re-apply the installation (the binding last); only RBAC guards these two objects"
	policy, err := api.ValidatingAdmissionPolicies().Get(ctx, wantPolicy.Name, metav1.GetOptions{})
	if err != nil {
		c.add(Fail, check, fmt.Sprintf("ValidatingAdmissionPolicy %s: %v", wantPolicy.Name, err), fix)
		return
	}
	binding, err := api.ValidatingAdmissionPolicyBindings().Get(ctx, wantBinding.Name, metav1.GetOptions{})
	if err != nil {
		msg := fmt.Sprintf("ValidatingAdmissionPolicyBinding %s: %v", wantBinding.Name, err)
		if apierrors.IsNotFound(err) {
			msg = fmt.Sprintf("ValidatingAdmissionPolicyBinding %s is missing: anyone with RBAC rights may change %s and the webhook configuration", wantBinding.Name, c.Namespace)
		}
		c.add(Fail, check, msg, fix)
		return
	}
	var d []string
	ws, ls := wantPolicy.Spec, policy.Spec
	for _, f := range []struct {
		name      string
		want, got any
	}{
		{"policy matchConstraints.resourceRules", ws.MatchConstraints.ResourceRules, ls.MatchConstraints.ResourceRules},
		{"policy variables", ws.Variables, ls.Variables},
		{"policy validations", ws.Validations, ls.Validations},
		{"policy matchConditions", ws.MatchConditions, ls.MatchConditions},
		{"binding policyName", wantBinding.Spec.PolicyName, binding.Spec.PolicyName},
		{"binding validationActions", wantBinding.Spec.ValidationActions, binding.Spec.ValidationActions},
	} {
		if !equality.Semantic.DeepEqual(f.want, f.got) {
			d = append(d, f.name)
		}
	}
	if len(d) > 0 {
		c.add(Fail, check, fmt.Sprintf("%s is not what the installed configuration generates: %s differ", webhook.SelfProtectionName, strings.Join(d, ", ")), fix)
		return
	}
	c.add(OK, check, fmt.Sprintf("ValidatingAdmissionPolicy and binding %s in place (%v)", webhook.SelfProtectionName, binding.Spec.ValidationActions), "")
}

// sources reports each GitSource's last sync from the status the reconciler keeps in it.
func (c *checker) sources(ctx context.Context) {
	list, err := c.Dynamic.Resource(v1alpha1.GitSourceGVR).Namespace(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.add(Fail, "sources", fmt.Sprintf("list GitSources in %s: %v", c.Namespace, err), "install the GitSource CRD (config/crd) and let the caller read gitsources")
		return
	}
	if len(list.Items) == 0 {
		c.add(Warn, "sources", "no GitSource in "+c.Namespace+": the reconciler applies nothing", "add a GitSource (docs/sources.md#bootstrap-the-first-gitsource)")
		return
	}
	for i := range list.Items {
		var gs v1alpha1.GitSource
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &gs); err != nil {
			c.add(Fail, "source "+list.Items[i].GetName(), err.Error(), "")
			continue
		}
		check := "source " + gs.Name
		interval := gs.Spec.Interval.Duration
		s, found, err := reconciler.ReadSourceStatus(ctx, c.Dynamic, c.Namespace, gs.Name)
		switch {
		case err != nil:
			c.add(Fail, check, err.Error(), "")
		case s.Suspension != nil:
			c.add(Warn, check, fmt.Sprintf("suspended (%s): no sync, no self-heal", s.Suspension.Reason), "resume it: set spec.suspend to false, or let the suspension expire")
		case !found || s.Result == "":
			c.add(Warn, check, "has not synced yet", fmt.Sprintf("wait one interval (%s); if it stays, check the driftless logs and the Lease in %s", interval, c.Namespace))
		case s.Result != reconciler.ResultApplied:
			c.add(Fail, check, fmt.Sprintf("last sync %s: %s", s.Result, s.Message), "driftless status shows the details; the cluster stays at the last good revision")
		case interval > 0 && c.Now.Sub(s.LastAttempt) > 3*interval:
			c.add(Warn, check, fmt.Sprintf("applied %s, but the last sync was %s ago (interval %s)", short(s.Revision), c.Now.Sub(s.LastAttempt).Truncate(time.Second), interval),
				"check that a replica holds the leader Lease and its logs")
		default:
			c.add(OK, check, fmt.Sprintf("%s applied, %d objects managed", short(s.Revision), s.ObjectsManaged), "")
		}
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
