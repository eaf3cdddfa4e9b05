package app

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/policy/report"
)

// checkViolating runs check on the production and staging overlays of a violating copy of
// the sample with the given extra arguments and returns stdout; the check must fail.
func checkViolating(t *testing.T, args ...string) (string, string) {
	t.Helper()
	dir := violatingSample(t)
	full := append([]string{"check", "--config", filepath.Join(dir, "driftless.yaml")}, args...)
	full = append(full, filepath.Join(dir, "overlays", "production"), filepath.Join(dir, "overlays", "staging"))
	got := runDriftless(t, full...)
	if got.code != 1 {
		t.Fatalf("exit code = %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	return got.stdout, dir
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, v any, where string) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: got %T, want a JSON object", where, v)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestJSONReportSchema pins the documented schema of --output json: every field at every
// level, and that the document decodes strictly into Report.
func TestJSONReportSchema(t *testing.T) {
	out, _ := checkViolating(t, "--output", "json")

	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	sorted := func(s ...string) []string { sort.Strings(s); return s }
	expectKeys := func(v any, where string, want []string, optional ...string) {
		t.Helper()
		got := slices.DeleteFunc(keys(t, v, where), func(k string) bool { return slices.Contains(optional, k) })
		if !slices.Equal(got, want) {
			t.Errorf("%s keys = %q, want %q", where, got, want)
		}
	}
	expectKeys(doc, "report", sorted("apiVersion", "kind", "environment", "failOnWarn", "passed", "summary", "rules", "targets"))
	expectKeys(doc["summary"], "summary", sorted("targets", "objects", "denials", "warnings"))
	if doc["apiVersion"] != "driftless.dev/v1alpha1" || doc["kind"] != "CheckReport" || doc["passed"] != false || doc["environment"] != "production" {
		t.Errorf("header = %v %v passed=%v environment=%v", doc["apiVersion"], doc["kind"], doc["passed"], doc["environment"])
	}
	rules, _ := doc["rules"].([]any)
	if len(rules) == 0 {
		t.Fatalf("rules = %v, want the evaluated rules", doc["rules"])
	}
	for i, r := range rules {
		expectKeys(r, fmt.Sprintf("rules[%d]", i), sorted("id", "package", "rule", "severity", "title", "description"))
	}
	targets, _ := doc["targets"].([]any)
	if len(targets) != 2 {
		t.Fatalf("targets = %d, want 2", len(targets))
	}
	violations := 0
	for _, tg := range targets {
		expectKeys(tg, "target", sorted("path", "objects"))
		for _, o := range tg.(map[string]any)["objects"].([]any) {
			expectKeys(o, "object", sorted("file", "line", "kustomization", "apiVersion", "kind", "namespace", "name", "violations"))
			for _, v := range o.(map[string]any)["violations"].([]any) {
				expectKeys(v, "violation", sorted("ruleId", "package", "rule", "severity", "message"), "details")
				violations++
			}
		}
	}

	var decoded report.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&decoded); err != nil {
		t.Fatalf("decode into Report: %v", err)
	}
	want := report.Summary{Targets: 2, Objects: 6, Denials: 5, Warnings: 2}
	if decoded.Summary != want {
		t.Errorf("summary = %+v, want %+v", decoded.Summary, want)
	}
	if violations != want.Denials+want.Warnings {
		t.Errorf("violations listed = %d, want %d", violations, want.Denials+want.Warnings)
	}
	dep := decoded.Targets[0].Objects[1]
	if dep.Kind != "Deployment" || dep.Namespace != "production" || dep.Name != "payment-gateway" || dep.File != "base/deployment.yaml" || dep.Line != 1 || dep.Kustomization != "overlays/production" {
		t.Errorf("production Deployment = %+v", dep)
	}
	if len(dep.Violations) == 0 || dep.Violations[0].RuleID != "images_pinned" || dep.Violations[0].Details["container"] != "gateway" {
		t.Errorf("production Deployment violations = %+v, want images_pinned first with details", dep.Violations)
	}
}

type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name      string `xml:"name,attr"`
		Tests     int    `xml:"tests,attr"`
		Failures  int    `xml:"failures,attr"`
		TestCases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			File      string `xml:"file,attr"`
			Line      int    `xml:"line,attr"`
			Failures  []struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitReport(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// wantFailures are "suite/testcase: type message-prefix" per failure.
		wantFailures []string
		wantOut      []string
	}{
		{
			name: "a failure per denial, warnings as output",
			wantFailures: []string{
				"production/ConfigMap production/payment-gateway-config: deny main.deny: ConfigMap payment-gateway-config in production has no owner label",
				"production/Deployment production/payment-gateway: deny images_pinned: Deployment/payment-gateway:",
				"production/Deployment production/payment-gateway: deny no_privileged: Deployment/payment-gateway:",
				"staging/Deployment staging/payment-gateway: deny images_pinned: Deployment/payment-gateway:",
				"staging/Deployment staging/payment-gateway: deny no_privileged: Deployment/payment-gateway:",
			},
			wantOut: []string{
				"production/Deployment production/payment-gateway: base/deployment.yaml:1: warn main.warn:",
				"staging/Deployment staging/payment-gateway: base/deployment.yaml:1: warn main.warn:",
			},
		},
		{
			name: "--fail-on-warn makes warnings failures",
			args: []string{"--fail-on-warn"},
			wantFailures: []string{
				"production/ConfigMap production/payment-gateway-config: deny main.deny: ConfigMap payment-gateway-config in production has no owner label",
				"production/Deployment production/payment-gateway: deny images_pinned: Deployment/payment-gateway:",
				"production/Deployment production/payment-gateway: deny no_privileged: Deployment/payment-gateway:",
				"production/Deployment production/payment-gateway: warn main.warn: Deployment payment-gateway does not set",
				"staging/Deployment staging/payment-gateway: deny images_pinned: Deployment/payment-gateway:",
				"staging/Deployment staging/payment-gateway: deny no_privileged: Deployment/payment-gateway:",
				"staging/Deployment staging/payment-gateway: warn main.warn: Deployment payment-gateway does not set",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, dir := checkViolating(t, append([]string{"--output", "junit"}, tt.args...)...)
			var doc junitDoc
			if err := xml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("output is not XML: %v\n%s", err, out)
			}
			if len(doc.Suites) != 2 || doc.Tests != 6 {
				t.Fatalf("suites = %d, tests = %d, want 2 suites (one per PATH) of 6 tests", len(doc.Suites), doc.Tests)
			}
			var failures, output []string
			failedCases := 0
			for _, s := range doc.Suites {
				suite := filepath.Base(s.Name)
				if want := filepath.Join(dir, "overlays", suite); s.Name != want {
					t.Errorf("suite name = %q, want the PATH %q", s.Name, want)
				}
				if s.Tests != 3 || len(s.TestCases) != 3 {
					t.Errorf("suite %s: tests = %d with %d testcases, want one per object (3)", suite, s.Tests, len(s.TestCases))
				}
				suiteFailed := 0
				for _, tc := range s.TestCases {
					if tc.File == "" || tc.Classname != tc.File {
						t.Errorf("testcase %s: file %q, classname %q", tc.Name, tc.File, tc.Classname)
					}
					for _, f := range tc.Failures {
						if !strings.HasPrefix(f.Message, strings.SplitN(f.Text, " ", 4)[2]) {
							t.Errorf("failure message %q does not start with its rule (text %q)", f.Message, f.Text)
						}
						failures = append(failures, suite+"/"+tc.Name+": "+f.Type+" "+f.Message)
					}
					if len(tc.Failures) > 0 {
						suiteFailed++
					}
					for _, line := range strings.Split(strings.TrimSpace(tc.SystemOut), "\n") {
						if line != "" {
							output = append(output, suite+"/"+tc.Name+": "+line)
						}
					}
				}
				if s.Failures != suiteFailed {
					t.Errorf("suite %s: failures = %d, want %d failing testcases", suite, s.Failures, suiteFailed)
				}
				failedCases += suiteFailed
			}
			if doc.Failures != failedCases {
				t.Errorf("testsuites failures = %d, want %d", doc.Failures, failedCases)
			}
			if len(failures) != len(tt.wantFailures) {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(tt.wantFailures, "\n"))
			}
			for i := range min(len(failures), len(tt.wantFailures)) {
				if !strings.HasPrefix(failures[i], tt.wantFailures[i]) {
					t.Errorf("failure %d = %q, want prefix %q", i, failures[i], tt.wantFailures[i])
				}
			}
			if len(output) != len(tt.wantOut) {
				t.Errorf("system-out:\n%s\nwant:\n%s", strings.Join(output, "\n"), strings.Join(tt.wantOut, "\n"))
			}
			for i := range min(len(output), len(tt.wantOut)) {
				if !strings.HasPrefix(output[i], tt.wantOut[i]) {
					t.Errorf("system-out %d = %q, want prefix %q", i, output[i], tt.wantOut[i])
				}
			}
		})
	}
}

