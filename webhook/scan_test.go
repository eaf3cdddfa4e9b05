package webhook

import (
	"testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// TestScanAppliesToAPIServerObjects shows that the fast path is taken for objects as the API
// server sends them, and reads what the guard needs from them.
func TestScanAppliesToAPIServerObjects(t *testing.T) {
	s, ok := scanObject(deploymentJSON)
	if !ok {
		t.Fatal("the fast path does not apply to the Deployment")
	}
	m, ok := metaFromScan(&s)
	if !ok {
		t.Fatal("the fast path cannot read the Deployment's metadata")
	}
	if m.Name != "payment-gateway" || m.Namespace != "production" || m.UID != "7c1f" ||
		m.Labels[v1alpha1.LabelSource] != "platform" || m.Annotations["deployment.kubernetes.io/revision"] != "7" {
		t.Fatalf("metadata read wrong: %#v", m)
	}
	if at := restartedAt(&s); at != "" {
		t.Fatalf("restartedAt = %q, want none", at)
	}

	restarted := []byte(`{"metadata":{"name":"web","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]},` +
		`"spec":{"replicas":2,"template":{"metadata":{"annotations":{"a":"b","kubectl.kubernetes.io/restartedAt":"2026-11-26T10:00:00Z"}}}}}`)
	s, ok = scanObject(restarted)
	if !ok {
		t.Fatal("the fast path does not apply to a restarted Deployment")
	}
	if at := restartedAt(&s); at != "2026-11-26T10:00:00Z" {
		t.Fatalf("restartedAt = %q", at)
	}
	m, ok = metaFromScan(&s)
	if !ok || len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Kind != "ReplicaSet" || controllerRef(m) == nil {
		t.Fatalf("owner references read wrong: %#v", m)
	}
}
