package policy

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// libraryFS holds the built-in Rego library. It is read-only data compiled
// into the binary (embed needs a package-level variable), not mutable state.
//
//go:embed library
var libraryFS embed.FS

const (
	// libraryDir is the embedded directory of built-in rules, one
	// <rule>.rego per rule plus its <rule>_test.rego.
	libraryDir = "library"
	// libraryHelpersDir holds helper packages every load includes.
	libraryHelpersDir = "library/lib"
	// builtinPrefix names embedded files in problems and test locations.
	builtinPrefix = "builtin:"
	// libraryPackagePrefix is the package of built-in rule <rule> without it.
	libraryPackagePrefix = LibraryPackagePrefix
)

// LibraryPackagePrefix is the Rego package prefix of the built-in rules: rule <name> lives in
// package driftless.library.<name>.
const LibraryPackagePrefix = "driftless.library."

// RuleID names a rule the way reports do: a built-in rule by its name (images_pinned, or
// images_pinned.warn for a rule other than deny), any other rule as package.rule (main.deny).
func RuleID(pkg, rule string) string {
	if name, ok := strings.CutPrefix(pkg, LibraryPackagePrefix); ok {
		if rule == "deny" {
			return name
		}
		return name + "." + rule
	}
	return pkg + "." + rule
}

// RuleID is the violation's rule as reports name it; see [RuleID].
func (v Violation) RuleID() string { return RuleID(v.Package, v.Rule) }

// LibraryRule describes one rule of the built-in library.
type LibraryRule struct {
	// Name switches the rule off in Options.DisabledRules, for example
	// "images_pinned". The rule's package is data.driftless.library.<Name>.
	Name string
	// Title is a one-line summary.
	Title string
	// Description says what the rule denies and which parameters it reads.
	Description string
	// Kinds are the object kinds the rule can deny, from custom.kinds in the
	// package METADATA; the engine queries the rule only for objects of these
	// kinds. Empty means every kind.
	Kinds []string
}

// Package returns the rule's Rego package, driftless.library.<Name>.
func (r LibraryRule) Package() string {
	return libraryPackagePrefix + r.Name
}

// Library lists the built-in rules, sorted by name, with the title and
// description taken from each package's METADATA annotation.
//
// The rules and the parameters (data.driftless.parameters.<name>) they read:
//
//   - allowed_registries: images come from an allowed registry. Parameter
//     allowed_registries, a list of registry hosts or repository prefixes
//     ("ghcr.io", "registry.example.com/team"); images without a registry are
//     docker.io/library images. Without the parameter the rule is inactive.
//   - container_resources: every container and init container sets the
//     resources in parameter required_resources, default ["requests.cpu",
//     "requests.memory", "limits.cpu", "limits.memory"].
//   - images_pinned: every image names a digest or a tag, and the tag is not
//     in parameter mutable_tags, default ["latest"].
//   - no_host_network, no_host_path, no_host_pid, no_privileged: the pod does
//     not use the host's network namespace, host path volumes, the host's PID
//     namespace, or privileged containers.
//   - no_plaintext_secrets: no v1 Secret with data or stringData is kept in
//     Git; commit a SealedSecret or an ExternalSecret instead.
//   - production_replicas: a Deployment in production runs at least parameter
//     min_replicas (default 2) replicas; an unset spec.replicas counts as 1.
//     Production means data.driftless.context.environment == "production" or
//     metadata.namespace listed in parameter production_namespaces.
//   - readiness_probe: every regular container of a long-running workload
//     (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
//     Pod) has a readinessProbe. Jobs and CronJobs are exempt.
//   - required_labels: every workload (any kind with a pod template, and Pod)
//     carries the labels in parameter required_labels, default
//     ["app.kubernetes.io/name"].
//   - run_as_non_root: every container runs with runAsNonRoot: true (set on
//     the container or inherited from the pod) and not as UID 0.
//
// Workload kinds are Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job and CronJob; container rules cover init
// containers too. Every built-in violation is an object whose fields other
// than msg (Violation.Details) name what it concerns: "container", "image",
// "resource", "volume", "label", or "replicas" and "min_replicas".
func Library() ([]LibraryRule, error) {
	entries, err := fs.ReadDir(libraryFS, libraryDir)
	if err != nil {
		return nil, fmt.Errorf("read embedded library: %w", err)
	}
	var rules []LibraryRule
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".rego" || isTestFile(name) {
			continue
		}
		b, err := fs.ReadFile(libraryFS, path.Join(libraryDir, name))
		if err != nil {
			return nil, fmt.Errorf("read embedded library file %s: %w", name, err)
		}
		file := builtinPrefix + path.Join(libraryDir, name)
		m, err := ast.ParseModuleWithOpts(file, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, fmt.Errorf("parse embedded library file %s: %w", name, err)
		}
		rule := LibraryRule{Name: strings.TrimSuffix(name, ".rego")}
		if got := strings.TrimPrefix(m.Package.Path.String(), "data."); got != rule.Package() {
			return nil, fmt.Errorf("embedded library file %s: package %s, want %s", name, got, rule.Package())
		}
		for _, a := range m.Annotations {
			if a.Scope != "package" {
				continue
			}
			rule.Title, rule.Description = a.Title, a.Description
			if rule.Kinds, err = annotatedKinds(a.Custom); err != nil {
				return nil, fmt.Errorf("embedded library file %s: %w", name, err)
			}
		}
		rules = append(rules, rule)
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Name < rules[j].Name })
	return rules, nil
}

// annotatedKinds reads custom.kinds of a package annotation: a list of kind
// names, or absent.
func annotatedKinds(custom map[string]any) ([]string, error) {
	raw, ok := custom["kinds"]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("custom.kinds: want a non-empty list of kind names, got %v", raw)
	}
	kinds := make([]string, 0, len(list))
	for _, k := range list {
		s, ok := k.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("custom.kinds: %v is not a kind name", k)
		}
		kinds = append(kinds, s)
	}
	return kinds, nil
}

// librarySources returns the embedded helper packages and the enabled rules;
// with tests it adds every embedded test file of those.
func librarySources(enabled func(rule string) bool, tests bool) ([]source, error) {
	var out []source
	err := fs.WalkDir(libraryFS, libraryDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk embedded library: %w", err)
		}
		if d.IsDir() || path.Ext(p) != ".rego" {
			return nil
		}
		test := isTestFile(p)
		if test && !tests {
			return nil
		}
		if path.Dir(p) == libraryDir {
			rule := strings.TrimSuffix(strings.TrimSuffix(path.Base(p), ".rego"), "_test")
			if !enabled(rule) {
				return nil
			}
		} else if !strings.HasPrefix(p, libraryHelpersDir+"/") {
			return nil
		}
		b, err := fs.ReadFile(libraryFS, p)
		if err != nil {
			return fmt.Errorf("read embedded library file %s: %w", p, err)
		}
		out = append(out, source{name: builtinPrefix + p, content: string(b), test: test, builtin: true})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
