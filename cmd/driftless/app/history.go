package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driftless-dev/driftless/reconciler"
)

// runHistory prints the break-glass record of every source, newest first.
func (o *breakGlassOptions) runHistory(ctx context.Context, out io.Writer, args []string) error {
	switch {
	case len(args) > 0:
		return &ExitError{Code: 2, Err: errors.New("--history takes no object")}
	case o.list || o.end:
		return &ExitError{Code: 2, Err: errors.New("--history excludes --list and --end")}
	case o.output != "text" && o.output != "json":
		return &ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", o.output)}
	}
	client, err := dynamicClient(o.flags)
	if err != nil {
		return err
	}
	sessions, err := reconciler.ReadBreakGlassHistory(ctx, client, o.namespace)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if sessions == nil {
			sessions = []reconciler.BreakGlassSession{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(sessions)
	}
	return printHistory(out, sessions, o.clock.Now())
}

// printHistory prints sessions as a table, newest first, then each session's patch and
// conflicts.
func printHistory(out io.Writer, sessions []reconciler.BreakGlassSession, now time.Time) error {
	if len(sessions) == 0 {
		_, err := fmt.Fprintln(out, "no break-glass session on record")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOBJECT\tBY\tREASON\tSTART\tENDED\tAT\tCONFLICTS")
	for _, s := range sessions {
		at := s.End
		if s.Active() {
			at = s.Until
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Source, s.Object, orUnknown(s.By), s.Reason,
			stamp(s.Start), ending(s), stamp(at), len(s.Conflicts))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range sessions {
		fmt.Fprintf(out, "\n%s (source %s): break-glass %q by %s", s.Object, s.Source, s.Reason, orUnknown(s.By))
		if s.Group != "" {
			fmt.Fprintf(out, " (group %s)", s.Group)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "  started %s with Git at %s", stamp(s.Start), orUnknown(short(s.StartRevision)))
		switch {
		case s.Active():
			fmt.Fprintf(out, "; active until %s (%s left)\n", stamp(s.Until), s.Until.Sub(now).Truncate(time.Second))
		case s.Ending == reconciler.EndingLeftGit:
			fmt.Fprintf(out, "; the object left Git at %s, nothing was reverted\n", stamp(s.End))
		default:
			fmt.Fprintf(out, "; %s, reverted to Git at %s on %s\n", ending(s), orUnknown(short(s.EndRevision)), stamp(s.End))
		}
		if s.Problem != "" {
			fmt.Fprintf(out, "  not honoured: %s\n", s.Problem)
		}
		if s.Managers != "" {
			fmt.Fprintf(out, "  written by: %s\n", s.Managers)
		}
		if s.Note != "" {
			fmt.Fprintf(out, "  note: %s\n", s.Note)
		}
		printPatch(out, s.Patch, s.Conflicts, s.Active(), s.EndRevision)
	}
	return nil
}

// printPatch prints a session's patch to commit and its conflicts.
func printPatch(out io.Writer, patch string, conflicts []reconciler.BreakGlassConflict, active bool, rev string) {
	against := "the current Git"
	if !active && rev != "" {
		against = "Git at " + short(rev)
	}
	switch {
	case patch != "":
		fmt.Fprintf(out, "  patch to commit to keep the change (only this session's change, rebased on %s; apply it as a merge patch to the overlay):\n%s\n", against, indent(patch, "    "))
	case len(conflicts) == 0 && !active:
		fmt.Fprintln(out, "  nothing to commit: Git has every change of the session")
	}
	if len(conflicts) > 0 {
		fmt.Fprintln(out, "  conflicts: the session and Git both changed these since it began; the patch leaves them out, decide and commit by hand:")
		for _, c := range conflicts {
			fmt.Fprintf(out, "    %s: yours %s, Git %s\n", c.Field, c.Yours, c.Git)
		}
	}
}

// ending says how a session ended, or that it is active.
func ending(s reconciler.BreakGlassSession) string {
	if s.Active() {
		return "active"
	}
	return string(s.Ending)
}

// stamp prints a time as RFC 3339 in UTC, or "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orUnknown prints s, or "(not recorded)" when it is empty.
func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(not recorded)"
	}
	return s
}
