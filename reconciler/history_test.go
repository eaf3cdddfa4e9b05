package reconciler

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBoundSessions(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const retention = 90 * 24 * time.Hour
	ended := func(name string, ago time.Duration, patch string) storedSession {
		return storedSession{BreakGlassSession: BreakGlassSession{Object: name, Start: now.Add(-ago - time.Hour), End: now.Add(-ago), Ending: EndingExpired, Patch: patch}}
	}
	active := storedSession{BreakGlassSession: BreakGlassSession{Object: "active", Start: now.Add(-200 * 24 * time.Hour)}, Base: `{"data":{}}`}
	names := func(ss []storedSession) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Object)
		}
		return strings.Join(out, ",")
	}

	t.Run("retention drops ended sessions, never active ones", func(t *testing.T) {
		kept, _, err := boundSessions([]storedSession{ended("old", retention+time.Hour, ""), active, ended("new", time.Hour, "")}, now, retention)
		if err != nil || names(kept) != "active,new" {
			t.Errorf("kept %s (%v), want active,new", names(kept), err)
		}
	})
	t.Run("at most maxSessions ended sessions, the newest", func(t *testing.T) {
		var all []storedSession
		for i := range maxSessions + 5 {
			all = append(all, ended(fmt.Sprint(i), time.Duration(i)*time.Minute, ""))
		}
		kept, _, err := boundSessions(all, now, retention)
		if err != nil || len(kept) != maxSessions || kept[0].Object != "0" || kept[len(kept)-1].Object != fmt.Sprint(maxSessions-1) {
			t.Errorf("kept %d sessions from %s to %s (%v), want %d from 0", len(kept), kept[0].Object, kept[len(kept)-1].Object, err, maxSessions)
		}
	})
	t.Run("the oldest go first until the record fits", func(t *testing.T) {
		big := truncatePatch(strings.Repeat("x", 3*maxPatchBytes))
		if len(big) > maxPatchBytes || !strings.HasSuffix(big, truncatedPatch) {
			t.Fatalf("truncated patch has %d bytes, want at most %d ending in the marker", len(big), maxPatchBytes)
		}
		var all []storedSession
		for i := range 100 {
			all = append(all, ended(fmt.Sprint(i), time.Duration(i)*time.Minute, big))
		}
		kept, enc, err := boundSessions(append(all, active), now, retention)
		if err != nil || len(enc) > maxRecordBytes {
			t.Fatalf("record of %d bytes (%v), want at most %d", len(enc), err, maxRecordBytes)
		}
		if kept[0].Object != "active" || kept[1].Object != "0" || len(kept) >= 101 {
			t.Errorf("kept %s, want the active session and the newest ended ones", names(kept))
		}
		back, err := decodeSessions(enc)
		if err != nil || len(back) != len(kept) || back[0].Base != active.Base {
			t.Errorf("decode of the record: %d sessions, %v", len(back), err)
		}
	})
}
