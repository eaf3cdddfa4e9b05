package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/test/gitserver"
)

// Transports a source can be fetched over in these tests.
const (
	overHTTP = "http" // the loopback Git server with basic auth
	overFile = "file" // a file:// URL
)

// rig is one source: a Git repository, its configuration and what a reconciler needs.
type rig struct {
	t      testing.TB
	repo   *gitserver.Repo
	server *gitserver.Server // nil over file://
	src    v1alpha1.Source
	clock  *clocktesting.FakeClock
	opts   reconciler.Options
}

// newRig makes a source called name, over transport, rendering path "apps" into namespace ns
// (created here) by default.
func newRig(t testing.TB, name, transport string) *rig {
	t.Helper()
	requireCluster(t)
	g := &rig{t: t, clock: clocktesting.NewFakeClock(time.Now())}
	switch transport {
	case overHTTP:
		g.server = gitserver.New(t, gitserver.WithBasicAuth("driftless", "s3cret-pass"))
		g.repo = g.server.CreateRepo(t, name+".git")
		pw := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(pw, []byte("s3cret-pass\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		g.src = v1alpha1.Source{URL: g.server.RepoURL(name + ".git"), Auth: &v1alpha1.GitAuth{Username: "driftless", PasswordFile: pw}}
	case overFile:
		g.repo = gitserver.InitBare(t, filepath.Join(t.TempDir(), name+".git"))
		g.src = v1alpha1.Source{URL: g.repo.FileURL()}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	g.src.Name = name
	g.src.Path = "apps"
	g.src.Interval = metav1.Duration{Duration: time.Minute}
	g.src.Timeout = metav1.Duration{Duration: time.Minute}
	createGitSource(t, g.src)
	dyn, err := dynamic.NewForConfig(reconcilerConfig)
	if err != nil {
		t.Fatal(err)
	}
	httpClient, err := rest.HTTPClientFor(reconcilerConfig)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(reconcilerConfig, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(reconcilerConfig)
	if err != nil {
		t.Fatal(err)
	}
	g.opts = reconciler.Options{
		Client:   dyn,
		Mapper:   mapper,
		OpenAPI:  disco.OpenAPIV3(),
		Fetcher:  source.NewGitFetcher(),
		CacheDir: t.TempDir(),
		Recorder: recorder,
		Clock:    g.clock,
	}
	return g
}

// roundTripperFunc is a function that is an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// clientThrough returns a dynamic client of the reconciler's identity that hands each request,
// with the transport that sends it, to through: to count, record or interfere with them.
func clientThrough(t testing.TB, through func(req *http.Request, next http.RoundTripper) (*http.Response, error)) dynamic.Interface {
	t.Helper()
	cfg := rest.CopyConfig(reconcilerConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) { return through(req, rt) })
	})
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reconciler returns a new reconciler of the rig's source, as a fresh process would make it.
func (g *rig) reconciler() *reconciler.Reconciler {
	g.t.Helper()
	opts := g.opts
	opts.CacheDir = g.t.TempDir()
	r, err := reconciler.New(g.src, opts)
	if err != nil {
		g.t.Fatalf("new reconciler: %v", err)
	}
	return r
}

// commit commits files (path to content) and deletes paths on main, and returns the SHA.
func (g *rig) commit(files map[string]string, del ...string) string {
	g.t.Helper()
	return g.repo.Commit(g.t, "main", gitserver.Change{Files: files, Delete: del, Message: "test change"})
}

// ctx returns a context carrying a logger that writes to the test log.
func testCtx(t testing.TB) context.Context {
	return logr.NewContext(t.Context(), testr.NewWithInterface(t, testr.Options{LogTimestamp: true}))
}

// sync runs one sync and fails the test if it does not succeed.
func (g *rig) sync(r *reconciler.Reconciler) reconciler.Result {
	g.t.Helper()
	res, err := r.Sync(testCtx(g.t))
	if err != nil {
		g.t.Fatalf("sync %s: %v", g.src.Name, err)
	}
	return res
}

// start runs r until the test ends, and waits until it has applied want.
func (g *rig) start(r *reconciler.Reconciler, want string) {
	g.t.Helper()
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.NewWithInterface(g.t, testr.Options{})))
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	g.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			g.t.Errorf("start returned %v", err)
		}
	})
	g.waitRevision(want)
}

// waitRevision waits until the source's status says commit was applied.
func (g *rig) waitRevision(commit string) {
	g.t.Helper()
	eventually(g.t, "status names revision "+commit, func() (bool, string) {
		st := g.status()
		return st.Revision == commit && st.Result == reconciler.ResultApplied, fmt.Sprintf("%+v", st)
	})
}

