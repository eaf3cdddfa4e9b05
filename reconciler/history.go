package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
)

// BreakGlassEnding says how a break-glass session ended.
type BreakGlassEnding string

// How a break-glass session ends.
const (
	// EndingActive: the session has not ended.
	EndingActive BreakGlassEnding = ""
	// EndingExpired: the expiry passed and the object was reverted to Git.
	EndingExpired BreakGlassEnding = "expired"
	// EndingEarly: the break-glass annotations were removed while still valid (as
	// `driftless break-glass --end` does) and the object was reverted to Git.
	EndingEarly BreakGlassEnding = "ended early"
	// EndingInvalid: the break-glass stopped holding (an expiry beyond the maximum, a missing
	// reason) and the object was reverted to Git.
	EndingInvalid BreakGlassEnding = "invalid"
	// EndingLeftGit: the object left Git during the session; it was not reverted.
	EndingLeftGit BreakGlassEnding = "left Git"
)

// BreakGlassSession is the record of one break-glass session on one object, from the
// moment the reconciler first saw it active until it ended, kept for the configured retention
// in the driftless-breakglass-<source> ConfigMap.
type BreakGlassSession struct {
	// Source is the source that applies the object.
	Source string `json:"source"`
	// Object names the object.
	Object string `json:"object"`
	// Ref identifies the object.
	Ref ObjectRef `json:"ref"`
	// By is who started the break-glass (driftless.dev/break-glass-by); empty when not
	// recorded.
	By string `json:"by,omitempty"`
	// Group is the break-glass group they acted as (driftless.dev/break-glass-group).
	Group string `json:"group,omitempty"`
	// Reason is the break-glass reason, such as a ticket id.
	Reason string `json:"reason,omitempty"`
	// Managers names the field managers that wrote to the object during the session.
	Managers string `json:"managers,omitempty"`
	// Start is when the break-glass annotations were first written, by the API server's
	// managed fields, or failing that when the reconciler first saw them.
	Start time.Time `json:"start"`
	// Until is the (last) expiry the session had.
	Until time.Time `json:"until,omitzero"`
	// End is when the object was reverted to Git; zero while the session is active.
	End time.Time `json:"end,omitzero"`
	// Ending says how the session ended; empty while it is active.
	Ending BreakGlassEnding `json:"ending,omitempty"`
	// Problem says why an invalid break-glass stopped holding.
	Problem string `json:"problem,omitempty"`
	// StartRevision is the commit the source was at when the session began: the patch is the
	// change from the object as that commit declared it.
	StartRevision string `json:"startRevision,omitempty"`
	// EndRevision is the commit the object was reverted to.
	EndRevision string `json:"endRevision,omitempty"`
	// Patch is the session's change, rebased on Git at EndRevision, as a patch to paste into
	// the overlay (a JSON merge patch: a removed field is null). It holds only what the
	// session changed, never a change Git made meanwhile; fields in Conflicts are left out.
	// While the session is active it is rebased on the current Git.
	Patch string `json:"patch,omitempty"`
	// Conflicts are the fields both the session and Git changed, to different values.
	Conflicts []BreakGlassConflict `json:"conflicts,omitempty"`
	// Note says when the patch is less than a three-way patch, such as when Git at the
	// start is unknown.
	Note string `json:"note,omitempty"`
}

// Active reports whether the session has not ended.
func (s BreakGlassSession) Active() bool { return s.Ending == EndingActive }

// storedSession is a session as its ConfigMap keeps it: while it is active, with the object
// as Git declared it at the start, which the patch is computed from.
type storedSession struct {
	BreakGlassSession
	// Base is the JSON of the object, as compared by [displayObject], as Git declared it
	// when the session began; empty once the session ended.
	Base string `json:"base,omitempty"`
}

