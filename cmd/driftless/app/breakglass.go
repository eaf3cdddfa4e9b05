package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// configMapName and configMapKey locate the DriftlessConfig in the cluster (see config/default).
const (
	configMapName = "driftless-config"
	configMapKey  = "config.yaml"
)

type breakGlassOptions struct {
	flags       *genericclioptions.ConfigFlags
	reason      string
	duration    time.Duration
	maxDuration time.Duration
	list        bool
	clock       clock.PassiveClock
}

func newBreakGlassCommand() *cobra.Command {
	o := &breakGlassOptions{flags: genericclioptions.NewConfigFlags(true), clock: clock.RealClock{}}
	cmd := &cobra.Command{
		Use:   "break-glass [-n NAMESPACE] KIND/NAME --reason REASON --for DURATION | --list",
		Short: "Open a time-boxed, audited exception to the guard on one object, as yourself",
		Long: `break-glass annotates one object, with your own kubeconfig identity, so that members of the
break-glass groups may change it until the expiry:

  driftless.dev/break-glass: <reason>
  driftless.dev/break-glass-until: <now + --for, RFC 3339>
  driftless.dev/break-glass-by: <you>

The guard checks the group, the reason and that the expiry is in the future and within the
configured maximum. While it lasts, the reconciler leaves the object alone and records its diff
against Git; at expiry it reverts the object to Git and records the diff you would have to
commit to keep the change. Extending is running break-glass again, within the maximum again.

--list shows every active break-glass: object, who, reason and expiry.`,
		Example: `  driftless break-glass -n production configmap/payment-gateway-config --reason "INC-123: raise pool size" --for 1h
  driftless break-glass --list`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.list {
				if len(args) > 0 {
					return &ExitError{Code: 2, Err: errors.New("--list takes no object")}
				}
				return o.runList(cmd.Context(), cmd.OutOrStdout())
			}
			if len(args) != 1 {
				return &ExitError{Code: 2, Err: errors.New("name one object as KIND/NAME, for example configmap/payment-gateway-config")}
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	o.flags.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "", "why, such as the incident ticket (required)")
	f.DurationVar(&o.duration, "for", time.Hour, "how long the break-glass lasts")
	f.DurationVar(&o.maxDuration, "max-duration", 0, "the guard's maximum (default: read from the driftless-config ConfigMap, else 4h)")
	f.BoolVar(&o.list, "list", false, "list active break-glass objects")
	return cmd
}

// guardSettings returns the break-glass groups and maximum duration: from the cluster's
// DriftlessConfig when the caller may read it, otherwise the defaults.
func (o *breakGlassOptions) guardSettings(ctx context.Context, cs kubernetes.Interface) (groups []string, maxDuration time.Duration, known bool) {
	maxDuration = v1alpha1.DefaultBreakGlassMaxDuration
	cm, err := cs.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Get(ctx, configMapName, metav1.GetOptions{})
	if err == nil {
		if cfg, err := v1alpha1.Decode([]byte(cm.Data[configMapKey])); err == nil {
			groups, maxDuration, known = cfg.Guard.BreakGlass.Groups, cfg.Guard.BreakGlass.MaxDuration.Duration, true
		}
	}
	if o.maxDuration > 0 {
		maxDuration = o.maxDuration
	}
	return groups, maxDuration, known
}

func (o *breakGlassOptions) run(ctx context.Context, out io.Writer, target string) error {
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return &ExitError{Code: 2, Err: errors.New("--reason is required: say why, for example the incident ticket")}
	}
	if o.duration <= 0 {
		return &ExitError{Code: 2, Err: fmt.Errorf("--for %s: must be positive", o.duration)}
	}
	restConfig, err := o.flags.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	groups, maxDuration, known := o.guardSettings(ctx, cs)
	if o.duration > maxDuration {
		return &ExitError{Code: 2, Err: fmt.Errorf("--for %s is more than the guard's maximum of %s; ask again within it, and break glass again before it expires to extend", o.duration, maxDuration)}
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("find out who you are (SelfSubjectReview): %w", err)
	}
	me := review.Status.UserInfo
	if known && !slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(me.Groups, g) }) {
		return fmt.Errorf("%s is not in a break-glass group (%s); ask a member of one", me.Username, strings.Join(groups, ", "))
	}

	info, err := o.resolve(target)
	if err != nil {
		return err
	}
	until := o.clock.Now().Add(o.duration).UTC().Truncate(time.Second)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		v1alpha1.AnnotationBreakGlass:      reason,
		v1alpha1.AnnotationBreakGlassUntil: until.Format(time.RFC3339),
		v1alpha1.AnnotationBreakGlassBy:    me.Username,
	}}})
	if err != nil {
		return err
	}
	helper := resource.NewHelper(info.Client, info.Mapping).WithFieldManager("driftless-break-glass")
	if _, err := helper.Patch(info.Namespace, info.Name, types.MergePatchType, patch, nil); err != nil {
		return fmt.Errorf("break glass on %s: %w", describe(info), err)
	}
	fmt.Fprintf(out, "break-glass on %s by %s until %s (%s), reason %q.\n", describe(info), me.Username, until.Format(time.RFC3339), o.duration, reason)
	fmt.Fprintf(out, "Until then members of the break-glass groups may change it and the reconciler leaves it alone.\n")
	fmt.Fprintf(out, "At expiry the reconciler reverts it to Git and records the diff to commit; to keep a change, commit it before then.\n")
	return nil
}

