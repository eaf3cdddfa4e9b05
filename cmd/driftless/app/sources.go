package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/sources"
)

// sourceOptions are the connection flags the source commands share. GitSources live in the
// Driftless namespace: -n defaults to --driftless-namespace, not to the kubeconfig's
// namespace.
type sourceOptions struct {
	flags     *genericclioptions.ConfigFlags
	namespace string
	clock     clock.PassiveClock
}

func newSourceOptions() *sourceOptions {
	return &sourceOptions{flags: genericclioptions.NewConfigFlags(true), clock: clock.RealClock{}}
}

func (o *sourceOptions) addFlags(cmd *cobra.Command) {
	o.flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "the namespace Driftless is installed in; the default for -n")
}

// sourceNamespace is -n when given, else the Driftless namespace.
func (o *sourceOptions) sourceNamespace() string {
	if o.flags.Namespace != nil && *o.flags.Namespace != "" {
		return *o.flags.Namespace
	}
	return o.namespace
}

func (o *sourceOptions) dynamic() (dynamic.Interface, error) {
	return dynamicClient(o.flags)
}

func newGetCommand() *cobra.Command {
	get := &cobra.Command{
		Use:   "get",
		Short: "List Driftless objects: get sources",
		Args:  cobra.NoArgs,
	}
	get.AddCommand(newGetSourcesCommand())
	return get
}