// Bounds of a source's break-glass record. A ConfigMap holds at most 1 MiB.
const (
	// maxSessions is how many ended sessions one source's record keeps at most.
	maxSessions = 200
	// maxRecordBytes bounds the encoded record.
	maxRecordBytes = 900 << 10
	// maxPatchBytes bounds the patch of one session in the record.
	maxPatchBytes = 16 << 10
	// truncatedPatch ends a patch cut to maxPatchBytes.
	truncatedPatch = "\n# ... truncated: the whole patch is in the driftless log line of the revert\n"
)

// Keys and labels of the break-glass record ConfigMap.
const (
	componentBreakGlass = "breakglass"
	keySessions         = "sessions"
)

// BreakGlassConfigMapName is the name of the ConfigMap holding a source's break-glass record.
func BreakGlassConfigMapName(sourceName string) string { return "driftless-breakglass-" + sourceName }

// ReadBreakGlassHistory reads the break-glass record of every source from the ConfigMaps in
// namespace (the namespace Driftless runs in): every session still in the retention, active
// ones included, newest first. It is what `driftless break-glass --history` shows.
func ReadBreakGlassHistory(ctx context.Context, client dynamic.Interface, namespace string) ([]BreakGlassSession, error) {
	list, err := client.Resource(configMapsGVR).Namespace(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labelManagedBy + "=" + FieldManager + "," + labelComponent + "=" + componentBreakGlass,
	})
	if err != nil {
		return nil, fmt.Errorf("list break-glass record configmaps in %s: %w", namespace, err)
	}
	var out []BreakGlassSession
	for i := range list.Items {
		var cm corev1.ConfigMap
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &cm); err != nil {
			return nil, fmt.Errorf("decode configmap %s/%s: %w", namespace, list.Items[i].GetName(), err)
		}
		stored, err := decodeSessions(cm.Data[keySessions])
		if err != nil {
			return nil, fmt.Errorf("configmap %s/%s: %w", namespace, cm.Name, err)
		}
		for _, s := range stored {
			out = append(out, s.BreakGlassSession)
		}
	}
	sortSessions(out)
	return out, nil
}

// sortSessions orders sessions newest first: by start, then object.
func sortSessions(s []BreakGlassSession) {
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Start.Equal(s[j].Start) {
			return s[i].Start.After(s[j].Start)
		}
		return s[i].Object < s[j].Object
	})
}

// decodeSessions reads the sessions key of a record.
func decodeSessions(v string) ([]storedSession, error) {
	var out []storedSession
	if v == "" {
		return nil, nil
	}
	if err := yaml.UnmarshalStrict([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("break-glass record key %s: %w", keySessions, err)
	}
	return out, nil
}

// boundSessions returns the sessions to keep at now: every active one, and the ended ones
// that ended within retention, at most maxSessions of them, newest first, dropping the
// oldest until the encoded record fits maxRecordBytes. When active sessions alone do not
// fit, their bases are dropped, largest first.
func boundSessions(all []storedSession, now time.Time, retention time.Duration) ([]storedSession, string, error) {
	var open, ended []storedSession
	for _, s := range all {
		switch {
		case s.Active():
			open = append(open, s)
		case now.Sub(s.End) <= retention:
			ended = append(ended, s)
		}
	}
	byStart := func(s []storedSession) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Start.After(s[j].Start) })
	}
	byStart(open)
	byStart(ended)
	if len(ended) > maxSessions {
		ended = ended[:maxSessions]
	}
	// Drop the oldest ended sessions by their encoded sizes first: encoding the whole record
	// once per dropped session would be slow for a full one.
	size := func(s storedSession) int {
		b, err := yaml.Marshal([]storedSession{s})
		if err != nil {
			return 0 // the encoding of the whole record below reports it
		}
		return len(b)
	}
	total := 0
	for _, s := range open {
		total += size(s)
	}
	sizes := make([]int, len(ended))
	for i, s := range ended {
		sizes[i] = size(s)
		total += sizes[i]
	}
	for len(ended) > 0 && total > maxRecordBytes {
		total -= sizes[len(ended)-1]
		ended = ended[:len(ended)-1]
	}
	for {
		keep := append(append([]storedSession(nil), open...), ended...)
		b, err := yaml.Marshal(keep)
		if err != nil {
			return nil, "", fmt.Errorf("encode break-glass record: %w", err)
		}
		if len(b) <= maxRecordBytes || len(keep) == 0 {
			return keep, string(b), nil
		}
		if len(ended) > 0 {
			ended = ended[:len(ended)-1]
			continue
		}
		largest := 0
		for i := range open {
			if len(open[i].Base) > len(open[largest].Base) {
				largest = i
			}
		}
		if open[largest].Base == "" {
			return keep, string(b), nil // cannot shrink further; the write will say why
		}
		open[largest].Base = ""
		open[largest].Note = "Git's version at the start was too large to keep; the patch is the difference from the current Git"
	}
}

