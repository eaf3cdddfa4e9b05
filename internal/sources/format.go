package sources

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Output is how [Write] prints sources, as kubectl's -o names it.
type Output string

// The outputs of [Write].
const (
	OutputTable Output = ""
	OutputWide  Output = "wide"
	OutputJSON  Output = "json"
	OutputYAML  Output = "yaml"
)

// ParseOutput returns the output -o names, or an error naming the ones there are.
func ParseOutput(s string) (Output, error) {
	switch o := Output(s); o {
	case OutputTable, OutputWide, OutputJSON, OutputYAML:
		return o, nil
	}
	return "", fmt.Errorf("--output %q: want wide, json or yaml", s)
}

// Table prints sources as rows, the header once.
type Table struct {
	out           *tabwriter.Writer
	wide          bool
	withNamespace bool
	headerDone    bool
}

// NewTable returns a table writing to out; withNamespace adds a NAMESPACE column, as kubectl
// does for -A.
func NewTable(out io.Writer, wide, withNamespace bool) *Table {
	return &Table{out: tabwriter.NewWriter(out, 0, 4, 3, ' ', 0), wide: wide, withNamespace: withNamespace}
}

// Write prints one row per source, at now, and flushes.
func (t *Table) Write(list []v1alpha1.GitSource, now time.Time) error {
	if !t.headerDone {
		cols := []string{"NAME", "READY", "REVISION", "LAST SYNC", "AGE", "MESSAGE"}
		if t.wide {
			cols = append(cols, "URL", "REF", "SUSPENDED", "MANAGED", "DRIFT REVERTS")
		}
		if t.withNamespace {
			cols = append([]string{"NAMESPACE"}, cols...)
		}
		fmt.Fprintln(t.out, strings.Join(cols, "\t"))
		t.headerDone = true
	}
	for i := range list {
		gs := &list[i]
		ready, message := "Unknown", "waiting for the first sync"
		if c, ok := Ready(gs); ok {
			ready, message = string(c.Status), c.Message
		}
		lastSync := "<never>"
		if gs.Status.LastSyncTime != nil {
			lastSync = ago(gs.Status.LastSyncTime.Time, now)
		}
		row := []string{gs.Name, ready, shortSHA(gs.Status.LastAppliedRevision), lastSync, ago(gs.CreationTimestamp.Time, now), oneLine(message, 80)}
		if t.wide {
			suspended := "False"
			if s := gs.Status.Suspension; s != nil {
				suspended = "True: " + s.Reason
				if s.Until != nil {
					suspended += " until " + s.Until.UTC().Format(time.RFC3339)
				}
			} else if gs.Spec.Suspend {
				suspended = "True: spec.suspend"
			}
			row = append(row, gs.Spec.URL, gs.Status.Ref, suspended, fmt.Sprint(gs.Status.ObjectsManaged), fmt.Sprint(gs.Status.DriftReverts))
		}
		if t.withNamespace {
			row = append([]string{gs.Namespace}, row...)
		}
		fmt.Fprintln(t.out, strings.Join(row, "\t"))
	}
	return t.out.Flush()
}

// WriteObjects prints sources as a GitSourceList in JSON or YAML, as kubectl get -o does.
func WriteObjects(out io.Writer, list []v1alpha1.GitSource, o Output) error {
	items := make([]v1alpha1.GitSource, len(list))
	for i, gs := range list {
		gs.APIVersion, gs.Kind = v1alpha1.APIVersion, v1alpha1.GitSourceKind
		items[i] = gs
	}
	l := v1alpha1.GitSourceList{Items: items}
	l.APIVersion, l.Kind = "v1", "List"
	switch o {
	case OutputJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		return enc.Encode(l)
	case OutputYAML:
		b, err := yaml.Marshal(l)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	return fmt.Errorf("output %q is not an object format", o)
}

// Describe says in one line what a finished sync did, for `driftless reconcile --wait`.
func Describe(gs *v1alpha1.GitSource) string {
	if Suspended(gs) {
		if s := gs.Status.Suspension; s != nil {
			by := ""
			if s.By != "" {
				by = " by " + s.By
			}
			until := ""
			if s.Until != nil {
				until = " until " + s.Until.UTC().Format(time.RFC3339)
			}
			return fmt.Sprintf("gitsource %s is suspended%s%s (%s): it does not sync; driftless resume %s ends it", gs.Name, by, until, s.Reason, gs.Name)
		}
		return fmt.Sprintf("gitsource %s is suspended by spec.suspend in Git: it does not sync", gs.Name)
	}
	c, ok := Ready(gs)
	if !ok {
		return fmt.Sprintf("gitsource %s: no result reported yet", gs.Name)
	}
	return fmt.Sprintf("gitsource %s: Ready=%s %s: %s (revision %s)", gs.Name, c.Status, c.Reason, c.Message, shortSHA(gs.Status.LastAttemptedRevision))
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "<none>"
	}
	return s
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// oneLine keeps a message to one line of at most n runes, as a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
