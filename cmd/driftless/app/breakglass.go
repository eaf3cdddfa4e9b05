package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/installation"
)

// configMapName and configMapKey locate the DriftlessConfig in the cluster (see config/default).
const (
	configMapName = v1alpha1.ConfigMapName
	configMapKey  = v1alpha1.ConfigMapKey
)

type breakGlassOptions struct {
	flags       *genericclioptions.ConfigFlags
	reason      string
	duration    time.Duration
	maxDuration time.Duration
	namespace   string
	noPreflight bool
	list        bool
	end         bool
	history     bool
	output      string
	clock       clock.PassiveClock
}

func newBreakGlassCommand() *cobra.Command {
	o := &breakGlassOptions{flags: genericclioptions.NewConfigFlags(true), clock: clock.RealClock{}}
	cmd := &cobra.Command{
		Use:   "break-glass [-n NAMESPACE] KIND/NAME (--reason REASON [--for DURATION, default 1h] | --end) | --list | --history [-o json]",
		Short: "Open a time-boxed, audited exception to the guard on one object, as yourself",
		Long: `break-glass annotates one object, with your own kubeconfig identity, so that members of the
break-glass groups may change it until the expiry:

  driftless.dev/break-glass: <reason>
  driftless.dev/break-glass-until: <now + --for (default 1h), RFC 3339>
  driftless.dev/break-glass-by: <you>
  driftless.dev/break-glass-group: <your break-glass group>

Before it asks the API server, it reads the installed Driftless configuration (the ConfigMap
labelled driftless.dev/component=config in --driftless-namespace) and refuses what the guard
would refuse: a caller outside the break-glass groups, or a duration beyond the maximum. When it
cannot read that configuration it says so and exits 1; --no-preflight skips the check and lets
the guard decide.

Break-glass covers objects that exist: the guard denies creating objects under it. While it
lasts, the reconciler leaves the object alone and records its diff against Git; at expiry it
reverts the object to Git and records the change you would have to commit to keep it, against
the current Git. Extending is running break-glass again, within the maximum again.

--end ends the break-glass on KIND/NAME early (as its requester or another break-glass group
member): the reconciler reverts the object to Git at once. --history shows the record of past
and current sessions (who, group, reason, how it ended, the patch to commit and its
conflicts), kept for guard.breakGlass.retention. --list shows every active break-glass:
object, who, reason and expiry. --reason and --for go only with opening a break-glass.`,
		Example: `  driftless break-glass -n production configmap/payment-gateway-config --reason "INC-123: raise pool size" --for 1h
  driftless break-glass -n production configmap/payment-gateway-config --end
  driftless break-glass --list`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var modes []string
			for name, on := range map[string]bool{"--list": o.list, "--end": o.end, "--history": o.history} {
				if on {
					modes = append(modes, name)
				}
			}
			if len(modes) > 1 {
				return usageError(errors.New("--list, --end and --history exclude each other"))
			}
			// --reason and --for only open a break-glass; elsewhere they would be ignored.
			for _, name := range []string{"reason", "for"} {
				if len(modes) == 1 && cmd.Flags().Changed(name) {
					return usageError(fmt.Errorf("--%s opens a break-glass; %s takes no --%s", name, modes[0], name))
				}
			}
			switch {
			case o.history:
				return o.runHistory(cmd.Context(), cmd.OutOrStdout(), args)
			case o.list:
				if len(args) > 0 {
					return &ExitError{Code: 2, Err: errors.New("--list takes no object")}
				}
				return o.runList(cmd.Context(), cmd.OutOrStdout())
			case len(args) != 1:
				return &ExitError{Code: 2, Err: errors.New("name one object as KIND/NAME, for example configmap/payment-gateway-config")}
			case o.end:
				return o.runEnd(cmd.Context(), cmd.OutOrStdout(), args[0])
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	o.flags.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "", "why, such as the incident ticket (required)")
	f.DurationVar(&o.duration, "for", time.Hour, "how long the break-glass lasts, within the guard's maximum")
	f.DurationVar(&o.maxDuration, "max-duration", 0, "the guard's maximum (default: read from the installed configuration)")
	f.StringVar(&o.namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "the namespace Driftless is installed in")
	f.BoolVar(&o.noPreflight, "no-preflight", false, "do not read the installed configuration; let the guard decide")
	f.BoolVar(&o.list, "list", false, "list active break-glass objects")
	f.BoolVar(&o.end, "end", false, "end the break-glass on the object now")
	f.BoolVar(&o.history, "history", false, "show the record of break-glass sessions: who, why, how they ended, the patch to commit and conflicts")
	f.StringVarP(&o.output, "output", "o", "text", "output of --history: text or json")
	return cmd
}

// installedGuard is what the installed configuration says of break-glass.
type installedGuard struct {
	groups      []string
	maxDuration time.Duration
	// from names the ConfigMap it was read from.
	from string
}

// guardSettings returns the installed guard's break-glass settings, with --max-duration
// overriding the maximum. With --no-preflight it returns nil: the guard decides.
func (o *breakGlassOptions) guardSettings(ctx context.Context, cs kubernetes.Interface) (*installedGuard, error) {
	if o.noPreflight {
		return nil, nil
	}
	g, err := installedBreakGlass(ctx, cs, o.namespace)
	if err != nil {
		return nil, err
	}
	if o.maxDuration > 0 {
		g.maxDuration = o.maxDuration
	}
	return g, nil
}

// installedBreakGlass reads the break-glass groups and maximum of the configuration installed
// in namespace, for the commands that check them before asking the API server.
func installedBreakGlass(ctx context.Context, cs kubernetes.Interface, namespace string) (*installedGuard, error) {
	cfg, cm, err := installation.Config(ctx, cs, namespace)
	if err != nil {
		return nil, fmt.Errorf("%w; pass --driftless-namespace if Driftless is installed elsewhere, or --no-preflight to let admission decide", err)
	}
	v1alpha1.SetDefaults(cfg)
	return &installedGuard{groups: cfg.Guard.BreakGlass.Groups, maxDuration: cfg.Guard.BreakGlass.MaxDuration.Duration, from: "configmap " + namespace + "/" + cm.Name}, nil
}

func (o *breakGlassOptions) clients() (*kubernetes.Clientset, error) {
	restConfig, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(restConfig)
}

func (o *breakGlassOptions) run(ctx context.Context, out io.Writer, target string) error {
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return &ExitError{Code: 2, Err: errors.New("--reason is required: say why, for example the incident ticket")}
	}
	if o.duration <= 0 {
		return &ExitError{Code: 2, Err: fmt.Errorf("--for %s: must be positive", o.duration)}
	}
	cs, err := o.clients()
	if err != nil {
		return err
	}
	guard, err := o.guardSettings(ctx, cs)
	if err != nil {
		return err
	}
	if guard != nil && o.duration > guard.maxDuration {
		return &ExitError{Code: 2, Err: fmt.Errorf("--for %s is more than the guard's maximum of %s (%s); ask again within it, and break glass again before it expires to extend", o.duration, guard.maxDuration, guard.from)}
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("find out who you are (SelfSubjectReview): %w", err)
	}
	me := review.Status.UserInfo
	annotations := map[string]any{
		v1alpha1.AnnotationBreakGlass:   reason,
		v1alpha1.AnnotationBreakGlassBy: me.Username,
	}
	if guard != nil {
		i := slices.IndexFunc(guard.groups, func(g string) bool { return slices.Contains(me.Groups, g) })
		if i < 0 {
			if len(guard.groups) == 0 {
				return fmt.Errorf("break-glass is not enabled in this cluster (guard.breakGlass.groups is empty in %s)", guard.from)
			}
			return fmt.Errorf("%s is not in a break-glass group (%s); ask a member of one", me.Username, strings.Join(guard.groups, ", "))
		}
		annotations[v1alpha1.AnnotationBreakGlassGroup] = guard.groups[i]
	}

	info, err := o.resolve(target)
	if err != nil {
		return err
	}
	until := o.clock.Now().Add(o.duration).UTC().Truncate(time.Second)
	annotations[v1alpha1.AnnotationBreakGlassUntil] = until.Format(time.RFC3339)
	if err := o.patchAnnotations(info, annotations); err != nil {
		return fmt.Errorf("break glass on %s: %w", describe(info), err)
	}
	fmt.Fprintf(out, "break-glass on %s by %s until %s (%s), reason %q.\n", describe(info), me.Username, until.Format(time.RFC3339), o.duration, reason)
	fmt.Fprintf(out, "Until then members of the break-glass groups may change it and the reconciler leaves it alone.\n")
	fmt.Fprintf(out, "At expiry the reconciler reverts it to Git and records your change as a patch against the current Git; to keep it, commit it before then.\n")
	return nil
}

