package audit

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/driftless-dev/driftless/internal/ledger"
)

func testReport() *Report {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	obj := ledger.Object{APIVersion: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: "production", Name: "app"}
	return &Report{
		From: at.Add(-720 * time.Hour), To: at,
		Revisions: []Revision{{Source: "platform", AppliedAt: at, Revision: ledger.Revision{Commit: strings.Repeat("a", 40), Author: "Carol <c@example.com>", Subject: `quote " and, comma`}}},
		Denied: []ledger.Record{{Time: at, Type: ledger.TypeAdmission, Decision: "denied", Reason: "protected-namespace", User: "bob", Groups: []string{"developers", "system:authenticated"},
			Operation: "UPDATE", Object: obj, Fields: []string{"data"}, Message: `namespace "production" is protected`}},
		DeniedByActor: map[string]int{"bob": 1},
		BreakGlass: []Session{{Source: "platform", Object: "ConfigMap production/app", By: "alice", Group: "oncall", Reason: "INC-1, pool", Start: at, End: at.Add(time.Hour),
			Duration: "1h0m0s", Ending: "expired", Patch: "data:\n  POOL: \"200\"\n", Conflicts: []string{`data.X: yours "1", Git "2"`}}},
		Reverts: []ledger.Record{{Time: at.Add(time.Hour), Type: ledger.TypeRevert, Decision: "reverted", Reason: "BreakGlassExpired", By: "alice (kubectl-patch)", Object: obj, Fields: []string{"data"}}},
	}
}

func TestCSVParsesAndKeepsEveryItem(t *testing.T) {
	var out bytes.Buffer
	if err := WriteCSV(&out, testReport()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, out.String())
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("rows = %q", rows)
	}
	for i, want := range []struct{ section, actor, contains string }{
		{"revision", "", `quote " and, comma`},
		{"denied", "bob", "configmaps production/app"},
		{"break-glass", "alice", "patch to commit:\ndata:\n  POOL: \"200\"\n"},
		{"revert", "alice (kubectl-patch)", "BreakGlassExpired"},
	} {
		r := rows[i+1]
		if len(r) != len(csvHeader) || r[0] != want.section || r[2] != want.actor || !strings.Contains(strings.Join(r, "|"), want.contains) {
			t.Errorf("row %d = %q, want a %s row by %q with %q", i+1, r, want.section, want.actor, want.contains)
		}
	}
}

func TestTextNamesWhoWhatAndThePatch(t *testing.T) {
	var out bytes.Buffer
	if err := WriteText(&out, testReport()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Applied revisions (1)", "Carol <c@example.com>", "Denied attempts (1)", "bob: 1", "update configmaps production/app",
		"Break-glass sessions (1)", `reason "INC-1, pool"`, "1h0m0s", "Drift reverts (1)", "Patch to commit for ConfigMap production/app", `POOL: "200"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text does not say %q:\n%s", want, out.String())
		}
	}
}
