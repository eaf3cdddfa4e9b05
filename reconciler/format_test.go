package reconciler_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/reconciler"
)

// TestWriteForPeople pins what the status, break-glass record and diff formats show: each
// row, story line, patch and conflict, at a fixed time.
func TestWriteForPeople(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rev := "0123456789abcdef0123456789abcdef01234567"
	ended := reconciler.BreakGlassSession{
		Source: "payments", Object: "configmap production/settings", By: "alice", Group: "oncall", Reason: "INC-1",
		Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Ending: reconciler.EndingExpired,
		StartRevision: rev, EndRevision: rev, Patch: "data:\n  POOL: \"20\"\n",
		Conflicts: []reconciler.BreakGlassConflict{{Field: "data.MODE", Yours: `"fast"`, Git: `"safe"`}},
	}
	active := reconciler.BreakGlassSession{
		Source: "payments", Object: "deployment production/web", Reason: "INC-2",
		Start: now.Add(-time.Minute), Until: now.Add(30 * time.Minute),
	}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
	}{
		{
			name: "status",
			write: func(b *bytes.Buffer) error {
				return reconciler.WriteStatus(b, []reconciler.Status{{
					Source: "payments", URL: "https://git.example.com/config", Ref: "branch main", Path: "overlays/production",
					Revision: rev, Subject: "raise the pool", Author: "Bob <bob@example.com>", Result: reconciler.ResultPolicyDenied,
					LastAttempt: now.Add(-90 * time.Second), Message: "policy denied 1 object",
					Violations:     []reconciler.Violation{{Object: "Deployment production/web", Rule: "images_pinned", Message: "pin it"}},
					ObjectsManaged: 3, DriftReverts: 2,
					BreakGlass: []reconciler.BreakGlassObject{{Object: "deployment production/web", By: "alice", Group: "oncall", Reason: "INC-2", Until: now.Add(30 * time.Minute), Patch: "spec:\n  replicas: 5\n"}},
				}}, []reconciler.BreakGlassSession{active, ended}, now)
			},
			want: []string{
				"SOURCE    REVISION      RESULT",
				"payments  0123456789ab  PolicyDenied  1m30s ago     3        0        0       2              1\n",
				"\npayments: https://git.example.com/config (branch main) path overlays/production\n",
				"  applied 0123456789ab \"raise the pool\" by Bob <bob@example.com>\n",
				"  last sync (1m30s ago): policy denied 1 object\n",
				"  violation: Deployment production/web: images_pinned: pin it\n",
				"  held back under break-glass: deployment production/web by alice (group oncall) until 2026-03-01T12:30:00Z (30m0s left), reason \"INC-2\"; reverted to Git then\n",
				"rebased on the current Git; apply it as a merge patch to the overlay):\n    spec:\n      replicas: 5\n",
				"  recent break-glass (driftless break-glass --history shows the patches):\n    configmap production/settings by alice, reason \"INC-1\": expired 1h0m0s ago; a patch to commit, conflicts: 1\n",
			},
		},
		{
			name:  "no status",
			write: func(b *bytes.Buffer) error { return reconciler.WriteStatus(b, nil, nil, now) },
			want:  []string{"no source has synced yet\n"},
		},
		{
			name: "break-glass record",
			write: func(b *bytes.Buffer) error {
				return reconciler.WriteBreakGlassHistory(b, []reconciler.BreakGlassSession{active, ended}, now)
			},
			want: []string{
				"payments  deployment production/web      (not recorded)  INC-2   2026-03-01T11:59:00Z  active   2026-03-01T12:30:00Z  0\n",
				"payments  configmap production/settings  alice           INC-1   2026-03-01T10:00:00Z  expired  2026-03-01T11:00:00Z  1\n",
				"  started 2026-03-01T11:59:00Z with Git at (not recorded); active until 2026-03-01T12:30:00Z (30m0s left)\n",
				"\nconfigmap production/settings (source payments): break-glass \"INC-1\" by alice (group oncall)\n",
				"; expired, reverted to Git at 0123456789ab on 2026-03-01T11:00:00Z\n",
				"rebased on Git at 0123456789ab;",
				"    data.MODE: yours \"fast\", Git \"safe\"\n",
			},
		},
		{
			name: "diff",
			write: func(b *bytes.Buffer) error {
				return reconciler.WriteDiff(b, []*reconciler.DiffReport{{
					Source: "payments", Revision: rev, Subject: "raise the pool", Author: "Bob", Unchanged: 4,
					Changes: []reconciler.ObjectDiff{{Object: "ConfigMap production/settings", Action: reconciler.ActionUpdate, Diff: "-a\n+b\n"}},
				}})
			},
			want: []string{"source payments at 0123456789ab \"raise the pool\" by Bob: 1 update, 4 unchanged\n  update ConfigMap production/settings\n    -a\n    +b\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(b.String(), want) {
					t.Errorf("output does not contain %q:\n%s", want, b.String())
				}
			}
		})
	}
}