// runEnd removes the break-glass annotations of one object, ending its break-glass now.
func (o *breakGlassOptions) runEnd(ctx context.Context, out io.Writer, target string) error {
	info, err := o.resolve(target)
	if err != nil {
		return err
	}
	accessor, err := meta.Accessor(info.Object)
	if err != nil {
		return fmt.Errorf("read %s: %w", describe(info), err)
	}
	if !v1alpha1.HasBreakGlass(accessor.GetAnnotations()) {
		return fmt.Errorf("%s has no break-glass to end", describe(info))
	}
	remove := map[string]any{}
	for _, a := range v1alpha1.BreakGlassAnnotations {
		remove[a] = nil
	}
	if err := o.patchAnnotations(info, remove); err != nil {
		return fmt.Errorf("end the break-glass on %s: %w", describe(info), err)
	}
	fmt.Fprintf(out, "ended the break-glass on %s; the reconciler reverts it to Git now and records the change to commit.\n", describe(info))
	return nil
}

// patchAnnotations merges annotations (nil values remove) into the object, as the caller.
func (o *breakGlassOptions) patchAnnotations(info *resource.Info, annotations map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	helper := resource.NewHelper(info.Client, info.Mapping).WithFieldManager("driftless-break-glass")
	_, err = helper.Patch(info.Namespace, info.Name, types.MergePatchType, patch, nil)
	return err
}