func newGetSourcesCommand() *cobra.Command {
	o := newSourceOptions()
	var (
		output        string
		allNamespaces bool
		watchChanges  bool
	)
	cmd := &cobra.Command{
		Use:     "sources [NAME] [-A] [-o wide|json|yaml] [--watch]",
		Aliases: []string{"source", "gitsources", "gitsource", "gs"},
		Short:   "List the GitSources with their readiness, revision and last sync",
		Long: `get sources lists GitSources as kubectl get gitsources does, with the reconciler's view:
READY (the Ready condition of the current generation; Unknown until the first sync of it),
REVISION (the last commit applied in full), LAST SYNC, AGE and the Ready message. -o wide adds
the URL, ref, suspension, managed objects and drift reverts; -o json|yaml prints the objects.
--watch prints a row again whenever a source changes, until interrupted.`,
		Example: `  driftless get sources
  driftless get sources apps -o yaml
  driftless get sources -A -o wide --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := sources.ParseOutput(output)
			if err != nil {
				return usageError(err)
			}
			ns := o.sourceNamespace()
			if allNamespaces {
				ns = ""
			}
			client, err := o.dynamic()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var list []v1alpha1.GitSource
			if len(args) == 1 {
				gs, err := sources.Get(ctx, client, ns, args[0])
				if err != nil {
					return err
				}
				list = []v1alpha1.GitSource{*gs}
			} else if list, err = sources.List(ctx, client, ns); err != nil {
				return err
			}
			if out == sources.OutputJSON || out == sources.OutputYAML {
				if watchChanges {
					return usageError(errors.New("--watch prints tables only: drop -o json|yaml"))
				}
				return sources.WriteObjects(cmd.OutOrStdout(), list, out)
			}
			table := sources.NewTable(cmd.OutOrStdout(), out == sources.OutputWide, allNamespaces)
			if len(list) == 0 && !watchChanges {
				fmt.Fprintf(cmd.OutOrStdout(), "No GitSources found%s.\n", sources.InNamespace(ns))
				return nil
			}
			if err := table.Write(list, o.clock.Now()); err != nil {
				return err
			}
			if !watchChanges {
				return nil
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return sources.Watch(ctx, client, ns, name, func(gs *v1alpha1.GitSource) error {
				return table.Write([]v1alpha1.GitSource{*gs}, o.clock.Now())
			})
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "wide, json or yaml (default: a table)")
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list GitSources in every namespace (only the Driftless namespace's are reconciled)")
	cmd.Flags().BoolVarP(&watchChanges, "watch", "w", false, "after listing, print a source again whenever it changes")
	return cmd
}

func newReconcileCommand() *cobra.Command {
	o := newSourceOptions()
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile SOURCE [--wait [--timeout DURATION]]",
		Short: "Ask the reconciler to sync a source now",
		Long: `reconcile asks the reconciler to sync a GitSource now instead of at its next interval, by
setting the source's driftless.dev/reconcile-requested-at annotation as you. It changes no desired
state: the reconciler still fetches and verifies the commit its ref names. It needs the right to
patch GitSources in the Driftless namespace (the driftless-sync-requester Role); the request is
recorded in the API server's audit log and in the source's status.lastHandledReconcileAt.

With --wait it returns when the sync finished, printing its result: exit 0 when it applied the
revision, 1 when the sync failed or the source is suspended, 2 when --timeout passed first.`,
		Example: `  driftless reconcile apps
  git push && driftless reconcile apps --wait --timeout 2m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := o.dynamic()
			if err != nil {
				return err
			}
			ctx, ns, name := cmd.Context(), o.sourceNamespace(), args[0]
			token, err := sources.RequestSync(ctx, client, ns, name, o.clock.Now())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "requested a sync of gitsource %s/%s (%s)\n", ns, name, token)
			if !wait {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			gs, err := sources.WaitForSync(wctx, client, ns, name, token)
			if errors.Is(err, context.DeadlineExceeded) {
				return &ExitError{Code: 2, Err: fmt.Errorf("gitsource %s/%s: the sync did not finish within --timeout %s; driftless get sources %s shows where it is", ns, name, timeout, name)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(out, sources.Describe(gs))
			if c, ok := sources.Ready(gs); !ok || c.Status != metav1.ConditionTrue || sources.Suspended(gs) {
				return &ExitError{Code: 1, Err: fmt.Errorf("gitsource %s/%s did not apply its revision", ns, name)}
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the sync finished and exit with its result")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func newSuspendCommand() *cobra.Command {
	o := newSourceOptions()
	var (
		reason      string
		duration    time.Duration
		noPreflight bool
	)
	cmd := &cobra.Command{
		Use:   "suspend SOURCE --reason REASON --for DURATION",
		Short: "Stop a source's syncs and self-heal for a time, as a break-glass exception",
		Long: `suspend stops the reconciler from syncing a GitSource and from reverting drift on its objects,
until the expiry. Turning self-heal off is an exception like break-glass: only members of the
break-glass groups may, with a reason and an expiry within guard.breakGlass.maxDuration. It sets,
as you:

  driftless.dev/suspend: <reason>
  driftless.dev/suspend-until: <now + --for, RFC 3339>
  driftless.dev/suspend-by: <you>

The self-protection policy refuses the annotations from anyone else or without your name, and
the reconciler ignores an expiry beyond the maximum. The suspension is recorded in the source's
status and the ledger; at expiry the reconciler removes the annotations, syncs and reverts the
drift made meanwhile. driftless resume ends it early.`,
		Example: `  driftless suspend apps --reason "INC-123: hold the rollout" --for 30m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError(errors.New("--reason is required: say why, for example the incident ticket"))
			}
			if duration <= 0 {
				return usageError(fmt.Errorf("--for %s: must be positive", duration))
			}
			restConfig, err := o.flags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			cs, err := kubernetes.NewForConfig(restConfig)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("find out who you are (SelfSubjectReview): %w", err)
			}
			me := review.Status.UserInfo
			if !noPreflight {
				guard, err := installedBreakGlass(ctx, cs, o.namespace)
				if err != nil {
					return err
				}
				if duration > guard.maxDuration {
					return usageError(fmt.Errorf("--for %s is more than the break-glass maximum of %s (%s)", duration, guard.maxDuration, guard.from))
				}
				if !slices.ContainsFunc(guard.groups, func(g string) bool { return slices.Contains(me.Groups, g) }) {
					return &ExitError{Code: 1, Err: fmt.Errorf("%s is not in a break-glass group (%s): suspending a source turns self-heal off, which only they may", me.Username, strings.Join(guard.groups, ", "))}
				}
			}
			client, err := dynamic.NewForConfig(restConfig)
			if err != nil {
				return err
			}
			ns, name := o.sourceNamespace(), args[0]
			until := o.clock.Now().Add(duration).UTC().Truncate(time.Second)
			if err := sources.Suspend(ctx, client, ns, name, sources.Suspension{Reason: reason, By: me.Username, Until: until}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "suspended gitsource %s/%s until %s (%s), by %s, reason %q.\n", ns, name, until.Format(time.RFC3339), duration, me.Username, strings.TrimSpace(reason))
			fmt.Fprintln(out, "Until then the reconciler neither syncs it nor reverts drift on its objects; at expiry it syncs and reverts. driftless resume ends it now.")
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, such as the incident ticket (required)")
	cmd.Flags().DurationVar(&duration, "for", 0, "how long the suspension lasts (required; at most the break-glass maximum)")
	cmd.Flags().BoolVar(&noPreflight, "no-preflight", false, "do not read the installed configuration; let admission decide")
	return cmd
}

func newResumeCommand() *cobra.Command {
	o := newSourceOptions()
	cmd := &cobra.Command{
		Use:   "resume SOURCE",
		Short: "End a source's suspension now: it syncs and reverts drift at once",
		Long: `resume removes the suspension annotations driftless suspend set; the reconciler syncs the source
and reverts drift on its objects at once. Like suspend, only members of the break-glass groups may.
It does not undo spec.suspend, which only a commit changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := o.dynamic()
			if err != nil {
				return err
			}
			ns, name := o.sourceNamespace(), args[0]
			if err := sources.Resume(cmd.Context(), client, ns, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resumed gitsource %s/%s: the reconciler syncs it and reverts drift now.\n", ns, name)
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}