func (o *breakGlassOptions) resolve(target string) (*resource.Info, error) {
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	r := resource.NewBuilder(o.flags).Unstructured().NamespaceParam(ns).DefaultNamespace().
		ResourceTypeOrNameArgs(false, target).SingleResourceType().Flatten().Do()
	infos, err := r.Infos()
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", target, err)
	}
	if len(infos) != 1 {
		return nil, fmt.Errorf("%s names %d objects, want one", target, len(infos))
	}
	return infos[0], nil
}

func describe(info *resource.Info) string {
	name := info.Mapping.Resource.Resource + "/" + info.Name
	if info.Namespace != "" {
		return name + " in namespace " + info.Namespace
	}
	return name
}

// activeBreakGlass is one object under break-glass.
type activeBreakGlass struct {
	Namespace, Object, By, Reason string
	Until                         time.Time
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
	found, err := listBreakGlass(ctx, restConfig, o.clock.Now())
	if err != nil {
		return err
	}
	if len(found) == 0 {
		fmt.Fprintln(out, "no active break-glass")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tOBJECT\tBY\tREASON\tUNTIL\tREMAINING")
	for _, a := range found {
		by := a.By
		if by == "" {
			by = "(not recorded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Namespace, a.Object, by, a.Reason, a.Until.UTC().Format(time.RFC3339), a.Until.Sub(o.clock.Now()).Truncate(time.Second))
	}
	return tw.Flush()
}

// listBreakGlass finds every object whose break-glass has not expired at now, reading only
// metadata, across all listable resources the caller may list.
func listBreakGlass(ctx context.Context, restConfig *rest.Config, now time.Time) ([]activeBreakGlass, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	var found []activeBreakGlass
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := mc.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", r.Name, err)
			}
			for _, item := range items.Items {
				a := item.Annotations
				until, err := time.Parse(time.RFC3339, a[v1alpha1.AnnotationBreakGlassUntil])
				if a[v1alpha1.AnnotationBreakGlass] == "" || err != nil || !until.After(now) {
					continue
				}
				found = append(found, activeBreakGlass{
					Namespace: item.Namespace, Object: r.Name + "/" + item.Name,
					By: a[v1alpha1.AnnotationBreakGlassBy], Reason: a[v1alpha1.AnnotationBreakGlass], Until: until,
				})
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if !found[i].Until.Equal(found[j].Until) {
			return found[i].Until.Before(found[j].Until)
		}
		return found[i].Namespace+found[i].Object < found[j].Namespace+found[j].Object
	})
	return found, nil
}
