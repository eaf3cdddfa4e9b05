package webhook

import (
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Names of the generated webhook configuration and its webhooks.
const (
	ConfigurationName     = "driftless-guard"
	NamespacedWebhookName = "namespaced.guard.driftless.dev"
	ClusterWebhookName    = "cluster.guard.driftless.dev"
)

// TimeoutSeconds is how long the API server waits for the guard before failing the request.
const TimeoutSeconds int32 = 5

// namespaceNameLabel is set by the API server on every namespace and cannot be spoofed.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// WebhookConfiguration builds the ValidatingWebhookConfiguration that routes changes in
// protected scope to the guard served at client.
//
// It holds two webhooks. The namespaced one sees what Scope guards in protected namespaces:
// every create, update and delete of namespaced resources, the status, scale,
// ephemeralcontainers, resize and binding subresources, CONNECT to exec, attach, port-forward and
// proxy, and changes to the protected Namespace objects themselves; namespaces are
// selected by the API server's kubernetes.io/metadata.name label. The cluster one sees
// cluster-scoped objects that carry driftless.dev/source. Both skip the reconciler, Kubernetes'
// own controllers and nodes, configured controller identities and ignored resources through
// matchConditions, so the API server never calls the guard for them, and both fail closed.
func WebhookConfiguration(c *v1alpha1.DriftlessConfig, client admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.ValidatingWebhookConfiguration {
	all := []string{"*"}
	base := func(name string) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:                    name,
			ClientConfig:            client,
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			TimeoutSeconds:          ptr.To(TimeoutSeconds),
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions:         matchConditions(c),
		}
	}

	namespaced := base(NamespacedWebhookName)
	namespaced.Rules = scopeRules(admissionregistrationv1.NamespacedScope)
	// The Namespace objects of protected namespaces, selected by their own name.
	namespaced.Rules = append(namespaced.Rules, admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"namespaces", "namespaces/finalize", "namespaces/status"},
			Scope: ptr.To(admissionregistrationv1.ClusterScope),
		},
	})
	namespaced.NamespaceSelector = namespaceSelector(c.Guard)
	namespaced.ObjectSelector = &metav1.LabelSelector{}

	cluster := base(ClusterWebhookName)
	cluster.Rules = []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
		Rule: admissionregistrationv1.Rule{
			APIGroups: all, APIVersions: all, Resources: []string{"*", "*/status"}, Scope: ptr.To(admissionregistrationv1.ClusterScope),
		},
	}}
	cluster.NamespaceSelector = &metav1.LabelSelector{}
	cluster.ObjectSelector = &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: v1alpha1.LabelSource, Operator: metav1.LabelSelectorOpExists}},
	}

	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName, Labels: map[string]string{"app.kubernetes.io/name": "driftless"}},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{namespaced, cluster},
	}
}

// scopeRules are the webhook rules for the namespaced entries of Scope that guard an
// operation: one rule per API group and set of operations, in Scope's order.
func scopeRules(scope admissionregistrationv1.ScopeType) []admissionregistrationv1.RuleWithOperations {
	var out []admissionregistrationv1.RuleWithOperations
	index := map[string]int{}
	for _, e := range Scope() {
		if len(e.Guarded) == 0 || (e.Scope != scope && e.Scope != admissionregistrationv1.AllScopes) {
			continue
		}
		groups, res := []string{e.Group}, e.Resource
		if e.Resource == "*" {
			groups = []string{"*"}
		}
		if e.Subresource != "" {
			res += "/" + e.Subresource
		}
		key := fmt.Sprint(groups, e.Guarded)
		if i, ok := index[key]; ok {
			out[i].Resources = append(out[i].Resources, res)
			continue
		}
		index[key] = len(out)
		out = append(out, admissionregistrationv1.RuleWithOperations{
			Operations: slices.Clone(e.Guarded),
			Rule: admissionregistrationv1.Rule{
				APIGroups: groups, APIVersions: []string{"*"}, Resources: []string{res}, Scope: ptr.To(scope),
			},
		})
	}
	return out
}

func namespaceSelector(g v1alpha1.Guard) *metav1.LabelSelector {
	if len(g.ProtectedNamespaces) > 0 {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: slices.Sorted(slices.Values(g.ProtectedNamespaces)),
		}}}
	}
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: slices.Sorted(slices.Values(g.ExemptNamespaces)),
	}}}
}

// matchConditions are CEL expressions the API server evaluates before calling the guard; the
// guard is called only when all are true. They mirror the allow rows of the decision table
// that depend on identity alone, and the handler checks the same rows again.
func matchConditions(c *v1alpha1.DriftlessConfig) []admissionregistrationv1.MatchCondition {
	conds := []admissionregistrationv1.MatchCondition{
		reconcilerCondition(c),
		{
			Name: "not-kubernetes-components",
			Expression: fmt.Sprintf("!request.userInfo.username.startsWith(%s) && !(request.userInfo.username in [%s, %s]) && !(has(request.userInfo.groups) && %s in request.userInfo.groups)",
				celString(kubeSystemServiceAccountPrefix), celString(kubeControllerManager), celString(kubeScheduler), celString(nodesGroup)),
		},
	}
	ids := c.Guard.ControllerIdentities
	if len(ids.Usernames) > 0 || len(ids.Groups) > 0 {
		var parts []string
		if len(ids.Usernames) > 0 {
			parts = append(parts, fmt.Sprintf("request.userInfo.username in %s", celList(ids.Usernames)))
		}
		if len(ids.Groups) > 0 {
			parts = append(parts, fmt.Sprintf("(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in %s))", celList(ids.Groups)))
		}
		conds = append(conds, admissionregistrationv1.MatchCondition{
			Name:       "not-controller-identities",
			Expression: "!(" + strings.Join(parts, " || ") + ")",
		})
	}
	if len(c.Guard.IgnoredResources) > 0 {
		var parts []string
		for _, gr := range c.Guard.IgnoredResources {
			parts = append(parts, fmt.Sprintf("(request.resource.group == %s && request.resource.resource == %s)", celString(gr.Group), celString(gr.Resource)))
		}
		conds = append(conds, admissionregistrationv1.MatchCondition{
			Name:       "not-ignored-resources",
			Expression: "!(" + strings.Join(parts, " || ") + ")",
		})
	}
	return conds
}

// reconcilerCondition skips the reconciler; with an admission policy set, the reconciler's
// creates and updates of whole objects are still sent, so the policy checks them too.
func reconcilerCondition(c *v1alpha1.DriftlessConfig) admissionregistrationv1.MatchCondition {
	notReconciler := fmt.Sprintf("request.userInfo.username != %s", celString(c.Reconciler.ServiceAccount.Username()))
	if c.Guard.PolicySet == "" {
		return admissionregistrationv1.MatchCondition{Name: "not-the-reconciler", Expression: notReconciler}
	}
	return admissionregistrationv1.MatchCondition{
		Name:       "not-the-reconciler-unless-policy-applies",
		Expression: notReconciler + " || ((!has(request.subResource) || request.subResource == '') && (request.operation == 'CREATE' || request.operation == 'UPDATE'))",
	}
}

// celString quotes s as a CEL string literal.
func celString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func celList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = celString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
