package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/installation"
	"github.com/driftless-dev/driftless/internal/server"
	"github.com/driftless-dev/driftless/internal/sources"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
)

func newDiffCommand() *cobra.Command {
	o := newSourceOptions()
	var configPath, sourceName, output string
	var serverDryRun bool
	cmd := &cobra.Command{
		Use:   "diff [SOURCE] [--config FILE] [-n NAMESPACE] [-o text|json] [--server-dry-run]",
		Short: "Show what a sync of a source's current revision would change; needs only read access",
		Long: `diff shows what a sync of a source's current revision would change. A source is a GitSource,
read from the cluster and run as the reconciler runs it: diff SOURCE (or --source SOURCE) diffs
that GitSource in -n's namespace (default: the Driftless namespace, --driftless-namespace);
without a name, every GitSource there that you may list. The GitSource's policy set and the
break-glass maximum come from the installed configuration (the configuration ConfigMap in the
Driftless namespace) or, with --config FILE, from that file. The Secret of spec.secretRef (the
Git credentials) and the keyrings of spec.verify are read as you: you need get on them.

With --config FILE and no name, diff takes the sources of that DriftlessConfig instead
(sources: there is deprecated); with a name that no GitSource has, the source of that name
the file declares. Without --config, no file is read.

diff fetches the source's ref, renders and checks it like the reconciler, reads the live
objects and the source's inventory, and shows what a sync would do: objects to create, update
(with a unified diff from the cluster to Git) and prune, objects left alone under break-glass
(what its expiry would revert), and objects the sync would refuse (not the source's, or
another source's). An update covers the fields Git declares that differ and the fields the
reconciler would remove because kubectl's field managers set them. Nothing is written: no
apply, no dry-run, no impersonation. Read access is enough (the view ClusterRole): an object
you may not read, such as a Secret, is shown as unknown, saying so.

Each apply is predicted with the API server's own server-side apply merge and published schema,
but its defaulting, mutating admission webhooks and validation do not run: a value it would
default or normalise may show as a change. --server-dry-run asks the API server instead; it needs the rights to patch every
object and, in protected namespaces, the reconciler's identity (the guard decides dry-runs like
real requests).

Exit status: 0 when a sync would change nothing, 1 when it would change something or an object
could not be read (unknown), 2 when diff could not decide (bad flags or configuration, no such
source, a Secret of the source you may not read, a fetch, render or policy error, or the
cluster unreachable).`,
		Example: `  driftless diff payments
  driftless diff                          # every GitSource of the Driftless namespace
  driftless diff payments --config driftless.yaml   # its policy set from a local configuration
  driftless diff --config driftless.yaml  # the sources: of a configuration file`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError(fmt.Errorf("--output %q: want text or json", output))
			}
			name := sourceName
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return usageError(fmt.Errorf("source %q and --source %q: name one source", args[0], name))
				}
				name = args[0]
			}
			d, err := newDiffer(o, configPath, serverDryRun)
			if err != nil {
				return usageError(err)
			}
			reports, err := d.diff(cmd.Context(), name)
			if err != nil {
				return usageError(err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(reports)
			} else {
				err = reconciler.WriteDiff(out, reports)
			}
			if err != nil {
				return usageError(fmt.Errorf("write the diff: %w", err))
			}
			var pending []string
			for _, r := range reports {
				if r.Pending() {
					pending = append(pending, fmt.Sprintf("source %s: %s", r.Source, strings.Join(r.Counts(), ", ")))
				}
			}
			if len(pending) > 0 {
				return &ExitError{Code: exitFailed, Err: fmt.Errorf("a sync would change something: %s", strings.Join(pending, "; "))}
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&configPath, "config", "", "a DriftlessConfig file: its sources when no name is given, else the policy sets and break-glass maximum (default: the installed configuration)")
	cmd.Flags().StringVar(&sourceName, "source", "", "the source to diff, as the SOURCE argument")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVar(&serverDryRun, "server-dry-run", false, "ask the API server with a server-side dry-run apply instead of reading (needs patch rights and, in protected namespaces, the reconciler's identity)")
	return cmd
}

// differ holds what one run of diff connects with and reads.
type differ struct {
	o    *sourceOptions
	opts reconciler.Options
	mode reconciler.DiffMode
	kube kubernetes.Interface
	// reader reads the Secrets and ConfigMaps GitSources refer to, as the caller.
	reader client.Reader
	// file is the --config file, nil without one; path is its path.
	file *v1alpha1.DriftlessConfig
	path string
}

