package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/reconciler"
)

// Formats of the report.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Options select what the report covers.
type Options struct {
	// DriftlessNamespace is the namespace Driftless runs in, which holds the ConfigMaps.
	DriftlessNamespace string
	// Since is how far back the report goes from Now. Required.
	Since time.Duration
	// Namespace, when set, limits the report to objects in it.
	Namespace string
	// Format is text, json or csv.
	Format string
	// Now is the end of the window; zero is the time of the call.
	Now time.Time
}

// Report is the compliance report for a time window.
type Report struct {
	// From and To bound the window.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Namespace is the namespace the report is limited to, if any.
	Namespace string `json:"namespace,omitempty"`
	// Revisions are the revisions applied in the window, oldest first.
	Revisions []Revision `json:"revisions"`
	// Denied are the attempts the guard denied (or warned about, or recorded in dry-run),
	// by actor and then time.
	Denied []ledger.Record `json:"denied"`
	// DeniedByActor counts Denied per user.
	DeniedByActor map[string]int `json:"deniedByActor"`
	// BreakGlass are the break-glass sessions in the window, newest first.
	BreakGlass []Session `json:"breakGlass"`
	// BreakGlassChanges are the changes the guard allowed under break-glass.
	BreakGlassChanges []ledger.Record `json:"breakGlassChanges"`
	// SafeOperations are the other changes the guard allowed and recorded.
	SafeOperations []ledger.Record `json:"safeOperations"`
	// Reverts are the drift reverts.
	Reverts []ledger.Record `json:"reverts"`
	// Notes say what the report could not show.
	Notes []string `json:"notes,omitempty"`
}

// Revision is an applied revision.
type Revision struct {
	// Source is the source that applied it.
	Source string `json:"source"`
	ledger.Revision
	// AppliedAt is when the reconciler first applied it (or, from the status, last applied
	// it).
	AppliedAt time.Time `json:"appliedAt"`
}

