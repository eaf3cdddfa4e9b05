package webhook

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

func decodeConfig(t *testing.T, data string) *v1alpha1.DriftlessConfig {
	t.Helper()
	cfg, err := v1alpha1.Decode([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const selfProtectionConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  protectedNamespaces: [production]
  controllerIdentities:
    usernames: [system:serviceaccount:cert-manager:cert-manager]
    groups: [platform:controllers]
  breakGlass:
    groups: [oncall]
`

// TestSelfProtectionGolden pins the whole generated policy and binding; -update rewrites it.
func TestSelfProtectionGolden(t *testing.T) {
	policy, binding := SelfProtection(decodeConfig(t, selfProtectionConfig))
	var got bytes.Buffer
	for _, obj := range []any{policy, binding} {
		out, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString("---\n")
		got.Write(out)
	}
	golden := filepath.Join("testdata", "self-protection.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("SelfProtection differs from %s (run with -update and review the diff):\n%s", golden, got.String())
	}
}

func TestSelfProtection(t *testing.T) {
	const base = "apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\n"
	tests := []struct {
		name        string
		config      string
		wantActions []admissionregistrationv1.ValidationAction
		// wantVariables are the variables' names, in order.
		wantVariables []string
		// wantIn are substrings of the variables' expressions, joined with newlines.
		wantIn []string
		// wantMessage are substrings of the static message.
		wantMessage   []string
		wantNamespace string
	}{
		{
			name:          "defaults",
			config:        base,
			wantActions:   []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			wantVariables: []string{"isReconciler", "isKubernetes"},
			wantIn: []string{
				"request.userInfo.username == 'system:serviceaccount:driftless-system:driftless'",
				"k == 'driftless.dev/reconcile-requested-at'",
				"object.spec == oldObject.spec",
				"startsWith('system:serviceaccount:kube-system:')",
				"['system:kube-controller-manager', 'system:kube-scheduler']",
				"'system:nodes' in request.userInfo.groups",
			},
			wantMessage:   []string{"break-glass is not enabled in this cluster (guard.breakGlass.groups is empty)"},
			wantNamespace: "driftless-system",
		},
		{
			name: "other reconciler namespace, warn",
			config: base + `reconciler:
  serviceAccount: {namespace: gitops, name: applier}
guard:
  mode: warn
`,
			wantActions:   []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit},
			wantVariables: []string{"isReconciler", "isKubernetes"},
			wantIn:        []string{"request.userInfo.username == 'system:serviceaccount:gitops:applier'"},
			wantMessage:   []string{"(namespace gitops and webhook configuration driftless-guard)", "system:serviceaccount:gitops:applier"},
			wantNamespace: "gitops",
		},
		{
			name: "dry-run with controllers and break-glass",
			config: base + `guard:
  mode: dry-run
  controllerIdentities:
    usernames: [system:serviceaccount:cert-manager:cert-manager]
    groups: [platform:controllers]
  breakGlass:
    groups: [oncall, "sre's"]
`,
			wantActions:   []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit},
			wantVariables: []string{"isReconciler", "isKubernetes", "isController", "isBreakGlass"},
			wantIn: []string{
				"request.userInfo.username in ['system:serviceaccount:cert-manager:cert-manager']",
				"request.userInfo.groups.exists(g, g in ['platform:controllers'])",
				`request.userInfo.groups.exists(g, g in ['oncall', 'sre\'s'])`,
			},
			wantMessage:   []string{`a member of group "oncall" or group "sre's" may change it directly`},
			wantNamespace: "driftless-system",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy, binding := SelfProtection(decodeConfig(t, tt.config))

			if binding.Spec.PolicyName != policy.Name || policy.Name != SelfProtectionName || binding.Name != SelfProtectionName {
				t.Errorf("names: policy %q, binding %q for %q, want %q", policy.Name, binding.Name, binding.Spec.PolicyName, SelfProtectionName)
			}
			if !slices.Equal(binding.Spec.ValidationActions, tt.wantActions) {
				t.Errorf("validationActions = %v, want %v", binding.Spec.ValidationActions, tt.wantActions)
			}

			var names, exprs []string
			for _, v := range policy.Spec.Variables {
				names = append(names, v.Name)
				exprs = append(exprs, v.Expression)
			}
			// Every configuration has the GitSource helpers after the identities.
			wantNames := append(slices.Clone(tt.wantVariables), "annotations", "oldAnnotations", "isSyncRequest")
			if !slices.Equal(names, wantNames) {
				t.Errorf("variables = %q, want %q", names, wantNames)
			}
			joined := strings.Join(exprs, "\n")
			for _, want := range tt.wantIn {
				if !strings.Contains(joined, want) {
					t.Errorf("variables do not contain %q:\n%s", want, joined)
				}
			}

			if len(policy.Spec.Validations) != 2 {
				t.Fatalf("got %d validations, want 2 (who may change the installation; whole suspensions)", len(policy.Spec.Validations))
			}
			v := policy.Spec.Validations[0]
			wantExpr := "variables." + strings.Join(append(slices.Clone(tt.wantVariables), "isSyncRequest"), " || variables.")
			if v.Expression != wantExpr {
				t.Errorf("expression = %q, want %q", v.Expression, wantExpr)
			}
			for _, want := range tt.wantMessage {
				if !strings.Contains(v.Message, want) {
					t.Errorf("message does not contain %q:\n%s", want, v.Message)
				}
			}
			if strings.Contains(v.Message, "\n") || strings.Contains(v.MessageExpression, "\n") {
				t.Error("admission policy messages must be one line")
			}

			sel := policy.Spec.MatchConstraints.NamespaceSelector.MatchExpressions
			if len(sel) != 1 || sel[0].Key != namespaceNameLabel || !slices.Equal(sel[0].Values, []string{tt.wantNamespace}) {
				t.Errorf("namespaceSelector = %+v, want %s in [%s]", sel, namespaceNameLabel, tt.wantNamespace)
			}
			var namespaceRule, webhookRule bool
			for _, r := range policy.Spec.MatchConstraints.ResourceRules {
				switch {
				case slices.Equal(r.Resources, []string{"namespaces"}):
					namespaceRule = slices.Equal(r.ResourceNames, []string{tt.wantNamespace})
				case slices.Equal(r.Resources, []string{"validatingwebhookconfigurations"}):
					webhookRule = slices.Equal(r.ResourceNames, []string{ConfigurationName})
				}
			}
			if !namespaceRule || !webhookRule {
				t.Errorf("rules for namespace %s: %v, for webhook configuration %s: %v; want both", tt.wantNamespace, namespaceRule, ConfigurationName, webhookRule)
			}
		})
	}
}
