package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler/render"
)

// Exit codes of `driftless check` and `driftless policy test`.
const (
	// exitFailed means policy denied an object (or warned, with --fail-on-warn) or a Rego
	// test failed.
	exitFailed = 1
	// exitUsage means the command could not decide: bad flags or arguments, a render, load
	// or policy compile error.
	exitUsage = 2
)

// CheckOptions configure `driftless check`: which manifests to render and which policy set
// to evaluate them against.
type CheckOptions struct {
	// Paths are kustomize directories, directories of YAML, or YAML files.
	Paths []string
	// Root confines rendering; empty means the enclosing Git repository's root, or else each
	// path itself (a file's directory).
	Root string
	// ConfigPath is a DriftlessConfig file whose policy set is the starting point; empty
	// starts from the whole built-in library.
	ConfigPath string
	// PolicySet names the policy set in ConfigPath; empty picks the only one.
	PolicySet string
	// PolicyPaths are extra policy directories or .rego files.
	PolicyPaths []string
	// Packages replace the policy set's Rego packages when set.
	Packages []string
	// Parameters are added to, and override, the policy set's parameters.
	Parameters map[string]any
	// Environment, when set, overrides the policy set's environment.
	Environment string
	// NoLibrary turns the built-in library off.
	NoLibrary bool
	// DisabledRules are built-in rules to leave out, besides the policy set's.
	DisabledRules []string
	// FailOnWarn makes warnings fail the check like denials.
	FailOnWarn bool
	// AllowEmpty lets a path that renders no objects pass; otherwise Check fails on it, so
	// that a wrong path does not pass CI by checking nothing.
	AllowEmpty bool
}

func newCheckCommand() *cobra.Command {
	o := CheckOptions{}
	var (
		params []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "check [flags] PATH...",
		Short: "Render manifests and check them against the policies, for CI",
		Long: `Render each PATH and evaluate every object against the built-in policy library and the
given Rego policies, the same way the reconciler and the admission webhook do.

PATH is a kustomize directory (built in-process; plugins and remote bases are refused), a
directory of YAML files, or a YAML file. Rendering is confined to the enclosing Git repository
(the nearest directory above PATH holding .git), or to --root, or else to PATH itself, and files
are named relative to that root. Objects built by kustomize are attributed to their
kustomization file, or to their source file when the kustomization sets
buildMetadata: [originAnnotations].

Policies: the policy set --policy-set of --config (or the whole built-in library), plus
--policy directories; --param, --environment, --no-library and --disable-rule adjust it.
--param values are JSON when they parse as JSON, otherwise strings:
  --param 'allowed_registries=["registry.example.com"]' --param min_replicas=3

Output (--output): text (one line per violation and a summary), json (a CheckReport document,
apiVersion driftless.dev/v1alpha1), junit (one testsuite per PATH, one testcase per object) or
sarif (SARIF 2.1.0, for GitHub code scanning).

A PATH that renders no objects is an error (exit 2), unless --allow-empty.

Exit status: 0 when nothing is denied, 1 when a policy denies an object (or warns, with
--fail-on-warn), 2 on usage, render, configuration or policy compile errors and on a PATH
that renders no objects (without --allow-empty).`,
		Example: `  driftless check --param 'allowed_registries=["registry.example.com"]' --environment production overlays/production
  driftless check --config driftless.yaml --policy-set production --output sarif overlays/production > driftless.sarif`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(errors.New("missing PATH: name a kustomize directory, a directory of YAML or a YAML file"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseFormat(output)
			if err != nil {
				return usageError(err)
			}
			if o.Parameters, err = parseParams(params); err != nil {
				return usageError(err)
			}
			if o.PolicySet != "" && o.ConfigPath == "" {
				return usageError(errors.New("--policy-set needs --config"))
			}
			o.Paths = args
			report, err := Check(cmd.Context(), o)
			if err != nil {
				return &ExitError{Code: exitUsage, Err: err}
			}
			for _, t := range report.Targets {
				if len(t.Objects) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "driftless: warning: %s rendered no objects\n", t.Path)
				}
			}
			if err := writeReport(cmd.OutOrStdout(), format, report); err != nil {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("write %s report: %w", format, err)}
			}
			if !report.Passed {
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("policy check failed: %s", report.Summary)}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringArrayVar(&o.PolicyPaths, "policy", nil, "directory or .rego file of policies to evaluate besides the library (repeatable)")
	f.StringArrayVar(&params, "param", nil, "policy parameter key=value, value as JSON or else a string (repeatable)")
	f.StringVar(&o.ConfigPath, "config", "", "DriftlessConfig file whose policy set to use")
	f.StringVar(&o.PolicySet, "policy-set", "", "name of the policy set in --config (default: its only policy set)")
	f.StringVar(&o.Environment, "environment", "", `environment policies see as data.driftless.context.environment, e.g. "production"`)
	f.StringArrayVar(&o.Packages, "package", nil, `Rego package whose deny, violation and warn rules are evaluated (repeatable; default "main")`)
	f.BoolVar(&o.NoLibrary, "no-library", false, "turn the built-in policy library off")
	f.StringArrayVar(&o.DisabledRules, "disable-rule", nil, "built-in rule to leave out, e.g. readiness_probe (repeatable)")
	f.StringVarP(&output, "output", "o", string(formatText), "output format: text, json, junit or sarif")
	f.BoolVar(&o.FailOnWarn, "fail-on-warn", false, "exit 1 on warnings too")
	f.BoolVar(&o.AllowEmpty, "allow-empty", false, "pass a PATH that renders no objects (with a warning) instead of failing with exit 2")
	f.StringVar(&o.Root, "root", "", "directory rendering is confined to (default: the enclosing Git repository, else PATH)")
	return cmd
}

