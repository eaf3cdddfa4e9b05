package webhook

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// SelfProtectionName is the name of the ValidatingAdmissionPolicy that protects the Driftless
// installation and of the binding that puts it into effect.
const SelfProtectionName = "driftless-self-protection"

// SelfProtection builds the ValidatingAdmissionPolicy and its binding that keep everyone but
// Driftless's reconciler away from the Driftless installation: every create, update and
// delete of objects in the reconciler's namespace (and of that Namespace), of the guard's
// ValidatingWebhookConfiguration, and exec, attach and port-forward into its pods.
//
// The API server evaluates the policy itself, so it covers what the guard cannot: the API
// server never calls webhooks for webhook configurations, and the guard's own namespace stays
// exempt from the guard so that the guard's pods can always start. Allowed are the reconciler,
// Kubernetes' own controllers and nodes (the guard's list: kube-system service accounts,
// kube-controller-manager, kube-scheduler, system:nodes), the configured controller
// identities (cert-manager writes the serving certificate and injects its CA) and members of
// the break-glass groups. Evictions stay allowed so that nodes can be drained; the
// Deployment's PodDisruptionBudget limits them.
//
// The API server does not evaluate ValidatingAdmissionPolicies stored through its API for
// ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding objects (it exempts them to
// avoid circular dependencies), so neither this policy nor its binding is protected by it:
// RBAC must keep them. The binding's validation actions follow guard.mode: Deny for enforce,
// Warn and Audit for warn, Audit for dry-run.
func SelfProtection(c *v1alpha1.DriftlessConfig) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	namespace := c.Reconciler.ServiceAccount.Namespace
	ops := []admissionregistrationv1.OperationType{
		admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete,
	}
	rule := func(ops []admissionregistrationv1.OperationType, groups, versions, resources, names []string, scope admissionregistrationv1.ScopeType) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{
			ResourceNames: names,
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: ops,
				Rule: admissionregistrationv1.Rule{
					APIGroups: groups, APIVersions: versions, Resources: resources, Scope: ptr.To(scope),
				},
			},
		}
	}
	all := []string{"*"}
	labels := map[string]string{"app.kubernetes.io/name": "driftless"}
	vars := selfProtectionVariables(c)
	allowed := allowedExpression(vars)
	vars = append(append(vars, sourceAnnotationVariables()...), syncRequestVariable())
	allowed += " || variables.isSyncRequest"

	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: SelfProtectionName, Labels: labels},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				// The selector limits namespaced objects, and Namespace objects by their own
				// labels, to the Driftless namespace; cluster-scoped objects are never skipped by
				// it, so the webhook configuration rule below needs none.
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{namespace},
				}}},
				ObjectSelector: &metav1.LabelSelector{},
				MatchPolicy:    ptr.To(admissionregistrationv1.Equivalent),
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
					// */* is every resource and every subresource of it.
					rule(ops, all, all, []string{"*/*"}, nil, admissionregistrationv1.NamespacedScope),
					rule(ops, []string{""}, []string{"v1"}, []string{"namespaces"}, []string{namespace}, admissionregistrationv1.ClusterScope),
					rule(ops, []string{admissionregistrationv1.GroupName}, all, []string{"validatingwebhookconfigurations"}, []string{ConfigurationName}, admissionregistrationv1.ClusterScope),
					// A shell in a Driftless pod can read the reconciler's token.
					rule([]admissionregistrationv1.OperationType{admissionregistrationv1.Connect}, []string{""}, []string{"v1"},
						[]string{"pods/exec", "pods/attach", "pods/portforward"}, nil, admissionregistrationv1.NamespacedScope),
				},
				ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
					rule([]admissionregistrationv1.OperationType{admissionregistrationv1.Create}, []string{""}, []string{"v1"},
						[]string{"pods/eviction"}, nil, admissionregistrationv1.NamespacedScope),
				},
			},
			Variables: vars,
			Validations: []admissionregistrationv1.Validation{{
				Expression:        allowed,
				Message:           selfProtectionProblem(c) + " " + selfProtectionWaysForward(c),
				MessageExpression: selfProtectionMessageExpression(c),
				Reason:            ptr.To(metav1.StatusReasonForbidden),
			}, suspensionValidation(c)},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: SelfProtectionName, Labels: labels},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        SelfProtectionName,
			ValidationActions: validationActions(c.Guard.Mode),
		},
	}
	return policy, binding
}