// createGitSource creates the GitSource of src in the Driftless namespace, as an
// administrator would: the reconciler keeps the source's status and inventory in it.
func createGitSource(t testing.TB, src v1alpha1.Source) {
	t.Helper()
	gs := v1alpha1.GitSourceForSource(src, v1alpha1.DefaultNamespace)
	delete(gs.Labels, v1alpha1.LabelFromConfig)
	b, err := yaml.Marshal(gs)
	if err != nil {
		t.Fatal(err)
	}
	if r := cp.Admin.KubectlWith(t.Context(), b, nil, "create", "-f", "-"); r.Err != nil {
		t.Fatalf("create gitsource %s: %v\n%s", src.Name, r.Err, r.Combined())
	}
}

// inventoryText returns the inventory of source name, one object a line.
func inventoryText(t testing.TB, name string) string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := reconciler.InventoryText(t.Context(), dyn, v1alpha1.DefaultNamespace, name)
	if err != nil {
		t.Fatalf("read inventory of %s: %v", name, err)
	}
	return inv
}

// status reads the source's status from its GitSource.
func (g *rig) status() reconciler.Status {
	g.t.Helper()
	st, found, err := reconciler.ReadSourceStatus(g.t.Context(), g.opts.Client, v1alpha1.DefaultNamespace, g.src.Name)
	if err != nil {
		g.t.Fatalf("read status: %v", err)
	}
	if !found {
		return reconciler.Status{}
	}
	return st
}

// seq makes names unique across repeated runs (-count) against one control plane.
var seq atomic.Int64

// unique returns base with a suffix no other call in this process returns.
func unique(base string) string { return fmt.Sprintf("%s-%d", base, seq.Add(1)) }

// eventually polls cond until it holds, failing the test after a deadline. cond returns a
// description of what it saw for the failure message.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; last saw: %s", what, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namespace creates a namespace as admin.
func namespace(t testing.TB, name string) {
	t.Helper()
	requireCluster(t)
	_, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// configMap returns the YAML of a ConfigMap.
func configMap(ns, name string, data map[string]string, annotations map[string]string) string {
	md := map[string]any{"name": name, "namespace": ns}
	if len(annotations) > 0 {
		md["annotations"] = annotations
	}
	b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// namespaceYAML returns the YAML of a Namespace.
func namespaceYAML(name string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
}

// getConfigMap reads a ConfigMap as admin; nil when it does not exist.
func getConfigMap(t testing.TB, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := admin.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

// dataOf formats a ConfigMap's data for comparisons and messages; "<none>" when it does not
// exist.
func dataOf(cm *corev1.ConfigMap) string {
	if cm == nil {
		return "<none>"
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + cm.Data[k]
	}
	return strings.Join(parts, ",")
}

// listEvents returns the Events in namespace about the object called name with reason.
func listEvents(t testing.TB, namespace, name, reason string) []eventsv1.Event {
	t.Helper()
	list, err := admin.EventsV1().Events(namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events in %s: %v", namespace, err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an Event about name with reason whose note contains every string in
// want, and returns it.
func waitEvent(t testing.TB, namespace, name, reason string, want ...string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	eventually(t, fmt.Sprintf("event %s about %s/%s", reason, namespace, name), func() (bool, string) {
		evs := listEvents(t, namespace, name, reason)
		var notes []string
	next:
		for _, e := range evs {
			for _, w := range want {
				if !strings.Contains(e.Note, w) {
					notes = append(notes, e.Note)
					continue next
				}
			}
			found = e
			return true, ""
		}
		return false, fmt.Sprintf("%d events with other notes: %q", len(evs), notes)
	})
	return found
}

// get reads any object as admin; nil when it does not exist.
func get(t testing.TB, apiVersion, resource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cp.Admin.Config)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := schemaGV(apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	ri := dyn.Resource(gv.WithResource(resource))
	var u *unstructured.Unstructured
	if ns != "" {
		u, err = ri.Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	} else {
		u, err = ri.Get(t.Context(), name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", resource, ns, name, err)
	}
	return u
}

// kubectl runs the real kubectl as admin and fails the test if it fails.
func kubectl(t testing.TB, args ...string) string {
	t.Helper()
	r := cp.Admin.Kubectl(t.Context(), args...)
	if r.Err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), r.Err, r.Combined())
	}
	return r.Stdout
}

func schemaGV(apiVersion string) (schema.GroupVersion, error) {
	return schema.ParseGroupVersion(apiVersion)
}