// usageError marks err as a usage error: exit status 2.
func usageError(err error) error {
	return &ExitError{Code: exitUsage, Err: err}
}

// parseParams parses --param key=value flags. A value that is valid JSON is decoded as JSON
// (numbers keep their precision), anything else is a string. A later key wins.
func parseParams(flags []string) (map[string]any, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(flags))
	for _, kv := range flags {
		key, value, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		if json.Valid([]byte(value)) {
			v, err := policy.DecodeParameter([]byte(value))
			if err != nil {
				return nil, fmt.Errorf("--param %s: %w", key, err)
			}
			out[key] = v
			continue
		}
		out[key] = value
	}
	return out, nil
}

// Check loads the policy set o describes, renders every path and evaluates every object. A
// denial is not an error: see Report.Passed. Errors (configuration, policy compile, render)
// name the file and, where known, the line and column.
func Check(ctx context.Context, o CheckOptions) (*Report, error) {
	opts, ec, err := checkPolicyOptions(o)
	if err != nil {
		return nil, err
	}
	engine := policy.New()
	if err := engine.Load(ctx, opts); err != nil {
		return nil, policyError(err)
	}
	rules, err := engine.Rules()
	if err != nil {
		return nil, err
	}
	report, err := newReport(rules, ec.Environment, o.FailOnWarn)
	if err != nil {
		return nil, err
	}
	var empty []string
	for _, p := range o.Paths {
		target, err := checkPath(ctx, engine, ec, p, o.Root)
		if err != nil {
			return nil, err
		}
		if len(target.Objects) == 0 && !o.AllowEmpty {
			empty = append(empty, p)
		}
		report.Targets = append(report.Targets, target)
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("%s rendered no objects: nothing to check (pass --allow-empty if that is expected)", strings.Join(empty, ", "))
	}
	report.finish()
	return report, nil
}

// checkPolicyOptions starts from the configured policy set, if any, and applies the flags.
func checkPolicyOptions(o CheckOptions) (policy.Options, policy.EvalContext, error) {
	var (
		opts policy.Options
		ec   policy.EvalContext
	)
	if o.ConfigPath != "" {
		cfg, err := v1alpha1.Load(o.ConfigPath)
		if err != nil {
			return opts, ec, err
		}
		ps, err := findPolicySet(cfg, o.ConfigPath, o.PolicySet)
		if err != nil {
			return opts, ec, err
		}
		if opts, ec, err = policy.OptionsFromConfig(ps); err != nil {
			return opts, ec, fmt.Errorf("config %s: %w", o.ConfigPath, err)
		}
	}
	opts.Paths = append(opts.Paths, o.PolicyPaths...)
	opts.DisabledRules = append(opts.DisabledRules, o.DisabledRules...)
	opts.DisableLibrary = opts.DisableLibrary || o.NoLibrary
	if len(o.Packages) > 0 {
		opts.Namespaces = slices.Clone(o.Packages)
	}
	if len(o.Parameters) > 0 {
		params := make(map[string]any, len(opts.Parameters)+len(o.Parameters))
		maps.Copy(params, opts.Parameters)
		maps.Copy(params, o.Parameters)
		opts.Parameters = params
	}
	if o.Environment != "" {
		ec.Environment = o.Environment
	}
	return opts, ec, nil
}

