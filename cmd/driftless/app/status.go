package app

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

func newStatusCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(false)
	var (
		namespace string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each source's revision, last sync, last change, violations, drift reverts and break-glass",
		Long: `status reads the status the reconciler keeps in the driftless-status-<source> ConfigMaps
(kubectl get configmap -n driftless-system -l ... shows the same data) and prints it: per source
the revision, the last sync, the last sync or revert that changed something, the objects held
back under an active break-glass (who, why, until when, the patch to commit) and the latest
break-glass sessions from the record (driftless break-glass --history shows all of them).
-o json prints the statuses only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := dynamicClient(flags)
			if err != nil {
				return err
			}
			statuses, err := reconciler.ReadStatus(cmd.Context(), client, namespace)
			if err != nil {
				return err
			}
			// The break-glass record is shown in the text only; a caller who may not read it
			// still sees the rest.
			sessions, historyErr := reconciler.ReadBreakGlassHistory(cmd.Context(), client, namespace)
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			case "text":
				if err := printStatus(cmd.OutOrStdout(), statuses, sessions, time.Now()); err != nil {
					return err
				}
				if historyErr != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "\nbreak-glass record not shown: %v\n", historyErr)
				}
				return nil
			default:
				return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", output)}
			}
		},
	}
	flags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&namespace, "driftless-namespace", v1alpha1.DefaultNamespace, "namespace Driftless runs in")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// dynamicClient connects with the standard kubeconfig flags.
func dynamicClient(flags *genericclioptions.ConfigFlags) (dynamic.Interface, error) {
	restConfig, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return dynamic.NewForConfig(restConfig)
}

// recentSessions is how many ended break-glass sessions status shows per source.
const recentSessions = 3

func printStatus(out io.Writer, statuses []reconciler.Status, sessions []reconciler.BreakGlassSession, now time.Time) error {
	if len(statuses) == 0 {
		_, err := fmt.Fprintln(out, "no source has synced yet")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tREVISION\tRESULT\tLAST ATTEMPT\tMANAGED\tAPPLIED\tPRUNED\tDRIFT REVERTS\tBREAK-GLASS")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Source, short(s.Revision), s.Result, ago(s.LastAttempt, now),
			s.ObjectsManaged, s.ObjectsApplied, s.ObjectsPruned, s.DriftReverts, len(s.BreakGlass))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range statuses {
		fmt.Fprintf(out, "\n%s: %s (%s) path %s\n", s.Source, s.URL, s.Ref, s.Path)
		if s.Revision != "" {
			fmt.Fprintf(out, "  applied %s %q by %s\n", short(s.Revision), s.Subject, s.Author)
		}
		if s.Message != "" {
			fmt.Fprintf(out, "  last sync (%s): %s\n", ago(s.LastAttempt, now), s.Message)
		}
		if s.LastChange != "" {
			fmt.Fprintf(out, "  last change (%s): %s\n", ago(s.LastChangeTime, now), s.LastChange)
		}
		for _, v := range s.Violations {
			fmt.Fprintf(out, "  violation: %s\n", v.String())
		}
		for _, bg := range s.BreakGlass {
			by := orUnknown(bg.By)
			if bg.Group != "" {
				by += " (group " + bg.Group + ")"
			}
			fmt.Fprintf(out, "  held back under break-glass: %s by %s until %s (%s left), reason %q; reverted to Git then\n",
				bg.Object, by, bg.Until.UTC().Format(time.RFC3339), bg.Until.Sub(now).Truncate(time.Second), bg.Reason)
			printPatch(out, bg.Patch, bg.Conflicts, true, "")
		}
		shown := 0
		for _, bs := range sessions {
			if bs.Source != s.Source || bs.Active() {
				continue
			}
			if shown == 0 {
				fmt.Fprintln(out, "  recent break-glass (driftless break-glass --history shows the patches):")
			}
			if shown++; shown > recentSessions {
				fmt.Fprintln(out, "    ...")
				break
			}
			what := "nothing to commit"
			if bs.Patch != "" {
				what = "a patch to commit"
			}
			if n := len(bs.Conflicts); n > 0 {
				what += fmt.Sprintf(", conflicts: %d", n)
			}
			fmt.Fprintf(out, "    %s by %s, reason %q: %s %s; %s\n", bs.Object, orUnknown(bs.By), bs.Reason, bs.Ending, ago(bs.End, now), what)
		}
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		// Another clock than this machine's, such as a test's.
		return "at " + t.UTC().Format(time.RFC3339)
	}
	return d.String() + " ago"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
