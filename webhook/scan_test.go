package webhook

import (
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
