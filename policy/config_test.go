package policy

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

func TestOptionsFromConfig(t *testing.T) {
	tests := []struct {
		name    string
		ps      v1alpha1.PolicySet
		want    Options
		wantEnv string
		wantErr []string
	}{
		{
			name: "empty set is the whole library",
			ps:   v1alpha1.PolicySet{Name: "default"},
			want: Options{},
		},
		{
			name: "every field",
			ps: v1alpha1.PolicySet{
				Name:        "production",
				Library:     v1alpha1.Library{Disabled: true, DisabledRules: []string{"readiness_probe"}},
				Paths:       []string{"/etc/driftless/policies"},
				Packages:    []string{"main", "team.labels"},
				Environment: "production",
				Parameters: map[string]json.RawMessage{
					"allowed_registries": json.RawMessage(`["registry.example.com"]`),
					"min_replicas":       json.RawMessage(`3`),
					"big":                json.RawMessage(`9007199254740993`),
					"team":               json.RawMessage(` "shop" `),
					"limits":             json.RawMessage(`{"cpu": "1", "strict": true, "none": null}`),
				},
			},
			want: Options{
				DisableLibrary: true,
				DisabledRules:  []string{"readiness_probe"},
				Paths:          []string{"/etc/driftless/policies"},
				Namespaces:     []string{"main", "team.labels"},
				Parameters: map[string]any{
					"allowed_registries": []any{"registry.example.com"},
					"min_replicas":       json.Number("3"),
					"big":                json.Number("9007199254740993"),
					"team":               "shop",
					"limits":             map[string]any{"cpu": "1", "strict": true, "none": nil},
				},
			},
			wantEnv: "production",
		},
		{
			name: "invalid parameters are all named",
			ps: v1alpha1.PolicySet{
				Name: "production",
				Parameters: map[string]json.RawMessage{
					"ok":       json.RawMessage(`1`),
					"zz_empty": json.RawMessage(``),
					"broken":   json.RawMessage(`["a",`),
					"trailing": json.RawMessage(`1 2`),
				},
			},
			wantErr: []string{
				"policySets[production].parameters.broken: invalid JSON",
				"policySets[production].parameters.trailing: invalid JSON: data after the value",
				"policySets[production].parameters.zz_empty: empty value, want JSON",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ec, err := OptionsFromConfig(tt.ps)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("OptionsFromConfig() error = nil, want %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("OptionsFromConfig() error = %q, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("OptionsFromConfig() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("OptionsFromConfig() options = %#v, want %#v", got, tt.want)
			}
			if ec.Environment != tt.wantEnv {
				t.Errorf("OptionsFromConfig() environment = %q, want %q", ec.Environment, tt.wantEnv)
			}
		})
	}
}

func TestOptionsFromConfigDoesNotAlias(t *testing.T) {
	ps := v1alpha1.PolicySet{
		Name:     "p",
		Library:  v1alpha1.Library{DisabledRules: []string{"a"}},
		Paths:    []string{"x"},
		Packages: []string{"main"},
	}
	opts, _, err := OptionsFromConfig(ps)
	if err != nil {
		t.Fatalf("OptionsFromConfig() error = %v", err)
	}
	opts.DisabledRules[0], opts.Paths[0], opts.Namespaces[0] = "changed", "changed", "changed"
	if ps.Library.DisabledRules[0] != "a" || ps.Paths[0] != "x" || ps.Packages[0] != "main" {
		t.Errorf("changing the options changed the policy set: %+v", ps)
	}
}

// TestOptionsFromConfigLoads decodes a DriftlessConfig the way every caller
// does and checks that the mapped set decides as configured: parameters,
// disabled rules, user packages and the environment all take effect.
func TestOptionsFromConfigLoads(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "policies/labels.rego", `package team.labels

deny contains msg if {
	input.kind == "Deployment"
	not input.metadata.labels.team
	msg := "team label missing"
}
`)
	cfgPath := writeFile(t, dir, "driftless.yaml", `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
policySets:
  - name: production
    environment: production
    library:
      disabledRules: [readiness_probe]
    paths: [policies]
    packages: [team.labels]
    parameters:
      allowed_registries: [registry.example.com]
      min_replicas: 4
`)
	cfg, err := v1alpha1.Load(cfgPath)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	opts, ec, err := OptionsFromConfig(cfg.PolicySets[0])
	if err != nil {
		t.Fatalf("OptionsFromConfig() error = %v", err)
	}
	if want := filepath.Join(dir, "policies"); len(opts.Paths) != 1 || opts.Paths[0] != want {
		t.Fatalf("paths = %q, want [%q]", opts.Paths, want)
	}
	e := loadEngine(t, opts)

	deployment := manifest(t, "deployment.yaml")
	deployment = setPath(t, deployment, "spec.template.spec.containers.0.readinessProbe", remove{})
	tests := []struct {
		name string
		obj  map[string]any
		ec   EvalContext
		want []string
	}{
		{
			name: "configured environment and parameters",
			obj:  deployment,
			ec:   ec,
			want: []string{"allowed_registries", "production_replicas", "team.labels.deny"},
		},
		{
			name: "outside production",
			obj:  setPath(t, deployment, "metadata.labels.team", "shop"),
			ec:   EvalContext{Environment: "staging"},
			want: []string{"allowed_registries"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Evaluate(t.Context(), tt.obj, tt.ec)
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if got := firedRules(res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fired rules = %q, want %q (violations %v)", got, tt.want, res.Violations)
			}
		})
	}
}
