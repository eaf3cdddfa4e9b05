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
		Short: "Show each source's revision, last sync, violations, drift reverts and active break-glass",
		Long: `status reads the status the reconciler keeps in the driftless-status-<source> ConfigMaps
(kubectl get configmap -n driftless-system -l ... shows the same data) and prints it.`,
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
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			case "text":
				return printStatus(cmd.OutOrStdout(), statuses, time.Now())
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

func printStatus(out io.Writer, statuses []reconciler.Status, now time.Time) error {
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
			fmt.Fprintf(out, "  last sync: %s\n", s.Message)
		}
		for _, v := range s.Violations {
			fmt.Fprintf(out, "  violation: %s\n", v.String())
		}
		for _, bg := range s.BreakGlass {
			by := bg.By
			if by == "" {
				by = "(not recorded)"
			}
			fmt.Fprintf(out, "  break-glass: %s by %s until %s (%s left), reason %q\n", bg.Object, by, bg.Until.UTC().Format(time.RFC3339), bg.Until.Sub(now).Truncate(time.Second), bg.Reason)
			if bg.Patch != "" {
				fmt.Fprintf(out, "    diff from Git (commit it to keep it):\n%s\n", indent(bg.Patch, "      "))
			}
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
	return now.Sub(t).Truncate(time.Second).String() + " ago"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