// findPolicySet returns the named policy set of cfg, or its only one when name is empty.
func findPolicySet(cfg *v1alpha1.DriftlessConfig, file, name string) (v1alpha1.PolicySet, error) {
	names := make([]string, 0, len(cfg.PolicySets))
	for _, ps := range cfg.PolicySets {
		if ps.Name == name || name == "" && len(cfg.PolicySets) == 1 {
			return ps, nil
		}
		names = append(names, ps.Name)
	}
	switch {
	case len(names) == 0:
		return v1alpha1.PolicySet{}, fmt.Errorf("config %s: no policySets", file)
	case name == "":
		return v1alpha1.PolicySet{}, fmt.Errorf("config %s: %d policy sets, name one with --policy-set (%s)", file, len(names), strings.Join(names, ", "))
	default:
		return v1alpha1.PolicySet{}, fmt.Errorf("config %s: no policy set %q (have %s)", file, name, strings.Join(names, ", "))
	}
}

// policyError lays out a compile error one problem per line, for CI logs.
func policyError(err error) error {
	var ce *policy.CompileError
	if !errors.As(err, &ce) || len(ce.Problems) < 2 {
		return err
	}
	var b strings.Builder
	b.WriteString("compile policies:")
	for _, p := range ce.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return &multilineError{msg: b.String(), err: err}
}

// multilineError replaces an error's message, keeping it for errors.As.
type multilineError struct {
	msg string
	err error
}

func (e *multilineError) Error() string { return e.msg }
func (e *multilineError) Unwrap() error { return e.err }

// checkPath renders one PATH and evaluates its objects.
func checkPath(ctx context.Context, engine *policy.Engine, ec policy.EvalContext, p, rootFlag string) (Target, error) {
	target := Target{Path: p, Objects: []ObjectReport{}}
	tgt, err := resolveTarget(p, rootFlag)
	if err != nil {
		return target, err
	}
	objs, err := render.RenderWithOrigins(ctx, tgt.root, tgt.rel)
	if err != nil {
		return target, fmt.Errorf("render %s: %w", p, err)
	}
	inputs := make([]map[string]any, len(objs))
	for i, o := range objs {
		inputs[i] = o.Object.Object
	}
	results, err := engine.EvaluateAll(ctx, inputs, ec)
	if err != nil {
		return target, fmt.Errorf("evaluate %s: %w", p, err)
	}
	for i, o := range objs {
		loc := tgt.locate(o)
		res := results[i]
		obj := ObjectReport{
			File:          loc.file,
			Line:          loc.line,
			Kustomization: loc.kustomization,
			APIVersion:    res.Object.APIVersion,
			Kind:          res.Object.Kind,
			Namespace:     res.Object.Namespace,
			Name:          res.Object.Name,
			Violations:    make([]ViolationReport, 0, len(res.Violations)),
		}
		for _, v := range res.Violations {
			obj.Violations = append(obj.Violations, ViolationReport{
				RuleID:   ruleID(v.Package, v.Rule),
				Package:  v.Package,
				Rule:     v.Rule,
				Severity: string(v.Severity),
				Message:  v.Message,
				Details:  v.Details,
			})
		}
		target.Objects = append(target.Objects, obj)
	}
	return target, nil
}

// target is one PATH resolved against the root that confines its rendering.
type target struct {
	// root is the absolute, symlink-free root.
	root string
	// rel is the slash-separated path of PATH below root.
	rel string
	// prefix is prepended to root-relative file names in reports: empty when root is a
	// repository (or --root), PATH as given when root was inferred as PATH itself.
	prefix string
	// sources caches kustomizeSources and declared caches documents, by root-relative path.
	sources  map[string][]string
	declared map[string][]declared
}

