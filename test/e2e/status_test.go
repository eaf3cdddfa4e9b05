package e2e

import (
	"strings"
	"testing"
)

// TestStatusWritesMayNotChangeMetadata: the API server keeps the labels and annotations a
// write to a status subresource changes (on Services, Pods and Namespaces among others), so in
// protected scope such a write is decided like any other change, while one that changes only
// the status is allowed. Before, the guard never saw status writes: admin relabelled a
// Git-owned Service and set a protected Namespace's pod-security level through them.
func TestStatusWritesMayNotChangeMetadata(t *testing.T) {
	ctx := t.Context()
	const svc = `apiVersion: v1
kind: Service
metadata:
  name: status-svc
  namespace: production
  labels: {driftless.dev/source: platform}
spec:
  ports: [{port: 80}]
`
	if r := cp.Reconciler.KubectlWith(ctx, []byte(svc), nil, "apply", "-f", "-"); r.Err != nil {
		t.Fatalf("the reconciler applies the Service: %s", r.Combined())
	}
	for _, c := range []struct {
		name, target, patch, want string
	}{
		{"relabel a Service", "service/status-svc", `{"metadata":{"labels":{"driftless.dev/source":null,"app":"payments-db-clients"}}}`, "a status write may change the status only"},
		{"set break-glass on a Service", "service/status-svc", `{"metadata":{"annotations":{"driftless.dev/break-glass":"INC-1","driftless.dev/break-glass-until":"2099-01-01T00:00:00Z"}}}`, "admin sets break-glass annotations but is not in a break-glass group"},
		{"lower a protected Namespace's pod security", "namespace/production", `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`, "a status write may change the status only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cp.Admin.Kubectl(ctx, "patch", "-n", "production", c.target, "--subresource=status", "--type=merge", "-p", c.patch)
			if r.Err == nil || !strings.Contains(r.Combined(), c.want) {
				t.Fatalf("admin's status write that changes metadata: err %v, want the guard's denial:\n%s", r.Err, r.Combined())
			}
		})
	}
	assertKubectlOutput(t, cp.Admin, `{.metadata.labels.driftless\.dev/source}{.metadata.labels.app}{.metadata.annotations.driftless\.dev/break-glass}`, "platform", "get", "-n", "production", "service/status-svc")
	assertKubectlOutput(t, cp.Admin, `{.metadata.labels.pod-security\.kubernetes\.io/enforce}`, "", "get", "namespace", "production")

	// The status alone still changes.
	if r := cp.Admin.Kubectl(ctx, "patch", "-n", "production", "service/status-svc", "--subresource=status", "--type=merge", "-p", `{"status":{"conditions":[{"type":"Probed","status":"True","reason":"Test","message":"seen","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`); r.Err != nil {
		t.Fatalf("admin's status-only write: %s", r.Combined())
	}
	assertKubectlOutput(t, cp.Admin, `{.status.conditions[0].reason}`, "Test", "get", "-n", "production", "service/status-svc")
}