// truncatePatch cuts a patch to maxPatchBytes for the record.
func truncatePatch(p string) string {
	if len(p) <= maxPatchBytes {
		return p
	}
	cut := maxPatchBytes - len(truncatedPatch)
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut] + truncatedPatch
}

// loadSessions reads the source's break-glass record into the state. An unreadable record is
// logged and replaced, as an unreadable status is. The caller holds st.mu.
func (st *state) loadSessions(ctx context.Context, e *env) error {
	d, found, err := readConfigMap(ctx, e.client, e.namespace, BreakGlassConfigMapName(e.src.Name))
	if err != nil {
		return fmt.Errorf("read break-glass record: %w", err)
	}
	if !found {
		return nil
	}
	stored, err := decodeSessions(d[keySessions])
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "replacing unreadable break-glass record", "configmap", BreakGlassConfigMapName(e.src.Name))
		return nil
	}
	for _, s := range stored {
		if !s.Active() {
			st.history = append(st.history, s)
			continue
		}
		k := s.Ref.key()
		if _, dup := st.sessions[k]; dup {
			continue
		}
		st.sessions[k] = &s
		e.takeover.sessions.set(k, s.Start)
	}
	return nil
}

// saveSessions writes the source's break-glass record when it changed since the last
// write. A failure is logged and retried with the next write of the status. The caller
// holds w.st.mu.
func (w *statusWriter) saveSessions(ctx context.Context) {
	if !w.st.sessionsDirty {
		return
	}
	all := append([]storedSession(nil), w.st.history...)
	for _, s := range w.st.sessions {
		all = append(all, *s)
	}
	kept, enc, err := boundSessions(all, w.clock.Now(), w.retention)
	if err == nil {
		w.st.history = w.st.history[:0]
		for _, s := range kept {
			if !s.Active() {
				w.st.history = append(w.st.history, s)
			} else if p := w.st.sessions[s.Ref.key()]; p != nil {
				p.Base, p.Note = s.Base, s.Note
			}
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, err = applyConfigMap(wctx, w.client, w.namespace, BreakGlassConfigMapName(w.src.Name), componentBreakGlass, map[string]string{
			"source":    w.src.Name,
			keySessions: enc,
		})
	}
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "cannot write the break-glass record")
		return
	}
	w.st.sessionsDirty = false
}

