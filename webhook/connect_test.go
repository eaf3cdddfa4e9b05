package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// podParents returns the annotations of the pod a CONNECT is for.
type podParents map[string]map[string]string

func (p podParents) ParentMeta(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	a, ok := p[name]
	if !ok || gvr.Resource != "pods" {
		return nil, fmt.Errorf("%s %s/%s not found", gvr.Resource, namespace, name)
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: a}}, nil
}

// TestConnectIsBreakGlassOnly shows the CONNECT row: exec into a pod in a protected namespace
// is allowed only to a break-glass group member, and only while the pod carries a valid
// break-glass.
func TestConnectIsBreakGlassOnly(t *testing.T) {
	cfg, err := v1alpha1.Decode([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	valid := breakGlassObj("INC-9: inspect", now.Add(time.Hour)).annotations
	expired := breakGlassObj("INC-8: old", now.Add(-time.Minute)).annotations
	g, err := NewGuard(Options{Config: cfg, Clock: clocktesting.NewFakePassiveClock(now), Metrics: m,
		Parents: podParents{"glassed": valid, "expired": expired, "plain": nil}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user string
		groups     []string
		pod        string
		reason     Reason
		allowed    bool
		message    string
	}{
		{"member, valid break-glass on the pod", "alice", alice, "glassed", ReasonBreakGlass, true, ""},
		{"member, expired break-glass", "alice", alice, "expired", ReasonBreakGlassInvalid, false, "the break-glass expired"},
		{"member, no break-glass", "alice", alice, "plain", ReasonConnect, false, "exec, attach, port-forward and proxy"},
		{"member, pod cannot be read", "alice", alice, "gone", ReasonConnect, false, "could not read pods/gone"},
		{"not a member, valid break-glass", "bob", bob, "glassed", ReasonConnect, false, "bob may not connect to pods/glassed (subresource exec)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request{user: tt.user, groups: tt.groups, op: admissionv1.Connect, ns: "production", resource: "pods", subResource: "exec", name: tt.pod, object: &obj{}}.build()
			resp := g.Handle(t.Context(), req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, tt.allowed, resp.Result.Message)
			}
			if !tt.allowed && !strings.Contains(resp.Result.Message, tt.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tt.message)
			}
			f := &facts{}
			if err := f.read(&req); err != nil {
				t.Fatal(err)
			}
			d := g.rules.Load().decide(f, now)
			if d.deny && needsParent(f) {
				d = g.decideByParent(t.Context(), g.rules.Load(), f, now, d)
			}
			if d.reason != tt.reason {
				t.Errorf("reason %s, want %s", d.reason, tt.reason)
			}
		})
	}
}

// TestEventLimiter shows the two bounds on Events: per user, reason and object, and in total,
// whoever the users are; time refills both.
func TestEventLimiter(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(now)
	l := newEventLimiter(clk)
	same := eventKey{user: "bob", reason: EventChangeDenied, namespace: "production", name: "app", resource: "configmaps"}
	allowed := 0
	for range 10 {
		if l.allow(same) {
			allowed++
		}
	}
	if allowed != EventBurstPerKey {
		t.Errorf("one key got %d Events in a burst, want %d", allowed, EventBurstPerKey)
	}
	clk.SetTime(now.Add(EventIntervalPerKey))
	if !l.allow(same) {
		t.Errorf("one key got no Event after %s", EventIntervalPerKey)
	}

	allowed = 0
	for i := range 1000 {
		if l.allow(eventKey{user: fmt.Sprintf("forged-%d", i), reason: EventBreakGlassUsed, namespace: "production", name: "app"}) {
			allowed++
		}
	}
	// The minute above refilled the total budget, and one Event used it again.
	if want := EventBurst - 1; allowed != want {
		t.Errorf("1000 distinct users got %d Events, want %d", allowed, want)
	}
	clk.SetTime(now.Add(EventIntervalPerKey + 10*time.Second))
	if !l.allow(eventKey{user: "carol", reason: EventChangeDenied}) {
		t.Errorf("no Event after the total budget refilled")
	}
}
