package webhook

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// TestScanAppliesToAPIServerObjects shows that the fast path is taken for objects as the API
// server sends them, and reads what the guard needs from them.
func TestScanAppliesToAPIServerObjects(t *testing.T) {
	var s objectScan
	if !scanObject(deploymentJSON, true, &s) {
		t.Fatal("the fast path does not apply to the Deployment")
	}
	m := &objectMeta{}
	if !metaFromScan(&s, m) {
		t.Fatal("the fast path cannot read the Deployment's metadata")
	}
	if m.Name != "payment-gateway" || m.Namespace != "production" || m.UID != "7c1f4a52-93d2-4e55-9a0e-4c1b3f0d2e11" ||
		m.Labels[v1alpha1.LabelSource] != "platform" || m.Annotations["deployment.kubernetes.io/revision"] != "7" {
		t.Fatalf("metadata read wrong: %#v", m)
	}
	if at := restartedAt(&s); at != "" {
		t.Fatalf("restartedAt = %q, want none", at)
	}

	restarted := []byte(`{"metadata":{"name":"web","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]},` +
		`"spec":{"replicas":2,"template":{"metadata":{"annotations":{"a":"b","kubectl.kubernetes.io/restartedAt":"2026-11-26T10:00:00Z"}}}}}`)
	if !scanObject(restarted, true, &s) {
		t.Fatal("the fast path does not apply to a restarted Deployment")
	}
	if at := restartedAt(&s); at != "2026-11-26T10:00:00Z" {
		t.Fatalf("restartedAt = %q", at)
	}
	if !metaFromScan(&s, m) || len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Kind != "ReplicaSet" || controllerRef(m) == nil {
		t.Fatalf("owner references read wrong: %#v", m)
	}
}

// TestSkipValueFindsTheEnd: skipValue finds where a JSON value ends wherever its quotes,
// escapes and brackets fall against the 64-byte blocks it reads, on values that encoding/json
// writes from random trees of strings full of quotes, backslashes and brackets.
func TestSkipValueFindsTheEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 64))
	const alphabet = `ab"\{}[]:,` + "\u00e9\x01"
	randomString := func() string {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return strings.ToValidUTF8(string(b), "?")
	}
	var tree func(depth int) any
	tree = func(depth int) any {
		switch n := rng.IntN(6); {
		case depth > 4 || n == 0:
			return randomString()
		case n == 1:
			return rng.Float64()
		case n == 2:
			return nil
		case n == 3:
			list := make([]any, rng.IntN(5))
			for i := range list {
				list[i] = tree(depth + 1)
			}
			return list
		default:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[randomString()] = tree(depth + 1)
			}
			return m
		}
	}
	for i := range 2000 {
		v, err := json.Marshal(map[string]any{"v": tree(0)})
		if err != nil {
			t.Fatal(err)
		}
		for pad := range 3 {
			// The value after some padding, followed by more JSON.
			doc := append([]byte(strings.Repeat(" ", (i+pad*21)%64)), v...)
			start := len(doc) - len(v)
			doc = append(doc, `,"after":"}]\""`...)
			end, ok := skipValue(doc, start)
			if !ok || end != start+len(v) {
				t.Fatalf("value %d: skipValue ended at %d (ok %v), want %d: %s", i, end, ok, start+len(v), v)
			}
			if _, ok := skipValue(doc[:start+len(v)-1], start); ok {
				t.Fatalf("value %d: skipValue found an end in a value cut short: %s", i, v)
			}
		}
	}
}