func (o *breakGlassOptions) resolve(target string) (*resource.Info, error) {
	ns, explicit, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	r := resource.NewBuilder(o.flags).Unstructured().NamespaceParam(ns).DefaultNamespace().
		ResourceTypeOrNameArgs(false, target).SingleResourceType().Flatten().Do()
	infos, err := r.Infos()
	if err != nil {
		if !o.namespaced(target) {
			return nil, fmt.Errorf("find %s: %w", target, err)
		}
		if apierrors.IsNotFound(err) && !explicit {
			return nil, fmt.Errorf("find %s in namespace %q: %w; pass -n NAMESPACE if it is in another namespace", target, ns, err)
		}
		return nil, fmt.Errorf("find %s in namespace %q: %w", target, ns, err)
	}
	if len(infos) != 1 {
		return nil, fmt.Errorf("%s names %d objects, want one", target, len(infos))
	}
	return infos[0], nil
}

// namespaced reports whether target's kind is namespaced, true when that cannot be told.
func (o *breakGlassOptions) namespaced(target string) bool {
	mapper, err := o.flags.ToRESTMapper()
	if err != nil {
		return true
	}
	kind, _, _ := strings.Cut(target, "/")
	_, gr := schema.ParseResourceArg(strings.ToLower(kind))
	gvk, err := mapper.KindFor(gr.WithVersion(""))
	if err != nil {
		return true
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return true
	}
	return mapping.Scope.Name() == meta.RESTScopeNameNamespace
}

func describe(info *resource.Info) string {
	name := info.Mapping.Resource.Resource + "/" + info.Name
	if info.Namespace != "" {
		return name + " in namespace " + info.Namespace
	}
	return name
}

func (o *breakGlassOptions) runList(ctx context.Context, out io.Writer) error {
	restConfig, err := o.flags.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// One metadata list per resource type: lift client-go's default 5 requests/s.
	restConfig.QPS, restConfig.Burst = 50, 100
	// Listing every resource touches deprecated APIs too; their warnings are noise here.
	restConfig.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	maxDuration := o.maxDuration
	if maxDuration <= 0 {
		guard, err := o.guardSettings(ctx, cs)
		if err != nil {
			return err
		}
		if guard == nil {
			return &ExitError{Code: 2, Err: errors.New("--list --no-preflight needs --max-duration: which break-glass holds depends on the guard's maximum")}
		}
		maxDuration = guard.maxDuration
	}
	found, err := installation.ActiveBreakGlass(ctx, restConfig, o.clock.Now(), maxDuration)
	if err != nil {
		return err
	}
	return installation.WriteBreakGlass(out, found, o.clock.Now())
}