type sarifDoc struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					FullDescription struct {
						Text string `json:"text"`
					} `json:"fullDescription"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

func TestSARIFReport(t *testing.T) {
	out, _ := checkViolating(t, "--output", "sarif")
	var doc sarifDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if doc.Version != "2.1.0" || !strings.Contains(doc.Schema, "sarif-2.1.0") || len(doc.Runs) != 1 {
		t.Fatalf("version %q, schema %q, %d runs; want SARIF 2.1.0 with one run", doc.Version, doc.Schema, len(doc.Runs))
	}
	run := doc.Runs[0]
	if run.Tool.Driver.Name != "driftless" {
		t.Errorf("driver name = %q", run.Tool.Driver.Name)
	}

	lib, err := policy.Library()
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for i, r := range run.Tool.Driver.Rules {
		if _, dup := rules[r.ID]; dup {
			t.Errorf("rule %s listed twice", r.ID)
		}
		rules[r.ID] = i
		if r.ShortDescription.Text == "" || r.FullDescription.Text == "" {
			t.Errorf("rule %s has no description", r.ID)
		}
	}
	for _, lr := range lib {
		i, ok := rules[lr.Name]
		if !ok {
			t.Errorf("library rule %s missing from driver rules", lr.Name)
			continue
		}
		r := run.Tool.Driver.Rules[i]
		if r.ShortDescription.Text != lr.Title || r.FullDescription.Text != lr.Description || r.DefaultConfiguration.Level != "error" {
			t.Errorf("rule %s = %+v, want the library's title and description at level error", lr.Name, r)
		}
	}
	for _, id := range []string{"main.deny", "main.warn"} {
		if _, ok := rules[id]; !ok {
			t.Errorf("user rule %s missing from driver rules", id)
		}
	}

	type want struct{ ruleID, level, uri, text string }
	var got []want
	for _, r := range run.Results {
		if i, ok := rules[r.RuleID]; !ok || i != r.RuleIndex {
			t.Errorf("result ruleId %s ruleIndex %d does not point at its rule", r.RuleID, r.RuleIndex)
		}
		if len(r.Locations) != 1 {
			t.Fatalf("result %s has %d locations, want 1", r.RuleID, len(r.Locations))
		}
		pl := r.Locations[0].PhysicalLocation
		if pl.Region == nil || pl.Region.StartLine != 1 {
			t.Errorf("result %s region = %+v, want startLine 1", r.RuleID, pl.Region)
		}
		if ll := r.Locations[0].LogicalLocations; len(ll) != 1 || !strings.HasPrefix(r.Message.Text, ll[0].FullyQualifiedName+": ") {
			t.Errorf("result %s logical locations %+v, message %q", r.RuleID, ll, r.Message.Text)
		}
		text, _, _ := strings.Cut(r.Message.Text, ";")
		got = append(got, want{r.RuleID, r.Level, pl.ArtifactLocation.URI, text})
	}
	wantResults := []want{
		{"main.deny", "error", "base/configmap.yaml", "ConfigMap production/payment-gateway-config: ConfigMap payment-gateway-config in production has no owner label"},
		{"images_pinned", "error", "base/deployment.yaml", `Deployment production/payment-gateway: Deployment/payment-gateway: container "gateway" uses image "registry.example.com/payments/payment-gateway:latest" with the mutable tag "latest"`},
		{"no_privileged", "error", "base/deployment.yaml", `Deployment production/payment-gateway: Deployment/payment-gateway: container "gateway" runs privileged`},
		{"main.warn", "warning", "base/deployment.yaml", "Deployment production/payment-gateway: Deployment payment-gateway does not set spec.revisionHistoryLimit"},
		{"images_pinned", "error", "base/deployment.yaml", `Deployment staging/payment-gateway: Deployment/payment-gateway: container "gateway" uses image "registry.example.com/payments/payment-gateway:latest" with the mutable tag "latest"`},
		{"no_privileged", "error", "base/deployment.yaml", `Deployment staging/payment-gateway: Deployment/payment-gateway: container "gateway" runs privileged`},
		{"main.warn", "warning", "base/deployment.yaml", "Deployment staging/payment-gateway: Deployment payment-gateway does not set spec.revisionHistoryLimit"},
	}
	if !slices.Equal(got, wantResults) {
		t.Errorf("results:\n%+v\nwant:\n%+v", got, wantResults)
	}
}