// openSession returns the active session on o, starting one when there is none: Git's
// version of the object now (git, the dry-run without the fields only foreign managers own)
// is its base. The caller holds h.st.mu.
func (h *healer) openSession(ctx context.Context, o *object, live, git *unstructured.Unstructured, bg breakGlass, rev string) *storedSession {
	k := o.ref.key()
	s := h.st.sessions[k]
	if s == nil {
		start := breakGlassWritten(live)
		if start.IsZero() {
			start = h.clock.Now()
		}
		s = &storedSession{BreakGlassSession: BreakGlassSession{
			Source: h.src.Name, Object: o.ref.String(), Ref: o.ref, Start: start.UTC(), StartRevision: rev,
		}}
		if git != nil {
			b, err := json.Marshal(displayObject(git))
			if err != nil {
				logr.FromContextOrDiscard(ctx).Error(err, "cannot record Git's version at the start of a break-glass", "object", o.ref.String())
			} else {
				s.Base = string(b)
			}
		}
		if s.Base == "" {
			s.Note = "Git's version at the start is unknown; the patch is the difference from the current Git"
		}
		h.st.sessions[k] = s
		h.takeover.sessions.set(k, s.Start)
		h.st.sessionsDirty = true
		logr.FromContextOrDiscard(ctx).Info("break-glass session began", "object", o.ref.String(), "by", bg.By, "reason", bg.Reason, "start", s.Start, "revision", rev)
	}
	if s.Until != bg.Until || s.Reason != bg.Reason || s.By != bg.By || s.Group != bg.Group {
		if !bg.Until.IsZero() {
			s.Until = bg.Until.UTC()
		}
		if bg.Reason != "" {
			s.Reason = bg.Reason
		}
		if bg.By != "" {
			s.By = bg.By
		}
		if bg.Group != "" {
			s.Group = bg.Group
		}
		h.st.sessionsDirty = true
	}
	return s
}

// closeSession ends k's active session as ending at the reconciler's clock, with its patch
// and conflicts, and moves it to the history. The caller holds h.st.mu.
func (h *healer) closeSession(k objKey, ending BreakGlassEnding, problem, rev, patch string, conflicts []BreakGlassConflict) *BreakGlassSession {
	s := h.st.sessions[k]
	if s == nil {
		return nil
	}
	delete(h.st.sessions, k)
	h.takeover.sessions.set(k, time.Time{})
	s.End = h.clock.Now().UTC()
	s.Ending, s.Problem, s.EndRevision = ending, problem, rev
	s.Patch, s.Conflicts = truncatePatch(patch), conflicts
	s.Base = ""
	h.ledger.BreakGlassEnded(ledger.Session{Source: s.Source, Object: s.Object, Kind: s.Ref.Kind, Namespace: s.Ref.Namespace, Name: s.Ref.Name, By: s.By, Group: s.Group, Reason: s.Reason, Start: s.Start, Until: s.Until, End: s.End, Ending: string(ending), Problem: problem, Revision: rev})
	h.st.history = append(h.st.history, *s)
	h.st.sessionsDirty = true
	return &s.BreakGlassSession
}

// sessionPatch returns the change live holds under session s, rebased on git (Git's version
// now), as a patch to paste into the overlay, with the fields both changed. Without a base it
// is the whole difference between git and live.
func sessionPatch(s *storedSession, live, git *unstructured.Unstructured) (string, []BreakGlassConflict, error) {
	if s == nil || s.Base == "" {
		p, err := overlayPatch(git, live)
		return p, nil, err
	}
	var base map[string]any
	if err := json.Unmarshal([]byte(s.Base), &base); err != nil {
		return "", nil, fmt.Errorf("decode Git's version of %s at the start of the break-glass: %w", s.Object, err)
	}
	mine, err := jsonValue(displayObject(live))
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", describe(live), err)
	}
	theirs, err := jsonValue(displayObject(git))
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", describe(git), err)
	}
	patch, conflicts := threeWay(base, mine, theirs)
	y, err := overlayYAML(patch, live)
	return y, conflicts, err
}

// endingOf says how a session ends when its object no longer holds an active break-glass.
func endingOf(bg breakGlass) BreakGlassEnding {
	switch bg.State {
	case v1alpha1.BreakGlassExpired:
		return EndingExpired
	case v1alpha1.BreakGlassInvalid:
		return EndingInvalid
	}
	return EndingEarly
}

// formatConflicts lists conflicts for messages, one a line.
func formatConflicts(cs []BreakGlassConflict) string {
	var out string
	for _, c := range cs {
		out += fmt.Sprintf("  %s: yours %s, Git %s\n", c.Field, c.Yours, c.Git)
	}
	return out
}
