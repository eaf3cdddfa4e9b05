package v1alpha1

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestDefaultsGolden(t *testing.T) {
	for _, name := range []string{"minimal", "full"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", name+".yaml"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".defaulted.golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("defaulted config differs from %s (run go test -update to accept):\n got:\n%s\nwant:\n%s", golden, got, want)
			}
			again, err := Decode(got)
			if err != nil {
				t.Fatalf("decoding the defaulted output again: %v", err)
			}
			if gotAgain, _ := yaml.Marshal(again); string(gotAgain) != string(got) {
				t.Errorf("defaulting is not idempotent:\n%s", gotAgain)
			}
		})
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	const head = "apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", head + "gaurd: {}\n", []string{`unknown field "gaurd"`}},
		{"unknown nested key", head + "guard:\n  breakGlass:\n    group: [oncall]\n", []string{`unknown field "guard.breakGlass.group"`}},
		{"duplicate key", head + "guard:\n  mode: warn\n  mode: enforce\n", []string{`"mode"`}},
		{"bad mode", head + "guard:\n  mode: audit\n", []string{"guard.mode", `"audit"`, "enforce"}},
		{"bad duration", head + "guard:\n  breakGlass:\n    maxDuration: soon\n", []string{"soon"}},
		{"duration too long", head + "guard:\n  breakGlass:\n    maxDuration: 200h\n", []string{"guard.breakGlass.maxDuration"}},
		{"negative duration", head + "guard:\n  breakGlass:\n    maxDuration: -1h\n", []string{"guard.breakGlass.maxDuration"}},
		{"protected and exempt", head + "guard:\n  protectedNamespaces: [prod]\n  exemptNamespaces: [prod]\n", []string{"guard.exemptNamespaces[0]", "also listed"}},
		{"own namespace protected", head + "guard:\n  protectedNamespaces: [driftless-system]\n", []string{"guard.protectedNamespaces[0]", "exempt"}},
		{"bad namespace", head + "guard:\n  protectedNamespaces: [Prod_1]\n", []string{"guard.protectedNamespaces[0]"}},
		{"duplicate namespace", head + "guard:\n  protectedNamespaces: [prod, prod]\n", []string{"guard.protectedNamespaces[1]", "Duplicate"}},
		{"system group as break-glass", head + "guard:\n  breakGlass:\n    groups: [system:masters]\n", []string{"guard.breakGlass.groups[0]"}},
		{"everyone as controller", head + "guard:\n  controllerIdentities:\n    groups: [system:authenticated]\n", []string{"guard.controllerIdentities.groups[0]"}},
		{"ignored subresource", head + "guard:\n  ignoredResources: [{group: apps, resource: deployments/scale}]\n", []string{"guard.ignoredResources[0].resource"}},
		{"unknown ledger key", head + "ledger:\n  retension: 1h\n", []string{`unknown field "ledger.retension"`}},
		{"ledger retention too short", head + "ledger:\n  retention: 1m\n", []string{"ledger.retention"}},
		{"ledger too small", head + "ledger:\n  maxSize: 10Ki\n", []string{"ledger.maxSize", "1Mi"}},
		{"ledger flush too slow", head + "ledger:\n  flushInterval: 1h\n", []string{"ledger.flushInterval"}},
		{"ledger negative buffer", head + "ledger:\n  bufferSize: -1\n", []string{"ledger.bufferSize"}},
		{"sink without url", head + "ledger:\n  sink: {keyFile: /k}\n", []string{"ledger.sink.url", "Required"}},
		{"sink over http", head + "ledger:\n  sink: {url: 'http://siem.example/x', keyFile: /k}\n", []string{"ledger.sink.url", `"http"`}},
		{"sink credentials in url", head + "ledger:\n  sink: {url: 'https://me:hunter2@siem.example/x', keyFile: /k}\n", []string{"ledger.sink.url", "credentials"}},
		{"sink without key", head + "ledger:\n  sink: {url: 'https://siem.example/x'}\n", []string{"ledger.sink.keyFile"}},
		{"sink backoff too long", head + "ledger:\n  sink: {url: 'https://siem.example/x', keyFile: /k, maxBackoff: 2h}\n", []string{"ledger.sink.maxBackoff"}},
		{"wrong apiVersion", "apiVersion: driftless.dev/v1\nkind: DriftlessConfig\n", []string{"apiVersion", "driftless.dev/v1alpha1"}},
		{"missing kind", "apiVersion: driftless.dev/v1alpha1\n", []string{"kind"}},
		{"bad service account", head + "reconciler:\n  serviceAccount: {namespace: 'Bad NS', name: x}\n", []string{"reconciler.serviceAccount.namespace"}},
		{"source without url", head + "sources:\n- name: platform\n", []string{"sources[0].url", "Required"}},
		{"source two refs", head + "sources:\n- name: platform\n  url: https://git.example/platform.git\n  ref: {branch: main, tag: v1}\n", []string{"sources[0].ref", "exactly one"}},
		{"source short commit", head + "sources:\n- name: platform\n  url: https://git.example/platform.git\n  ref: {commit: abc}\n", []string{"sources[0].ref.commit"}},
		{"source path escapes", head + "sources:\n- name: platform\n  url: https://git.example/platform.git\n  path: ../other\n", []string{"sources[0].path"}},
		{"source password in url", head + "sources:\n- name: platform\n  url: https://me:hunter2@git.example/platform.git\n", []string{"sources[0].url", "password"}},
		{"source bad scheme", head + "sources:\n- name: platform\n  url: ftp://git.example/platform.git\n", []string{"sources[0].url", `"ftp"`}},
		{"duplicate source", head + "sources:\n- {name: a, url: /srv/a}\n- {name: a, url: /srv/b}\n", []string{"sources[1].name", "Duplicate"}},
		{"source unknown policy set", head + "sources:\n- {name: a, url: /srv/a, policySet: prod}\n", []string{"sources[0].policySet", "Not found"}},
		{"source ssh without known_hosts", head + "sources:\n- {name: a, url: 'ssh://git@h/a', auth: {sshPrivateKeyFile: /k}}\n", []string{"sources[0].auth.sshKnownHostsFile"}},
		{"source https and ssh", head + "sources:\n- {name: a, url: 'ssh://git@h/a', auth: {username: u, passwordFile: /p, sshPrivateKeyFile: /k, sshKnownHostsFile: /h}}\n", []string{"sources[0].auth", "not both"}},
		{"source username without password", head + "sources:\n- {name: a, url: 'https://h/a', auth: {username: u}}\n", []string{"sources[0].auth.passwordFile"}},
		{"source verify without keyring", head + "sources:\n- {name: a, url: 'https://h/a', verify: {keyringFiles: []}}\n", []string{"sources[0].verify.keyringFiles"}},
		{"source bad target namespace", head + "sources:\n- {name: a, url: 'https://h/a', targetNamespace: Prod}\n", []string{"sources[0].targetNamespace"}},
		{"source zero file size", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxFileSize: '-1'}}\n", []string{"sources[0].limits.maxFileSize"}},
		{"source file over repository", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxFileSize: 2Gi, maxRepositorySize: 1Gi}}\n", []string{"sources[0].limits.maxFileSize", "maxRepositorySize"}},
		{"source huge repository", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxRepositorySize: 1Ti}}\n", []string{"sources[0].limits.maxRepositorySize", "64Gi"}},
		{"source negative objects", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxObjects: -5}}\n", []string{"sources[0].limits.maxObjects"}},
		{"source bad quantity", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxRenderedSize: lots}}\n", []string{"quantities must match"}},
		{"source unknown limit", head + "sources:\n- {name: a, url: 'https://h/a', limits: {maxDepth: 3}}\n", []string{"maxDepth"}},
		{"safe operation unknown key", head + "guard:\n  safeOperations:\n    rolloutRestart: {enable: false}\n", []string{`unknown field "guard.safeOperations.rolloutRestart.enable"`}},
		{"safe operation unknown operation", head + "guard:\n  safeOperations:\n    scale: {enabled: true}\n", []string{`unknown field "guard.safeOperations.scale"`}},
		{"safe operation empty group", head + "guard:\n  safeOperations:\n    deleteControlledPods: {groups: [' ']}\n", []string{"guard.safeOperations.deleteControlledPods.groups[0]", "Required"}},
		{"safe operation duplicate group", head + "guard:\n  safeOperations:\n    jobFromCronJob: {groups: [oncall, oncall]}\n", []string{"guard.safeOperations.jobFromCronJob.groups[1]", "Duplicate"}},
		{"safe operation bad enabled", head + "guard:\n  safeOperations:\n    rolloutRestart: {enabled: sometimes}\n", []string{"enabled"}},
		{"guard unknown policy set", head + "guard: {policySet: prod}\n", []string{"guard.policySet", "Not found"}},
		{"reserved package", head + "policySets:\n- {name: prod, packages: [driftless.library]}\n", []string{"policySets[0].packages[0]"}},
		{"not yaml", "guard: [\n", []string{"parse"}},
		{"not an object", "- a\n- b\n", []string{"decode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Decode accepted invalid config, got %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestSafeOperationAllowedFor(t *testing.T) {
	off := false
	tests := []struct {
		name   string
		op     SafeOperation
		groups []string
		want   bool
	}{
		{"on for everyone by default", SafeOperation{}, []string{"developers"}, true},
		{"switched off", SafeOperation{Enabled: &off}, []string{"developers"}, false},
		{"restricted, member", SafeOperation{Groups: []string{"oncall"}}, []string{"developers", "oncall"}, true},
		{"restricted, not a member", SafeOperation{Groups: []string{"oncall"}}, []string{"developers"}, false},
		{"switched off beats membership", SafeOperation{Enabled: &off, Groups: []string{"oncall"}}, []string{"oncall"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.op.AllowedFor(tt.groups); got != tt.want {
				t.Errorf("AllowedFor(%v) = %v, want %v", tt.groups, got, tt.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "driftless.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\nguard: {mode: nope}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Errorf("Load(%s) error %v does not name the file", path, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://me:hunter2@git.example/x.git": "https://redacted@git.example/x.git",
		"https://git.example/x.git":            "https://git.example/x.git",
		"ssh://git@git.example/x.git":          "ssh://redacted@git.example/x.git",
		"me:hunter2@%zz":                       "redacted@%zz",
	}
	for in, want := range tests {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the config decoder: it must never panic, and anything it
// accepts must validate and survive a round trip.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\nguard: {mode: warn}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		if errs := Validate(c); len(errs) > 0 {
			t.Fatalf("Decode accepted a config that does not validate: %v", errs)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("accepted config does not decode again: %v\n%s", err, out)
		}
	})
}

// TestReadFileRefusesLargeFiles: the one reader of configuration files, behind Load and the
// reloader of driftless run, refuses a file over MaxConfigSize.
func TestReadFileRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	header := "apiVersion: driftless.dev/v1alpha1\nkind: DriftlessConfig\n"
	for name, size := range map[string]int{"at-the-limit.yaml": MaxConfigSize, "over-the-limit.yaml": MaxConfigSize + 1} {
		path := filepath.Join(dir, name)
		content := header + "#" + strings.Repeat("x", size-len(header)-2) + "\n"
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		data, err := ReadFile(path)
		if size > MaxConfigSize {
			if err == nil || !strings.Contains(err.Error(), "more than the limit") || !strings.Contains(err.Error(), name) {
				t.Errorf("ReadFile(%s) = %d bytes, error %v; want the limit, naming the file", name, len(data), err)
			}
			if _, err := Load(path); err == nil {
				t.Errorf("Load(%s) succeeded over the limit", name)
			}
			continue
		}
		if err != nil || len(data) != size {
			t.Errorf("ReadFile(%s) = %d bytes, error %v; want all %d", name, len(data), err, size)
		}
		if _, err := Load(path); err != nil {
			t.Errorf("Load(%s): %v", name, err)
		}
	}
}
