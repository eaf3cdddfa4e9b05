package reconciler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
)

// TestSuspensionEndIsRecordedWhenTheSourceRestarts: removing the suspend annotations at the
// expiry makes the GitSource controller restart the source, which cancels the context of the
// reconciler that removed them, possibly before the API server's answer to the patch arrives.
// The end is recorded all the same: the annotations are gone and the SuspensionExpired Event
// is there.
func TestSuspensionEndIsRecordedWhenTheSourceRestarts(t *testing.T) {
	g := newRig(t, unique("suspension-end"), overFile)
	until := g.clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
	kubectl(t, "-n", v1alpha1.DefaultNamespace, "annotate", "gitsource/"+g.src.Name,
		v1alpha1.AnnotationSuspend+"=INC-7", v1alpha1.AnnotationSuspendUntil+"="+until.Format(time.RFC3339), v1alpha1.AnnotationSuspendBy+"=alice")

	ctx, restart := context.WithCancel(testCtx(t))
	defer restart()
	opts := g.opts
	opts.Client = clientThrough(t, func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, "/gitsources/"+g.src.Name) {
			// The controller saw the patch and restarts the source before the answer
			// arrives: a client whose request's context is done by then gets the
			// cancellation, not the answer.
			restart()
			if cerr := req.Context().Err(); cerr != nil {
				resp.Body.Close()
				return nil, cerr
			}
		}
		return resp, err
	})
	r, err := reconciler.NewRun(reconciler.SourceRun{Source: g.src, Suspension: &v1alpha1.SuspensionStatus{
		Reason: "INC-7", By: "alice", Until: &metav1.Time{Time: until},
	}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	eventually(t, "the reconciler waits for the expiry", func() (bool, string) {
		return g.clock.HasWaiters(), "no timer on the clock"
	})
	g.clock.Step(time.Hour + time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the reconciler did not stop after the restart")
	}
	if annos := get(t, v1alpha1.APIVersion, "gitsources", v1alpha1.DefaultNamespace, g.src.Name).GetAnnotations(); annos[v1alpha1.AnnotationSuspend] != "" {
		t.Fatalf("suspend annotations still there: %v", annos)
	}
	waitEvent(t, v1alpha1.DefaultNamespace, g.src.Name, "SuspensionExpired", "INC-7", "alice")
}
