package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
)

const policyConfig = testConfig + `  policySet: production
policySets:
  - name: production
    environment: production
`

const teamPolicy = `package main

deny contains msg if {
	input.kind == "ConfigMap"
	not input.metadata.labels.team
	msg := sprintf("ConfigMap %s has no team label", [input.metadata.name])
}

warn contains msg if {
	input.kind == "ConfigMap"
	not input.data.owner
	msg := "ConfigMap has no owner key"
}
`

func newPolicyGuard(t *testing.T, mode v1alpha1.Mode) *Guard {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "team.rego"), []byte(teamPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	engine := policy.New()
	if err := engine.Load(t.Context(), policy.Options{DisableLibrary: true, Paths: []string{dir}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := v1alpha1.Decode([]byte(policyConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Guard.Mode = mode
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(Options{Config: cfg, Clock: clocktesting.NewFakePassiveClock(now), Metrics: m, Policy: engine})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func configMap(labels map[string]string, data map[string]string) runtime.RawExtension {
	raw, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "payment-config", "namespace": "production", "labels": labels},
		"data":     data,
	})
	return runtime.RawExtension{Raw: raw}
}

func TestAdmissionPolicy(t *testing.T) {
	reconciler := "system:serviceaccount:driftless-system:driftless"
	tests := []struct {
		name     string
		user     string
		groups   []string
		ns       string
		object   runtime.RawExtension
		allowed  bool
		reason   Reason
		messages []string
		warnings []string
	}{
		{"reconciler, violating", reconciler, nil, "production", configMap(map[string]string{v1alpha1.LabelSource: "platform"}, nil), false, ReasonPolicy,
			[]string{`policy set "production" denies it (1 violation(s))`, "ConfigMap payment-config has no team label", "driftless check --config <driftless.yaml> --policy-set production"}, []string{"policy warn (main): ConfigMap has no owner key"}},
		{"reconciler, compliant with a warning", reconciler, nil, "production", configMap(map[string]string{"team": "payments"}, nil), true, ReasonReconciler, nil,
			[]string{"policy warn (main): ConfigMap has no owner key"}},
		{"reconciler, compliant", reconciler, nil, "production", configMap(map[string]string{"team": "payments"}, map[string]string{"owner": "x"}), true, ReasonReconciler, nil, nil},
		{"reconciler, unprotected namespace is not checked", reconciler, nil, "sandbox", configMap(nil, nil), true, ReasonReconciler, nil, nil},
		{"alice updating under break-glass, violating", "alice", alice, "production", func() runtime.RawExtension {
			raw, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{
				"name": "payment-config", "annotations": breakGlassObj("INC-1", now.Add(600e9)).annotations}})
			return runtime.RawExtension{Raw: raw}
		}(), false, ReasonPolicy, []string{"no team label"}, []string{"policy warn (main): ConfigMap has no owner key"}},
		{"bob is denied by the guard first", "bob", bob, "production", configMap(nil, nil), false, ReasonProtected, []string{"namespace \"production\" is protected"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newPolicyGuard(t, v1alpha1.ModeEnforce)
			op := admissionv1.Create
			if tt.user == "alice" {
				// Break-glass covers objects that exist: an update.
				op = admissionv1.Update
			}
			req := request{user: tt.user, groups: tt.groups, op: op, ns: tt.ns, object: &obj{}, oldObject: breakGlassObj("INC-1", now.Add(600e9))}.build()
			req.Object = tt.object
			resp := g.Handle(t.Context(), req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tt.allowed, resp.Result.Message)
			}
			result := ResultAllowed
			if !tt.allowed {
				result = ResultDenied
			}
			if got := testutil.ToFloat64(g.metrics.decisions.WithLabelValues(string(result), string(tt.reason))); got != 1 {
				t.Errorf("decisions{%s,%s} = %v, want 1", result, tt.reason, got)
			}
			for _, m := range tt.messages {
				if !strings.Contains(resp.Result.Message, m) {
					t.Errorf("message does not contain %q:\n%s", m, resp.Result.Message)
				}
			}
			if strings.Join(resp.Warnings, "\n") != strings.Join(tt.warnings, "\n") {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tt.warnings)
			}
		})
	}
}

func TestAdmissionPolicyFailsClosed(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(policyConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewGuard(Options{Config: cfg, Metrics: m}); err == nil {
		t.Fatal("a guard with a policy set but no engine was created")
	}
	// An engine that never loaded a policy: the reconciler's write is denied, not allowed.
	g, err := NewGuard(Options{Config: cfg, Metrics: m, Policy: policy.New()})
	if err != nil {
		t.Fatal(err)
	}
	req := request{user: "system:serviceaccount:driftless-system:driftless", op: admissionv1.Create, ns: "production", object: &obj{}}.build()
	resp := g.Handle(t.Context(), req)
	if resp.Allowed || resp.Result.Code != 500 || !strings.Contains(resp.Result.Message, "no compiled policy") {
		t.Fatalf("allowed=%v code=%d message=%q, want a 500 denial", resp.Allowed, resp.Result.Code, resp.Result.Message)
	}
}

func TestPolicyModes(t *testing.T) {
	for _, tt := range []struct {
		mode    v1alpha1.Mode
		allowed bool
	}{{v1alpha1.ModeEnforce, false}, {v1alpha1.ModeWarn, true}, {v1alpha1.ModeDryRun, true}} {
		t.Run(string(tt.mode), func(t *testing.T) {
			g := newPolicyGuard(t, tt.mode)
			req := request{user: "system:serviceaccount:driftless-system:driftless", op: admissionv1.Create, ns: "production", object: &obj{}}.build()
			req.Object = configMap(nil, nil)
			if resp := g.Handle(t.Context(), req); resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v", resp.Allowed, tt.allowed)
			}
		})
	}
}
