package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/policy/report"
	"github.com/driftless-dev/driftless/reconciler/render"
)

// Options configure a check: which manifests to render and which policy set to evaluate
// them against.
type Options struct {
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
	// AllowEmpty lets a path that renders no objects pass; otherwise Run fails on it, so
	// that a wrong path does not pass CI by checking nothing.
	AllowEmpty bool
	// Limits bound each path's render; zero leaves a bound off. The command sets a source's
	// default limits, so that check fails where the reconciler would refuse the render.
	Limits render.Limits
}

// Run loads the policy set o describes, renders every path and evaluates every object. A
// denial is not an error: see Report.Passed. Errors (configuration, policy compile, render)
// name the file and, where known, the line and column; a policy compile error is a
// *policy.CompileError.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	opts, ec, err := checkPolicyOptions(o)
	if err != nil {
		return nil, err
	}
	engine := policy.New()
	if err := engine.Load(ctx, opts); err != nil {
		return nil, err
	}
	rules, err := engine.Rules()
	if err != nil {
		return nil, err
	}
	r, err := report.New(rules, ec.Environment, o.FailOnWarn)
	if err != nil {
		return nil, err
	}
	var empty []string
	for _, p := range o.Paths {
		target, err := checkPath(ctx, engine, ec, p, o.Root, o.Limits)
		if err != nil {
			return nil, err
		}
		if len(target.Objects) == 0 && !o.AllowEmpty {
			empty = append(empty, p)
		}
		r.Targets = append(r.Targets, target)
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("%s rendered no objects: nothing to check (pass --allow-empty if that is expected)", strings.Join(empty, ", "))
	}
	r.Finish()
	return r, nil
}

// checkPolicyOptions starts from the configured policy set, if any, and applies the flags.
func checkPolicyOptions(o Options) (policy.Options, policy.EvalContext, error) {
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

// checkPath renders one PATH and evaluates its objects.
func checkPath(ctx context.Context, engine *policy.Engine, ec policy.EvalContext, p, rootFlag string, limits render.Limits) (report.Target, error) {
	target := report.Target{Path: p, Objects: []report.ObjectReport{}}
	tgt, err := resolveTarget(p, rootFlag)
	if err != nil {
		return target, err
	}
	objs, err := render.RenderWithOrigins(ctx, tgt.root, tgt.rel, limits)
	if _, over := errors.AsType[*render.LimitError](err); over {
		return target, fmt.Errorf("render %s: %w (the reconciler would refuse it too, unless the source's limits are raised; --max-objects and --max-rendered-size raise check's)", p, err)
	}
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
		var kustomization string
		if o.Origin.Kustomized {
			kustomization = tgt.display(o.Origin.File)
		}
		target.Objects = append(target.Objects, report.NewObject(results[i], tgt.display(o.Origin.Source), o.Origin.SourceLine, kustomization))
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
}

// resolveTarget finds the root for p: --root, else the nearest directory at or above p
// holding .git, else p itself (a file's directory). The root is found from p as given, not
// from where its symlinks lead: a symlink in a repository that leads out of it is read, and
// refused, by the render like any other such symlink in the repository.
func resolveTarget(p, rootFlag string) (target, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return target{}, fmt.Errorf("check %s: %w", p, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return target{}, fmt.Errorf("check %s: %w", p, unwrapPathError(err))
	}
	dir, given := abs, p
	if !info.IsDir() {
		dir, given = filepath.Dir(abs), filepath.Dir(p)
	}
	t := target{}
	root := dir
	switch {
	case rootFlag != "":
		if root, err = filepath.Abs(rootFlag); err != nil {
			return target{}, fmt.Errorf("--root %s: %w", rootFlag, err)
		}
	default:
		if r, ok := gitRoot(dir); ok {
			root = r
		} else {
			t.prefix = filepath.ToSlash(filepath.Clean(given))
		}
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return target{}, fmt.Errorf("check %s: %w %s", p, render.ErrOutsideRoot, root)
	}
	// The root's own path may lead through symlinks (a home directory on another disk, say).
	if t.root, err = filepath.EvalSymlinks(root); err != nil {
		if rootFlag != "" {
			return target{}, fmt.Errorf("--root %s: %w", rootFlag, unwrapPathError(err))
		}
		return target{}, fmt.Errorf("check %s: %w", p, unwrapPathError(err))
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
// file for worktrees and submodules), dir as given, not resolved. A repository reached
// through a symlink inside an enclosing repository is not taken: that symlink leads out of
// the enclosing one (a pull request can commit one pointing at another checkout on the same
// machine), so the enclosing repository is the root, and the render refuses the symlink.
func gitRoot(dir string) (string, bool) {
	root := ""
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil && (root == "" || symlinkBelow(d, root)) {
			root = d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return root, root != ""
		}
		d = parent
	}
}

// symlinkBelow reports whether a directory on the way from dir down to sub, which is below
// it, is a symlink.
func symlinkBelow(dir, sub string) bool {
	rel, err := filepath.Rel(dir, sub)
	if err != nil {
		return false
	}
	p := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		if info, err := os.Lstat(p); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return true
		}
	}
	return false
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