func newDiffer(o *sourceOptions, configPath string, serverDryRun bool) (*differ, error) {
	d := &differ{o: o, path: configPath, mode: reconciler.DiffRead}
	if serverDryRun {
		d.mode = reconciler.DiffServerDryRun
	}
	if configPath != "" {
		cfg, err := v1alpha1.Load(configPath)
		if err != nil {
			return nil, err
		}
		d.file = cfg
	}
	restConfig, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	dyn, err := o.dynamic()
	if err != nil {
		return nil, err
	}
	mapper, err := o.flags.ToRESTMapper()
	if err != nil {
		return nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if d.kube, err = kubernetes.NewForConfig(restConfig); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if d.reader, err = client.New(restConfig, client.Options{Scheme: scheme.Scheme, Mapper: mapper}); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	d.opts = reconciler.Options{Client: dyn, Mapper: mapper, OpenAPI: disco.OpenAPIV3()}
	return d, nil
}

// diff reports on the GitSource name, or on every GitSource of the namespace, or on the
// sources of the --config file, as the command's help says.
func (d *differ) diff(ctx context.Context, name string) ([]*reconciler.DiffReport, error) {
	ns := d.o.sourceNamespace()
	if name == "" && d.file != nil {
		return d.config(ctx, "")
	}
	var list []v1alpha1.GitSource
	if name == "" {
		var err error
		if list, err = sources.List(ctx, d.opts.Client, ns); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("no GitSource in namespace %s: pass -n for another namespace, or --config FILE for the sources of a configuration file", ns)
		}
	} else {
		gs, err := sources.Get(ctx, d.opts.Client, ns, name)
		switch {
		case errors.Is(err, sources.ErrNotFound) && d.file == nil:
			return nil, fmt.Errorf("no GitSource %q in namespace %s, and no --config declares it", name, ns)
		case errors.Is(err, sources.ErrNotFound):
			if !slices.ContainsFunc(d.file.Sources, func(s v1alpha1.Source) bool { return s.Name == name }) {
				return nil, fmt.Errorf("no GitSource %q in namespace %s, and --config %s declares no source %q", name, ns, d.path, name)
			}
			return d.config(ctx, name)
		case err != nil:
			return nil, err
		}
		list = []v1alpha1.GitSource{*gs}
	}
	return d.gitSources(ctx, list)
}

// config diffs the sources of the --config file, or its one source name.
func (d *differ) config(ctx context.Context, name string) ([]*reconciler.DiffReport, error) {
	sets := policy.NewSets()
	if err := sets.Load(ctx, d.file); err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	opts := d.opts
	opts.Gate = server.Gate(sets)
	reports, err := reconciler.DiffConfig(ctx, d.file, reconciler.DiffOptions{Options: opts, Source: name, Mode: d.mode})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	return reports, nil
}

// gitSources diffs GitSources with the installation's configuration: the --config file, or
// else the installed one.
func (d *differ) gitSources(ctx context.Context, list []v1alpha1.GitSource) ([]*reconciler.DiffReport, error) {
	cfg, from, installed := d.file, "--config "+d.path, false
	var notes []string
	if cfg == nil {
		c, cm, err := installation.Config(ctx, d.kube, d.o.namespace)
		switch {
		case err != nil && cm != nil:
			// Installed but broken: the reconciler would not run with it either.
			return nil, err
		case err != nil:
			// Sources without a policy set can still be diffed, with the defaults.
			cfg = &v1alpha1.DriftlessConfig{}
			v1alpha1.SetDefaults(cfg)
			from = fmt.Sprintf("the installed configuration, which could not be read (%v)", err)
			notes = append(notes, fmt.Sprintf("the installed configuration could not be read (%v): the break-glass maximum is taken as the default %s; --config FILE names a configuration",
				err, cfg.Guard.BreakGlass.MaxDuration.Duration))
		default:
			cfg, from, installed = c, fmt.Sprintf("the installed configuration (configmap %s/%s)", cm.Namespace, cm.Name), true
		}
	}
	gate, err := gitSourceGate(ctx, cfg, from, installed, list)
	if err != nil {
		return nil, err
	}
	opts := d.opts
	opts.Gate = gate
	return reconciler.DiffGitSources(ctx, cfg, list, reconciler.DiffOptions{Options: opts, Mode: d.mode, Reader: d.reader, Notes: notes})
}

// gitSourceGate compiles the policy sets that GitSources of list name, as cfg (which from
// names) declares them, into the reconciler's gate. A set cfg does not declare is an error;
// so is a set of the installed configuration with Rego files, which are on the reconciler's
// filesystem, not here.
func gitSourceGate(ctx context.Context, cfg *v1alpha1.DriftlessConfig, from string, installed bool, list []v1alpha1.GitSource) (reconciler.Gate, error) {
	sel := *cfg
	sel.PolicySets = nil
	for _, gs := range list {
		name := gs.Spec.PolicySet
		named := func(ps v1alpha1.PolicySet) bool { return ps.Name == name }
		if name == "" || slices.ContainsFunc(sel.PolicySets, named) {
			continue
		}
		i := slices.IndexFunc(cfg.PolicySets, named)
		if i < 0 {
			return nil, fmt.Errorf("gitsource %s/%s: spec.policySet: policy set %q is not declared by %s; pass --config FILE with the DriftlessConfig that declares it",
				gs.Namespace, gs.Name, name, from)
		}
		if ps := cfg.PolicySets[i]; installed && len(ps.Paths) > 0 {
			return nil, fmt.Errorf("gitsource %s/%s: spec.policySet: policy set %q of %s reads Rego files on the reconciler's filesystem (paths %s); pass --config FILE with a DriftlessConfig whose policy set %q reads them here",
				gs.Namespace, gs.Name, name, from, strings.Join(ps.Paths, ", "), name)
		}
		sel.PolicySets = append(sel.PolicySets, cfg.PolicySets[i])
	}
	sets := policy.NewSets()
	if err := sets.Load(ctx, &sel); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return server.Gate(sets), nil
}