// Session is a break-glass session.
type Session struct {
	Source string    `json:"source"`
	Object string    `json:"object"`
	By     string    `json:"by,omitempty"`
	Group  string    `json:"group,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	// Duration is from the start to the end, or to the report's end while active.
	Duration string `json:"duration"`
	// Ending says how it ended; empty while active.
	Ending string `json:"ending,omitempty"`
	// Patch is the change to commit to Git; Conflicts the fields Git changed too.
	Patch     string   `json:"patch,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"`
}

// Write builds the report with the cluster restConfig reaches and writes it to out.
func Write(ctx context.Context, restConfig *rest.Config, o Options, out io.Writer) error {
	switch o.Format {
	case FormatText, FormatJSON, FormatCSV:
	default:
		return fmt.Errorf("output %q: want text, json or csv", o.Format)
	}
	if o.Since <= 0 {
		return fmt.Errorf("since %s: must be more than 0", o.Since)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	r, err := Build(ctx, client, dyn, o)
	if err != nil {
		return err
	}
	switch o.Format {
	case FormatJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return WriteCSV(out, r)
	}
	return WriteText(out, r)
}

// Build reads the ledger, the status and the break-glass records and builds the report.
func Build(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, o Options) (*Report, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{From: now.Add(-o.Since).UTC(), To: now.UTC(), Namespace: o.Namespace, DeniedByActor: map[string]int{}}
	records, unreadable, err := ledger.Read(ctx, client, o.DriftlessNamespace, r.From)
	if err != nil {
		return nil, err
	}
	if unreadable > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d ledger lines could not be read", unreadable))
	}
	statuses, err := reconciler.ReadStatus(ctx, dyn, o.DriftlessNamespace)
	if err != nil {
		return nil, err
	}
	sessions, err := reconciler.ReadBreakGlassHistory(ctx, dyn, o.DriftlessNamespace)
	if err != nil {
		return nil, err
	}
	inScope := func(ns string) bool { return o.Namespace == "" || ns == o.Namespace }

	applied := map[string]bool{}
	ended := map[string]bool{}
	for _, s := range sessions {
		if (!s.Active() && s.End.Before(r.From)) || !inScope(s.Ref.Namespace) {
			continue
		}
		ended[sessionKey(s.Source, s.Ref.Namespace, s.Ref.Name, s.Start)] = true
		r.BreakGlass = append(r.BreakGlass, sessionOf(s, now))
	}
	for _, rec := range records {
		switch rec.Type {
		case ledger.TypeRevision:
			if rec.Revision != nil {
				applied[rec.Source+"/"+rec.Revision.Commit] = true
				r.Revisions = append(r.Revisions, Revision{Source: rec.Source, Revision: *rec.Revision, AppliedAt: rec.Time})
			}
			continue
		}
		if !inScope(rec.Object.Namespace) {
			continue
		}
		switch {
		case rec.Type == ledger.TypeRevert:
			r.Reverts = append(r.Reverts, rec)
		case rec.Type == ledger.TypeBreakGlassEnd:
			// The record ConfigMaps keep the patch; a session they no longer keep comes from
			// the ledger alone.
			if bg := rec.BreakGlass; bg != nil && !ended[sessionKey(rec.Source, rec.Object.Namespace, rec.Object.Name, bg.Start)] {
				r.BreakGlass = append(r.BreakGlass, Session{
					Source: rec.Source, Object: rec.Object.String(), By: rec.User, Group: bg.Group, Reason: bg.Reason,
					Start: bg.Start, End: bg.End, Duration: bg.End.Sub(bg.Start).Round(time.Second).String(), Ending: rec.Decision,
				})
			}
		case rec.Type != ledger.TypeAdmission:
		case rec.Decision == "denied" || rec.Decision == "warned" || rec.Decision == "recorded":
			r.Denied = append(r.Denied, rec)
			r.DeniedByActor[rec.User]++
		case rec.BreakGlass != nil:
			r.BreakGlassChanges = append(r.BreakGlassChanges, rec)
		default:
			r.SafeOperations = append(r.SafeOperations, rec)
		}
	}
	for _, st := range statuses {
		if st.Revision != "" && !applied[st.Source+"/"+st.Revision] && !st.LastApplied.Before(r.From) {
			r.Revisions = append(r.Revisions, Revision{Source: st.Source, AppliedAt: st.LastApplied,
				Revision: ledger.Revision{Commit: st.Revision, Author: st.Author, Subject: st.Subject, CommitTime: st.CommitTime}})
		}
	}
	sort.SliceStable(r.Revisions, func(i, j int) bool { return r.Revisions[i].AppliedAt.Before(r.Revisions[j].AppliedAt) })
	sort.SliceStable(r.Denied, func(i, j int) bool { return r.Denied[i].User < r.Denied[j].User })
	sort.SliceStable(r.BreakGlass, func(i, j int) bool { return r.BreakGlass[i].Start.After(r.BreakGlass[j].Start) })
	for _, rev := range r.Revisions {
		if rev.Committer == "" {
			r.Notes = append(r.Notes, "a revision without a committer was taken from the source's status or recorded by an earlier version: its committer and signing key are unknown")
			break
		}
	}
	if o.Namespace != "" {
		r.Notes = append(r.Notes, "revisions are listed for every source: a revision is not limited to one namespace")
	}
	return r, nil
}

func sessionKey(source, ns, name string, start time.Time) string {
	return source + "/" + ns + "/" + name + "@" + start.UTC().Format(time.RFC3339)
}

func sessionOf(s reconciler.BreakGlassSession, now time.Time) Session {
	end := s.End
	if end.IsZero() {
		end = now
	}
	out := Session{
		Source: s.Source, Object: s.Object, By: s.By, Group: s.Group, Reason: s.Reason,
		Start: s.Start, End: s.End, Duration: end.Sub(s.Start).Round(time.Second).String(),
		Ending: string(s.Ending), Patch: s.Patch,
	}
	if s.Active() {
		out.Ending = "active"
	}
	for _, c := range s.Conflicts {
		out.Conflicts = append(out.Conflicts, fmt.Sprintf("%s: yours %s, Git %s", c.Field, c.Yours, c.Git))
	}
	return out
}

// csvHeader are the columns of the CSV report: one row per item, its section first.
var csvHeader = []string{"section", "time", "actor", "groups", "decision", "reason", "operation", "object", "namespace", "fields", "source", "revision", "author", "committer", "signedBy", "detail"}

// WriteCSV writes the report as one CSV table, one row per item, with a section column.
func WriteCSV(out io.Writer, r *Report) error {
	w := csv.NewWriter(out)
	rows := [][]string{csvHeader}
	tm := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, rev := range r.Revisions {
		rows = append(rows, []string{"revision", tm(rev.AppliedAt), "", "", "applied", "", "", "", "", "", rev.Source, rev.Commit, rev.Author, rev.Committer, rev.SignedBy, rev.Subject})
	}
	record := func(section string, rec ledger.Record) []string {
		commit := ""
		if rec.Revision != nil {
			commit = rec.Revision.Commit
		}
		actor := rec.User
		if actor == "" {
			actor = rec.By
		}
		detail := rec.Message
		if bg := rec.BreakGlass; bg != nil {
			detail = fmt.Sprintf("break-glass %q until %s", bg.Reason, tm(bg.Until))
		}
		return []string{section, tm(rec.Time), actor, strings.Join(rec.Groups, " "), rec.Decision, rec.Reason, rec.Operation,
			rec.Object.String(), rec.Object.Namespace, strings.Join(rec.Fields, " "), rec.Source, commit, "", "", "", detail}
	}
	for _, rec := range r.Denied {
		rows = append(rows, record("denied", rec))
	}
	for _, s := range r.BreakGlass {
		detail := fmt.Sprintf("reason %q, %s, %s", s.Reason, s.Duration, s.Ending)
		if s.Patch != "" {
			detail += "; patch to commit:\n" + s.Patch
		}
		if len(s.Conflicts) > 0 {
			detail += "\nconflicts: " + strings.Join(s.Conflicts, "; ")
		}
		rows = append(rows, []string{"break-glass", tm(s.Start), s.By, s.Group, s.Ending, s.Reason, "", s.Object, "", "", s.Source, "", "", "", "", detail})
	}
	for _, rec := range r.BreakGlassChanges {
		rows = append(rows, record("break-glass-change", rec))
	}
	for _, rec := range r.SafeOperations {
		rows = append(rows, record("safe-operation", rec))
	}
	for _, rec := range r.Reverts {
		rows = append(rows, record("revert", rec))
	}
	if err := w.WriteAll(rows); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// WriteText writes the report for people.
func WriteText(out io.Writer, r *Report) error {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	scope := "all namespaces"
	if r.Namespace != "" {
		scope = "namespace " + r.Namespace
	}
	fmt.Fprintf(out, "Driftless audit %s to %s, %s\n", tm(r.From), tm(r.To), scope)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	section := func(title string, n int) {
		fmt.Fprintf(tw, "\n%s (%d)\n", title, n)
	}
	section("Applied revisions", len(r.Revisions))
	for _, rev := range r.Revisions {
		signed := rev.SignedBy
		if signed == "" {
			signed = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\tsigned %s\t%q\n", tm(rev.AppliedAt), rev.Source, short(rev.Commit), rev.Author, signed, rev.Subject)
	}
	section("Denied attempts", len(r.Denied))
	actors := make([]string, 0, len(r.DeniedByActor))
	for a := range r.DeniedByActor {
		actors = append(actors, a)
	}
	sort.Strings(actors)
	for _, a := range actors {
		fmt.Fprintf(tw, "  %s: %d\n", a, r.DeniedByActor[a])
	}
	for _, rec := range r.Denied {
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s\t%s\t%s\n", tm(rec.Time), rec.User, strings.ToLower(rec.Operation), rec.Object, rec.Decision, strings.Join(rec.Fields, ","), rec.Reason)
	}
	section("Break-glass sessions", len(r.BreakGlass))
	for _, s := range r.BreakGlass {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\treason %q\t%s\t%s\n", tm(s.Start), s.By, s.Source, s.Object, s.Reason, s.Duration, s.Ending)
	}
	section("Changes under break-glass", len(r.BreakGlassChanges))
	for _, rec := range r.BreakGlassChanges {
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s\n", tm(rec.Time), rec.User, strings.ToLower(rec.Operation), rec.Object, strings.Join(rec.Fields, ","))
	}
	section("Safe operations", len(r.SafeOperations))
	for _, rec := range r.SafeOperations {
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%s\n", tm(rec.Time), rec.User, strings.ToLower(rec.Operation), rec.Object, rec.Reason)
	}
	section("Drift reverts", len(r.Reverts))
	for _, rec := range r.Reverts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\tby %s\t%s\n", tm(rec.Time), rec.Source, rec.Object, rec.Reason, rec.By, strings.Join(rec.Fields, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var errs []error
	for _, s := range r.BreakGlass {
		if s.Patch == "" {
			continue
		}
		if _, err := fmt.Fprintf(out, "\nPatch to commit for %s (break-glass %q by %s):\n%s", s.Object, s.Reason, s.By, s.Patch); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(out, "\nnote: %s\n", n)
	}
	return errors.Join(errs...)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
