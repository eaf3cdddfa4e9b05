package install

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/reconciler/render"
)

// promtool runs Prometheus's promtool. It is required, not skipped when missing: .ci/run installs
// it (Debian's prometheus package), and a monitoring test that skips everywhere proves nothing.
func promtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed to test config/monitoring: apt-get install prometheus (.ci/run does): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// monitoring renders config/monitoring and returns the PrometheusRule's rule groups as a plain
// Prometheus rule file, and the dashboard JSON.
func monitoring(t *testing.T) (rules []byte, dashboard []byte) {
	t.Helper()
	objs, err := render.Render(t.Context(), root, "config/monitoring")
	if err != nil {
		t.Fatalf("render config/monitoring: %v", err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
		switch o.GetKind() {
		case "PrometheusRule":
			spec, ok, _ := unstructured.NestedMap(o.Object, "spec")
			if !ok {
				t.Fatalf("PrometheusRule %s has no spec", o.GetName())
			}
			if rules, err = yaml.Marshal(spec); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			d, _, _ := unstructured.NestedString(o.Object, "data", "driftless.json")
			dashboard = []byte(d)
		}
	}
	want := []string{"ConfigMap/driftless-dashboard", "PrometheusRule/driftless", "ServiceMonitor/driftless"}
	slices.Sort(kinds)
	if !slices.Equal(kinds, want) {
		t.Fatalf("config/monitoring renders %v, want %v", kinds, want)
	}
	return rules, dashboard
}

// TestMonitoringRules checks the alert rules with promtool and runs their unit tests
// (config/monitoring/rules_test.yaml); a rule changed so that its test no longer holds must fail
// them.
func TestMonitoringRules(t *testing.T) {
	rules, _ := monitoring(t)
	tests, err := os.ReadFile(filepath.Join(root, "config", "monitoring", "rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, rules []byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("promtool check rules", func(t *testing.T) {
		out, err := promtool(t, write(t, rules), "check", "rules", "rules.yaml")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "SUCCESS: 12 rules found") {
			t.Errorf("promtool check rules:\n%s", out)
		}
	})
	t.Run("promtool test rules", func(t *testing.T) {
		if out, err := promtool(t, write(t, rules), "test", "rules", "rules_test.yaml"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("a changed threshold fails the unit tests", func(t *testing.T) {
		changed := bytes.Replace(rules, []byte(`{result="denied"}[10m])) > 30`), []byte(`{result="denied"}[10m])) > 300`), 1)
		if bytes.Equal(changed, rules) {
			t.Fatal("the denials threshold is not in the rules")
		}
		out, err := promtool(t, write(t, changed), "test", "rules", "rules_test.yaml")
		if err == nil || !strings.Contains(out, "DriftlessDenialsSpike") {
			t.Fatalf("promtool test rules passes a broken DriftlessDenialsSpike: %v\n%s", err, out)
		}
	})
}

// metricName matches the metric names the rules and the dashboard use.
var metricName = regexp.MustCompile(`\b(driftless|controller_runtime|certmanager)_[a-z_]+`)

// TestMonitoringMetricsExist checks that every metric the rules and the dashboard query is one
// the code exports: Driftless's own (defined in webhook, reconciler and internal/server),
// controller-runtime's webhook metrics and cert-manager's certificate metrics, each found as a
// string literal in the source of the module that defines it.
func TestMonitoringMetricsExist(t *testing.T) {
	rules, dashboard := monitoring(t)
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	exprs := string(rules)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs += "\n" + tg.Expr
		}
	}
	names := metricName.FindAllString(exprs, -1)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) < 10 {
		t.Fatalf("found only %v in the rules and the dashboard", names)
	}

	sources := map[string][]string{
		"driftless":          {filepath.Join(root, "webhook"), filepath.Join(root, "reconciler"), filepath.Join(root, "internal", "server")},
		"controller_runtime": {filepath.Join(moduleDir(t, "sigs.k8s.io/controller-runtime"), "pkg")},
		"certmanager":        {filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager"), "internal", "collectors")},
	}
	code := map[string]string{}
	for prefix, dirs := range sources {
		var b strings.Builder
		for _, dir := range dirs {
			err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
					return err
				}
				data, err := os.ReadFile(p)
				b.Write(data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		code[prefix] = b.String()
	}
	for _, name := range names {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		prefix, _, _ := strings.Cut(base, "_")
		if strings.HasPrefix(base, "controller_runtime_") {
			prefix = "controller_runtime"
		}
		if !strings.Contains(code[prefix], `"`+base+`"`) {
			t.Errorf("%s is queried but not defined in %v", name, sources[prefix])
		}
	}
}

func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find module %s: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}