// resolveTarget finds the root for p: --root, else the nearest directory at or above p
// holding .git, else p itself (a file's directory).
func resolveTarget(p, rootFlag string) (target, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return target{}, fmt.Errorf("check %s: %w", p, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return target{}, fmt.Errorf("check %s: %w", p, unwrapPathError(err))
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return target{}, fmt.Errorf("check %s: %w", p, unwrapPathError(err))
	}
	dir, given := resolved, p
	if !info.IsDir() {
		dir, given = filepath.Dir(resolved), filepath.Dir(p)
	}
	t := target{}
	switch {
	case rootFlag != "":
		if t.root, err = filepath.Abs(rootFlag); err == nil {
			t.root, err = filepath.EvalSymlinks(t.root)
		}
		if err != nil {
			return target{}, fmt.Errorf("--root %s: %w", rootFlag, unwrapPathError(err))
		}
	default:
		if root, ok := gitRoot(dir); ok {
			t.root = root
		} else {
			t.root, t.prefix = dir, filepath.ToSlash(filepath.Clean(given))
		}
	}
	rel, err := filepath.Rel(t.root, resolved)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return target{}, fmt.Errorf("check %s: %w %s", p, render.ErrOutsideRoot, t.root)
	}
	t.rel = filepath.ToSlash(rel)
	return t, nil
}

// unwrapPathError drops the *fs.PathError's absolute path: messages name PATH as given.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// gitRoot returns the nearest directory at or above dir that holds .git (a directory, or a
// file for worktrees and submodules).
func gitRoot(dir string) (string, bool) {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// location is where a rendered object is reported.
type location struct {
	file          string
	line          int
	kustomization string
}

// originAnnotation is set by kustomize with buildMetadata: [originAnnotations].
const originAnnotation = "config.kubernetes.io/origin"

// locate names the file (relative to the root, with the target's prefix) and line of a
// rendered object. Plain YAML has both. A kustomized object is traced to the resource file
// that declares it: the file kustomize's origin annotation names, when the kustomization asks
// for it, or else the resource file (of the kustomization, its bases and components)
// declaring an object of the same kind and name or, when kustomize added a name prefix or
// suffix ("prod-", "-v2"), the only such object. Objects that cannot be traced, such as
// generated ConfigMaps, are attributed to the kustomization file, without a line.
func (t *target) locate(o render.Object) location {
	if !o.Origin.Kustomized {
		return location{file: t.display(o.Origin.File), line: o.Origin.Line}
	}
	dir := o.Origin.File
	loc := location{kustomization: t.display(dir), file: t.display(t.kustomizationFile(dir))}
	kind, name := o.Object.GetKind(), o.Object.GetName()
	if src, ok := t.originFile(o); ok {
		loc.file = t.display(src)
		if d, ok := matchDocument(t.documents(src), kind, name); ok {
			loc.line = d.line
		}
		return loc
	}
	var (
		exact   *declared
		renamed []declared
	)
	for _, src := range t.kustomizeSources(dir) {
		for _, d := range t.documents(src) {
			switch {
			case d.kind != kind:
			case d.name == name:
				if exact == nil {
					exact = &d
				}
			case renamedFrom(name, d.name):
				renamed = append(renamed, d)
			}
		}
	}
	switch {
	case exact != nil:
		loc.file, loc.line = t.display(exact.file), exact.line
	case len(renamed) == 1:
		loc.file, loc.line = t.display(renamed[0].file), renamed[0].line
	}
	return loc
}

// renamedFrom reports whether name is declared with a kustomize name prefix or suffix:
// "<prefix>-<declared>" or "<declared>-<suffix>" or both.
func renamedFrom(name, declared string) bool {
	if declared == "" {
		return false
	}
	before, after, ok := strings.Cut(name, declared)
	return ok && (before == "" || strings.HasSuffix(before, "-")) && (after == "" || strings.HasPrefix(after, "-"))
}

// display prefixes a root-relative path for reports.
func (t *target) display(rel string) string {
	if t.prefix == "" || t.prefix == "." {
		return rel
	}
	if rel == "." {
		return t.prefix
	}
	return path.Join(t.prefix, rel)
}

// kustomizationFile returns the kustomization file of dir, relative to the root.
func (t *target) kustomizationFile(dir string) string {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if p := path.Join(dir, name); t.isFile(p) {
			return p
		}
	}
	return dir
}