// validationActions maps the guard's mode onto what the API server does with a failed
// validation.
func validationActions(m v1alpha1.Mode) []admissionregistrationv1.ValidationAction {
	switch m {
	case v1alpha1.ModeWarn:
		return []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit}
	case v1alpha1.ModeDryRun:
		return []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit}
	default:
		return []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	}
}

// selfProtectionVariables names each kind of identity the policy allows; allowedExpression
// joins them.
func selfProtectionVariables(c *v1alpha1.DriftlessConfig) []admissionregistrationv1.Variable {
	const user, groups = "request.userInfo.username", "request.userInfo.groups"
	inGroups := func(list []string) string {
		return fmt.Sprintf("(has(%s) && %s.exists(g, g in %s))", groups, groups, celList(list))
	}
	vars := []admissionregistrationv1.Variable{
		{Name: "isReconciler", Expression: fmt.Sprintf("%s == %s", user, celString(c.Reconciler.ServiceAccount.Username()))},
		{Name: "isKubernetes", Expression: fmt.Sprintf("%s.startsWith(%s) || %s in %s || (has(%s) && %s in %s)",
			user, celString(kubeSystemServiceAccountPrefix), user, celList([]string{kubeControllerManager, kubeScheduler}),
			groups, celString(nodesGroup), groups)},
	}
	ids := c.Guard.ControllerIdentities
	if len(ids.Usernames) > 0 || len(ids.Groups) > 0 {
		var parts []string
		if len(ids.Usernames) > 0 {
			parts = append(parts, fmt.Sprintf("%s in %s", user, celList(ids.Usernames)))
		}
		if len(ids.Groups) > 0 {
			parts = append(parts, inGroups(ids.Groups))
		}
		vars = append(vars, admissionregistrationv1.Variable{Name: "isController", Expression: strings.Join(parts, " || ")})
	}
	if len(c.Guard.BreakGlass.Groups) > 0 {
		vars = append(vars, admissionregistrationv1.Variable{Name: "isBreakGlass", Expression: inGroups(c.Guard.BreakGlass.Groups)})
	}
	return vars
}

// allowedExpression allows a request when any of the variables holds.
func allowedExpression(vars []admissionregistrationv1.Variable) string {
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = "variables." + v.Name
	}
	return strings.Join(names, " || ")
}

// selfProtectionProblem says why a change is refused. Admission policy messages are one line.
func selfProtectionProblem(c *v1alpha1.DriftlessConfig) string {
	return fmt.Sprintf("Driftless protects its own installation (namespace %s and webhook configuration %s): only its reconciler %s changes it.",
		c.Reconciler.ServiceAccount.Namespace, ConfigurationName, c.Reconciler.ServiceAccount.Username())
}

func selfProtectionWaysForward(c *v1alpha1.DriftlessConfig) string {
	const gitWay = "Ways forward: 1. Change the installation in Git and merge; Driftless applies it."
	if len(c.Guard.BreakGlass.Groups) == 0 {
		return gitWay + " 2. In an incident: break-glass is not enabled in this cluster (guard.breakGlass.groups is empty)."
	}
	return gitWay + fmt.Sprintf(" 2. In an incident, a member of %s may change it directly.", quoteList(c.Guard.BreakGlass.Groups))
}

// selfProtectionMessageExpression builds the denial in the guard's words (see facts.what): who,
// what, why and the ways forward, on one line.
func selfProtectionMessageExpression(c *v1alpha1.DriftlessConfig) string {
	// Empty request fields are absent, not empty: each is tested with has() first.
	what := "request.operation.lowerAscii() + ' ' + request.resource.resource" +
		" + (has(request.resource.group) && request.resource.group != '' ? '.' + request.resource.group : '')" +
		// Validating admission sees the generated name of a create with generateName.
		" + '/' + (has(request.name) ? request.name : '')" +
		" + (has(request.subResource) && request.subResource != '' ? ' (subresource ' + request.subResource + ')' : '')" +
		" + (has(request.namespace) && request.namespace != '' && request.resource.resource != 'namespaces' ? ' in namespace ' + request.namespace : '')"
	return "'driftless: ' + request.userInfo.username + ' may not ' + " + what + " + ': ' + " +
		celString(selfProtectionProblem(c)+" "+selfProtectionWaysForward(c))
}
