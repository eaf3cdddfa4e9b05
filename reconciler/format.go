package reconciler

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// This file formats the reconciler's records for people: the status of the sources, the
// break-glass record and diff reports, as the command line prints them and a web view can.

// statusRecentSessions is how many ended break-glass sessions WriteStatus shows per source.
const statusRecentSessions = 3

// WriteStatus writes the statuses of the sources as `driftless status` shows them, at now: a
// table of every source, then per source its revision, last sync and last change, the policy
// violations that stopped it, the objects held back under break-glass with the patch to commit,
// and the latest ended break-glass sessions of the record (sessions).
func WriteStatus(out io.Writer, statuses []Status, sessions []BreakGlassSession, now time.Time) error {
	if len(statuses) == 0 {
		_, err := fmt.Fprintln(out, "no source has synced yet")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tREVISION\tRESULT\tLAST ATTEMPT\tMANAGED\tAPPLIED\tPRUNED\tDRIFT REVERTS\tBREAK-GLASS")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Source, short(s.Revision), s.Result, displayAgo(s.LastAttempt, now),
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
			fmt.Fprintf(out, "  last sync (%s): %s\n", displayAgo(s.LastAttempt, now), s.Message)
		}
		if s.LastChange != "" {
			fmt.Fprintf(out, "  last change (%s): %s\n", displayAgo(s.LastChangeTime, now), s.LastChange)
		}
		for _, v := range s.Violations {
			fmt.Fprintf(out, "  violation: %s\n", v.String())
		}
		for _, bg := range s.BreakGlass {
			by := displayOrUnknown(bg.By)
			if bg.Group != "" {
				by += " (group " + bg.Group + ")"
			}
			fmt.Fprintf(out, "  held back under break-glass: %s by %s until %s (%s left), reason %q; reverted to Git then\n",
				bg.Object, by, bg.Until.UTC().Format(time.RFC3339), bg.Until.Sub(now).Truncate(time.Second), bg.Reason)
			writePatch(out, bg.Patch, bg.Conflicts, true, "")
		}
		shown := 0
		for _, bs := range sessions {
			if bs.Source != s.Source || bs.Active() {
				continue
			}
			if shown == 0 {
				fmt.Fprintln(out, "  recent break-glass (driftless break-glass --history shows the patches):")
			}
			if shown++; shown > statusRecentSessions {
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
			fmt.Fprintf(out, "    %s by %s, reason %q: %s %s; %s\n", bs.Object, displayOrUnknown(bs.By), bs.Reason, bs.Ending, displayAgo(bs.End, now), what)
		}
	}
	return nil
}

// displayAgo says how long before now t was, "never" when zero.
func displayAgo(t, now time.Time) string {
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

// displayIndent prefixes every line of s.
func displayIndent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// WriteBreakGlassHistory writes the break-glass record as `driftless break-glass --history`
// shows it, at now: a table of the sessions in the order given (newest first, as
// ReadBreakGlassHistory returns them), then each session's story, patch and conflicts.
func WriteBreakGlassHistory(out io.Writer, sessions []BreakGlassSession, now time.Time) error {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Source, s.Object, displayOrUnknown(s.By), s.Reason,
			displayStamp(s.Start), sessionState(s), displayStamp(at), len(s.Conflicts))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range sessions {
		fmt.Fprintf(out, "\n%s (source %s): break-glass %q by %s", s.Object, s.Source, s.Reason, displayOrUnknown(s.By))
		if s.Group != "" {
			fmt.Fprintf(out, " (group %s)", s.Group)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "  started %s with Git at %s", displayStamp(s.Start), displayOrUnknown(short(s.StartRevision)))
		switch {
		case s.Active():
			fmt.Fprintf(out, "; active until %s (%s left)\n", displayStamp(s.Until), s.Until.Sub(now).Truncate(time.Second))
		case s.Ending == EndingLeftGit:
			fmt.Fprintf(out, "; the object left Git at %s, nothing was reverted\n", displayStamp(s.End))
		default:
			fmt.Fprintf(out, "; %s, reverted to Git at %s on %s\n", sessionState(s), displayOrUnknown(short(s.EndRevision)), displayStamp(s.End))
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
		writePatch(out, s.Patch, s.Conflicts, s.Active(), s.EndRevision)
	}
	return nil
}

// writePatch writes a session's patch to commit and its conflicts.
func writePatch(out io.Writer, patch string, conflicts []BreakGlassConflict, active bool, rev string) {
	against := "the current Git"
	if !active && rev != "" {
		against = "Git at " + short(rev)
	}
	switch {
	case patch != "":
		fmt.Fprintf(out, "  patch to commit to keep the change (only this session's change, rebased on %s; apply it as a merge patch to the overlay):\n%s\n", against, displayIndent(patch, "    "))
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

// sessionState says how a session ended, or that it is active.
func sessionState(s BreakGlassSession) string {
	if s.Active() {
		return "active"
	}
	return string(s.Ending)
}

// displayStamp prints a time as RFC 3339 in UTC, or "-" when zero.
func displayStamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// displayOrUnknown prints s, or "(not recorded)" when it is empty.
func displayOrUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(not recorded)"
	}
	return s
}

// WriteDiff writes what syncing each source would change, as `driftless diff` shows it: per
// source its revision and counts, the policy violations that would stop the sync, each change
// with its unified diff or why it is unknown, and the notes on what the diff could not know.
func WriteDiff(out io.Writer, reports []*DiffReport) error {
	for _, rep := range reports {
		counts := "no change"
		if c := rep.Counts(); len(c) > 0 {
			counts = strings.Join(c, ", ")
		}
		fmt.Fprintf(out, "source %s at %s %q by %s: %s, %d unchanged\n", rep.Source, short(rep.Revision), rep.Subject, rep.Author, counts, rep.Unchanged)
		for _, v := range rep.Violations {
			fmt.Fprintf(out, "  policy violation (the sync would stop here): %s\n", v.String())
		}
		for _, c := range rep.Changes {
			if c.Message != "" {
				fmt.Fprintf(out, "  %s %s: %s\n", c.Action, c.Object, c.Message)
			} else {
				fmt.Fprintf(out, "  %s %s\n", c.Action, c.Object)
			}
			if c.Diff != "" {
				fmt.Fprintln(out, displayIndent(c.Diff, "    "))
			}
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(out, "  note: %s\n", n)
		}
	}
	return nil
}
