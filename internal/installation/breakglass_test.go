package installation

import (
	"bytes"
	"testing"
	"time"
)

func TestWriteBreakGlass(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		found []BreakGlass
		want  string
	}{
		{name: "none", want: "no active break-glass\n"},
		{
			name: "a table with the time left",
			found: []BreakGlass{
				{Namespace: "production", Object: "configmaps/settings", By: "alice", Reason: "INC-1", Until: now.Add(90 * time.Second)},
				{Object: "clusterroles/view", Reason: "INC-2", Until: now.Add(time.Hour)},
			},
			want: "NAMESPACE   OBJECT               BY              REASON  UNTIL                 REMAINING\n" +
				"production  configmaps/settings  alice           INC-1   2026-03-01T12:01:30Z  1m30s\n" +
				"            clusterroles/view    (not recorded)  INC-2   2026-03-01T13:00:00Z  1h0m0s\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteBreakGlass(&b, tt.found, now); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}