// originFile returns the root-relative source file kustomize recorded in the origin
// annotation, if it is a local file inside the root.
func (t *target) originFile(o render.Object) (string, bool) {
	ann := o.Object.GetAnnotations()[originAnnotation]
	if ann == "" {
		return "", false
	}
	var origin struct {
		Path string `json:"path"`
		Repo string `json:"repo"`
	}
	if err := yaml.Unmarshal([]byte(ann), &origin); err != nil || origin.Path == "" || origin.Repo != "" {
		return "", false
	}
	src := path.Join(o.Origin.File, origin.Path)
	if !filepath.IsLocal(filepath.FromSlash(src)) || !t.isFile(src) {
		return "", false
	}
	return src, true
}

// kustomizeSources lists the local resource files the kustomization in dir builds from,
// depth-first: its resources, and those of the kustomizations its resources, bases and
// components name. Rendering has already refused remote and outside references; they are
// skipped here. Results are cached per directory.
func (t *target) kustomizeSources(dir string) []string {
	if files, ok := t.sources[dir]; ok {
		return files
	}
	if t.sources == nil {
		t.sources = map[string][]string{}
	}
	t.sources[dir] = nil // a cycle ends here; kustomize reports it when building
	var k struct {
		Resources  []string `json:"resources"`
		Bases      []string `json:"bases"`
		Components []string `json:"components"`
	}
	file := t.kustomizationFile(dir)
	data, err := t.readFile(file)
	if err != nil || yaml.Unmarshal(data, &k) != nil {
		return nil
	}
	var files []string
	for _, ref := range slices.Concat(k.Resources, k.Bases, k.Components) {
		p := path.Join(dir, ref)
		if strings.Contains(ref, "://") || !filepath.IsLocal(filepath.FromSlash(p)) {
			continue
		}
		switch {
		case t.isFile(p):
			files = append(files, p)
		case t.kustomizationFile(p) != p:
			files = append(files, t.kustomizeSources(p)...)
		}
	}
	t.sources[dir] = files
	return files
}

// declared is an object as declared in a YAML file.
type declared struct {
	file, kind, name string
	line             int
}

// documents returns the kind, name and starting line of each document of rel, cached; a
// file that does not parse has none.
func (t *target) documents(rel string) []declared {
	if docs, ok := t.declared[rel]; ok {
		return docs
	}
	if t.declared == nil {
		t.declared = map[string][]declared{}
	}
	var docs []declared
	if data, err := t.readFile(rel); err == nil {
		dec := yamlv3.NewDecoder(bytes.NewReader(data))
		for {
			var doc yamlv3.Node
			if err := dec.Decode(&doc); err != nil {
				break
			}
			if len(doc.Content) == 0 || doc.Content[0].Kind != yamlv3.MappingNode {
				continue
			}
			top := doc.Content[0]
			var header struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			if top.Decode(&header) == nil && header.Kind != "" {
				docs = append(docs, declared{file: rel, kind: header.Kind, name: header.Metadata.Name, line: top.Line})
			}
		}
	}
	t.declared[rel] = docs
	return docs
}

// matchDocument finds the document declaring kind and name, or the only one of that kind.
func matchDocument(docs []declared, kind, name string) (declared, bool) {
	var sameKind []declared
	for _, d := range docs {
		if d.kind != kind {
			continue
		}
		if d.name == name {
			return d, true
		}
		sameKind = append(sameKind, d)
	}
	if len(sameKind) == 1 {
		return sameKind[0], true
	}
	return declared{}, false
}

// isFile reports whether rel names a regular file inside the root.
func (t *target) isFile(rel string) bool {
	r, err := os.OpenRoot(t.root)
	if err != nil {
		return false
	}
	defer r.Close()
	info, err := r.Stat(filepath.FromSlash(rel))
	return err == nil && info.Mode().IsRegular()
}

// readFile reads rel inside the root; symlinks out of it fail.
func (t *target) readFile(rel string) ([]byte, error) {
	r, err := os.OpenRoot(t.root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadFile(filepath.FromSlash(rel))
}
