package reconciler_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallFor is how long a stalled Git server holds each request before it answers: far
// longer than a drift revert may take.
const stallFor = 30 * time.Second

// stallingProxy forwards to a Git server, except that while stalled it holds every request
// for stallFor (or until released), as a Git server that stopped answering does.
type stallingProxy struct {
	*httptest.Server
	stalled atomic.Bool
	// held counts the requests being held.
	held    atomic.Int32
	release chan struct{}
	once    sync.Once
}

func newStallingProxy(t *testing.T, target string) *stallingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{release: make(chan struct{})}
	forward := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.stalled.Load() {
			p.held.Add(1)
			defer p.held.Add(-1)
			select {
			case <-p.release:
			case <-time.After(stallFor):
			case <-r.Context().Done():
				return
			}
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.once.Do(func() { close(p.release) })
		p.Close()
	})
	return p
}

// TestHealingDoesNotWaitForAStalledFetch stalls the Git server for 30 s in the middle of a
// sync: the fetch hangs, and a drift made meanwhile is reverted within the usual time, while
// the fetch is still held.
func TestHealingDoesNotWaitForAStalledFetch(t *testing.T) {
	g := newRig(t, unique("stall"), overHTTP)
	namespace(t, g.src.Name)
	proxy := newStallingProxy(t, g.server.URL())
	g.src.URL = proxy.URL + "/" + g.src.Name + ".git"
	rev := g.commit(map[string]string{"apps/a.yaml": configMap(g.src.Name, "a", map[string]string{"x": "git"}, nil)})
	g.start(g.reconciler(), rev)

	proxy.stalled.Store(true)
	g.commit(map[string]string{"apps/b.yaml": configMap(g.src.Name, "b", nil, nil)})
	eventually(t, "the next sync's fetch hangs on the stalled Git server", func() (bool, string) {
		if proxy.held.Load() > 0 {
			return true, ""
		}
		g.clock.Step(g.src.Interval.Duration)
		return false, "no request held yet"
	})

	kubectl(t, "-n", g.src.Name, "patch", "configmap", "a", "--type=merge", "-p", `{"data":{"x":"drift"}}`)
	eventually(t, "the drift is reverted while the fetch hangs", func() (bool, string) {
		cm := getConfigMap(t, g.src.Name, "a")
		return cm.Data["x"] == "git", dataOf(cm)
	})
	if proxy.held.Load() == 0 {
		t.Error("the fetch was no longer stalled when the drift was reverted; the test proved nothing")
	}
}
