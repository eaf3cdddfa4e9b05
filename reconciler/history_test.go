package reconciler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

func TestSessionTakeover(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: start.Add(d)} }
	fields := func(s string) *metav1.FieldsV1 { return &metav1.FieldsV1{Raw: []byte(s)} }
	bgEntry := metav1.ManagedFieldsEntry{Manager: "driftless-break-glass", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(0), FieldsType: "FieldsV1",
		FieldsV1: fields(`{"f:metadata":{"f:annotations":{"f:driftless.dev/break-glass":{},"f:driftless.dev/break-glass-until":{}}}}`)}
	tests := []struct {
		name    string
		entry   metav1.ManagedFieldsEntry
		foreign bool
	}{
		{"another tool during the session", metav1.ManagedFieldsEntry{Manager: "ops-tool", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(time.Minute)}, true},
		{"another tool in the session's first second", metav1.ManagedFieldsEntry{Manager: "ops-tool", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(0)}, true},
		{"another tool before the session", metav1.ManagedFieldsEntry{Manager: "ops-tool", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(-time.Minute)}, false},
		{"Kubernetes' controller manager", metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(time.Minute)}, false},
		{"a controller by its name", metav1.ManagedFieldsEntry{Manager: "cert-manager-controller", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(time.Minute)}, false},
		{"a status write", metav1.ManagedFieldsEntry{Manager: "ops-tool", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status", Time: at(time.Minute)}, false},
		{"the reconciler's apply", metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: at(time.Minute)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("ConfigMap")
			u.SetName("app")
			u.SetAnnotations(map[string]string{"driftless.dev/break-glass": "INC-1", "driftless.dev/break-glass-until": start.Add(time.Hour).Format(time.RFC3339)})
			u.SetManagedFields([]metav1.ManagedFieldsEntry{bgEntry, tc.entry})
			tk := takeover{prefixes: DefaultTakeoverManagers, sessions: &sessionStarts{}}
			got := false
			for _, m := range tk.foreignManagers(u) {
				got = got || m == tc.entry.Manager && m != bgEntry.Manager
			}
			if got != tc.foreign {
				t.Errorf("foreign under a break-glass = %v, want %v", got, tc.foreign)
			}
			// Once the annotations are gone only the recorded session says when it began.
			u.SetAnnotations(nil)
			u.SetManagedFields([]metav1.ManagedFieldsEntry{tc.entry})
			if tk.hasForeign(u) && tc.entry.Manager == "ops-tool" && tc.entry.Subresource == "" {
				t.Error("foreign without a session or break-glass annotations")
			}
			tk.sessions.set(keyOf(u), start)
			if got := tk.hasForeign(u); got != tc.foreign {
				t.Errorf("foreign in a recorded session = %v, want %v", got, tc.foreign)
			}
		})
	}
}
