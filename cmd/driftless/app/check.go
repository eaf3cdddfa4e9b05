package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/check"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/policy/report"
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

func newCheckCommand() *cobra.Command {
	o := check.Options{}
	var (
		params       []string
		output       string
		renderedSize string
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

A PATH that renders no objects is an error (exit 2), unless --allow-empty. A PATH that
renders more than --max-objects objects or --max-rendered-size (a source's default limits, which
the reconciler applies) is an error too; 0 leaves a bound off. Named pipes, sockets and devices
are refused where a file is read.

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
			format, err := report.ParseFormat(output)
			if err != nil {
				return usageError(err)
			}
			if o.Parameters, err = parseParams(params); err != nil {
				return usageError(err)
			}
			if o.PolicySet != "" && o.ConfigPath == "" {
				return usageError(errors.New("--policy-set needs --config"))
			}
			if o.Limits.MaxObjects < 0 {
				return usageError(fmt.Errorf("--max-objects %d: want 0 (no bound) or more", o.Limits.MaxObjects))
			}
			size, err := resource.ParseQuantity(renderedSize)
			if err != nil || size.Sign() < 0 {
				return usageError(fmt.Errorf("--max-rendered-size %q: want a size such as 64Mi, or 0 for no bound", renderedSize))
			}
			o.Limits.MaxBytes = size.Value()
			o.Paths = args
			r, err := check.Run(cmd.Context(), o)
			if err != nil {
				return &ExitError{Code: exitUsage, Err: policyError(err)}
			}
			for _, t := range r.Targets {
				if len(t.Objects) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "driftless: warning: %s rendered no objects\n", t.Path)
				}
			}
			if err := report.Write(cmd.OutOrStdout(), format, r, Version()); err != nil {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("write %s report: %w", format, err)}
			}
			if !r.Passed {
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("policy check failed: %s", r.Summary)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.PolicyPaths, "policy", nil, "directory or .rego file of policies to evaluate besides the library (repeatable)")
	f.StringArrayVar(&params, "param", nil, "policy parameter key=value, value as JSON or else a string (repeatable)")
	f.StringVar(&o.ConfigPath, "config", "", "DriftlessConfig file whose policy set to use")
	f.StringVar(&o.PolicySet, "policy-set", "", "name of the policy set in --config (default: its only policy set)")
	f.StringVar(&o.Environment, "environment", "", `environment policies see as data.driftless.context.environment, e.g. "production"`)
	f.StringArrayVar(&o.Packages, "package", nil, `Rego package whose deny, violation and warn rules are evaluated (repeatable; default "main")`)
	f.BoolVar(&o.NoLibrary, "no-library", false, "turn the built-in policy library off")
	f.StringArrayVar(&o.DisabledRules, "disable-rule", nil, "built-in rule to leave out, e.g. readiness_probe (repeatable)")
	f.StringVarP(&output, "output", "o", string(report.FormatText), "output format: text, json, junit or sarif")
	f.BoolVar(&o.FailOnWarn, "fail-on-warn", false, "exit 1 on warnings too")
	f.BoolVar(&o.AllowEmpty, "allow-empty", false, "pass a PATH that renders no objects (with a warning) instead of failing with exit 2")
	f.StringVar(&o.Root, "root", "", "directory rendering is confined to (default: the enclosing Git repository, else PATH)")
	f.Int64Var(&o.Limits.MaxObjects, "max-objects", v1alpha1.DefaultMaxObjects, "most objects one PATH may render, as a source's limits.maxObjects (0: no bound)")
	f.StringVar(&renderedSize, "max-rendered-size", resource.NewQuantity(v1alpha1.DefaultMaxRenderedSize, resource.BinarySI).String(), "most one PATH may render, as a source's limits.maxRenderedSize (0: no bound)")
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
