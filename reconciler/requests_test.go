package reconciler_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/dynamic"
)

// requestLog records the requests a client makes, by method, path and dry-run.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

// client returns a dynamic client of the reconciler's identity whose requests l records.
func (l *requestLog) client(t *testing.T) dynamic.Interface {
	t.Helper()
	return clientThrough(t, func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		what := req.Method + " " + req.URL.Path
		if req.URL.Query().Get("dryRun") != "" {
			what += " (dry-run)"
		}
		if m := req.URL.Query().Get("fieldManager"); m != "" {
			what += " by " + m
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, what)
		l.mu.Unlock()
		return next.RoundTrip(req)
	})
}

// take returns the requests recorded since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// TestFirstSyncRequests: the first sync of a revision that creates its namespaces makes at
// most two requests per object (a dry-run and an apply), never reading what cannot exist
// yet; a Namespace that already exists is read before anything is applied in it.
func TestFirstSyncRequests(t *testing.T) {
	g := newRig(t, unique("requests"), overFile)
	var log requestLog
	g.opts.Client = log.client(t)
	existing := g.src.Name + "-existing"
	namespace(t, existing)
	files := map[string]string{}
	var objects int
	for n := range 3 {
		ns := fmt.Sprintf("%s-%d", g.src.Name, n)
		if n == 2 {
			ns = existing
		}
		files["apps/"+ns+"/namespace.yaml"] = namespaceYAML(ns)
		objects++
		for i := range 10 {
			files[fmt.Sprintf("apps/%s/cm-%d.yaml", ns, i)] = configMap(ns, fmt.Sprintf("cm-%d", i), map[string]string{"i": fmt.Sprint(i)}, nil)
			objects++
		}
	}
	g.commit(files)
	g.src.Adopt = true
	r := g.reconciler()
	log.take()
	g.sync(r)

	perObject := map[string][]string{}
	for _, req := range log.take() {
		method, rest, _ := strings.Cut(req, " ")
		path, _, _ := strings.Cut(rest, " ")
		// Object requests name the object: .../namespaces/<ns>/configmaps/<name> or
		// .../namespaces/<name>. Lists, discovery and status writes are not per object.
		parts := strings.Split(strings.Trim(path, "/"), "/")
		if len(parts) < 4 || (method != http.MethodGet && method != http.MethodPatch) || !strings.Contains(path, "/namespaces/") {
			continue
		}
		if !strings.Contains(path, "/namespaces/"+g.src.Name+"-") {
			continue // the source's own records
		}
		perObject[path] = append(perObject[path], req)
	}
	total := 0
	for path, reqs := range perObject {
		total += len(reqs)
		inExisting := strings.Contains(path, "/"+existing)
		switch {
		case inExisting && strings.HasSuffix(path, "/namespaces/"+existing):
			// A Namespace new to the source that exists: probed, read and dry-run, then
			// applied to take it over.
			if len(reqs) > 4 {
				t.Errorf("%s: %d requests, want at most 4: %v", path, len(reqs), reqs)
			}
		case inExisting:
			if len(reqs) > 3 {
				t.Errorf("%s: %d requests, want at most 3 (a read, a dry-run and an apply): %v", path, len(reqs), reqs)
			}
		default:
			if len(reqs) > 2 {
				t.Errorf("%s: %d requests, want at most 2 (a dry-run and an apply): %v", path, len(reqs), reqs)
			}
			for _, req := range reqs {
				if strings.HasPrefix(req, http.MethodGet) {
					t.Errorf("%s was read although it could not exist yet: %v", path, reqs)
				}
			}
		}
	}
	if len(perObject) != objects {
		t.Errorf("requests named %d objects, the revision has %d: %v", len(perObject), objects, perObject)
	}
	t.Logf("%d requests for %d objects", total, objects)
	for n := range 2 {
		ns := fmt.Sprintf("%s-%d", g.src.Name, n)
		for i := range 10 {
			if cm := getConfigMap(t, ns, fmt.Sprintf("cm-%d", i)); cm.Data["i"] != fmt.Sprint(i) {
				t.Errorf("%s/cm-%d: data %v", ns, i, cm.Data)
			}
		}
	}
}

// TestUnchangedInventoryIsNotRewritten: a sync that changes nothing does not write the
// source's inventory again (a server-side apply of every entry); a sync that adds an object
// writes it, and the GitSource then lists the new object.
func TestUnchangedInventoryIsNotRewritten(t *testing.T) {
	g := newRig(t, unique("inventory-writes"), overFile)
	namespace(t, g.src.Name)
	var log requestLog
	g.opts.Client = log.client(t)
	g.commit(map[string]string{"apps/a.yaml": configMap(g.src.Name, "a", nil, nil)})
	r := g.reconciler()
	g.sync(r)
	inventoryWrites := func() int {
		n := 0
		for _, req := range log.take() {
			if strings.HasPrefix(req, http.MethodPatch) && strings.Contains(req, "/gitsources/"+g.src.Name+"/status") &&
				strings.HasSuffix(req, " by driftless-inventory") {
				n++
			}
		}
		return n
	}
	if n := inventoryWrites(); n == 0 {
		t.Fatal("the first sync wrote no inventory")
	}

	g.clock.Step(g.src.Interval.Duration)
	g.sync(r)
	if n := inventoryWrites(); n != 0 {
		t.Errorf("a sync that changed nothing wrote the inventory %d times", n)
	}

	g.commit(map[string]string{"apps/b.yaml": configMap(g.src.Name, "b", nil, nil)})
	g.sync(r)
	if n := inventoryWrites(); n == 0 {
		t.Error("a sync that added an object did not write the inventory")
	}
	if inv := inventoryText(t, g.src.Name); !strings.Contains(inv, `"n":"b"`) {
		t.Errorf("the GitSource's inventory is\n%s\nwant it to list ConfigMap b", inv)
	}
}
