package ledger

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChangedFields(t *testing.T) {
	base := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"},"managedFields":[{"manager":"a"}]},"data":{"k":"v"}}`
	tests := []struct {
		name, after string
		want        []string
	}{
		{"nothing but server fields", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"2","labels":{"x":"1"},"managedFields":[{"manager":"b"}]},"data":{"k":"v"}}`, nil},
		{"a data value", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"2","labels":{"x":"1"}},"data":{"k":"w"}}`, []string{"data"}},
		{"a label and a new field", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"2"}},"data":{"k":"v"},"binaryData":{}}`, []string{"binaryData", "metadata.labels"}},
		{"annotations added", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"1"},"annotations":{"b":"c"}},"data":{"k":"v"}}`, []string{"metadata.annotations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := changedFieldsJSON([]byte(base), []byte(tt.after))
			if !slices.Equal(got, tt.want) {
				t.Errorf("changed fields = %q, want %q", got, tt.want)
			}
		})
	}
	if got := changedFieldsJSON([]byte("not json"), []byte(base)); got != nil {
		t.Errorf("changed fields of a broken object = %q, want none", got)
	}
}

func TestSanitizeKeepsNothingOfASecretButItsName(t *testing.T) {
	r := Record{
		Time: time.Now(), Type: TypeAdmission, Decision: "denied", User: "bob", Message: "password=hunter2 is not allowed",
		Object:     Object{APIVersion: "v1", Kind: "Secret", Resource: "secrets", Namespace: "production", Name: "db"},
		Fields:     []string{"data"},
		Violations: []string{"hunter2"},
		BreakGlass: &BreakGlass{Reason: "hunter2", Group: "oncall"},
	}
	r.sanitize()
	if r.Message != "" || r.Fields != nil || r.Violations != nil || r.BreakGlass.Reason != "" {
		t.Errorf("a Secret's record keeps more than its name: %+v", r)
	}
	if r.Object.Name != "db" || r.User != "bob" || r.BreakGlass.Group != "oncall" {
		t.Errorf("the record lost who and what: %+v", r)
	}
	cm := Record{Object: Object{Resource: "configmaps", Name: strings.Repeat("n", 2000)}, Groups: make([]string, 100), Message: strings.Repeat("é", 2000)}
	cm.sanitize()
	if len(cm.Object.Name) > maxString || len(cm.Groups) != maxListItems+1 || len(cm.Message) > maxMessage || !strings.HasSuffix(cm.Message, "...") {
		t.Errorf("record not bounded: name %d, groups %d, message %d", len(cm.Object.Name), len(cm.Groups), len(cm.Message))
	}
}

func TestReplicaName(t *testing.T) {
	for host, want := range map[string]string{
		"driftless-7d9f8-abcde": "driftless-7d9f8-abcde",
		"Laptop.local":          "laptop-local-",
		strings.Repeat("a", 60): strings.Repeat("a", 31) + "-",
	} {
		got := replicaName(host)
		if !strings.HasPrefix(got, want) || len(got) > 40 {
			t.Errorf("replicaName(%q) = %q, want prefix %q and at most 40 characters", host, got, want)
		}
	}
	if replicaName("a.b") == replicaName("a_b") {
		t.Error("two hosts that clean to the same name share a replica name")
	}
}

func TestSignature(t *testing.T) {
	key, body := []byte("k3y"), []byte(`{"records":[]}`)
	sig := Sign(key, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if !VerifySignature(key, body, sig) {
		t.Error("a signature does not verify")
	}
	if VerifySignature([]byte("other"), body, sig) || VerifySignature(key, []byte(`{"records":[{}]}`), sig) {
		t.Error("a signature verifies with another key or body")
	}
}

func jsonMarshal(r Record) ([]byte, error) { return json.Marshal(r) }
