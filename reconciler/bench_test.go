package reconciler_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/driftless-dev/driftless/reconciler"
)

// Size of the generated repository: benchObjects ConfigMaps spread over benchNamespaces
// namespaces (declared in the repository too).
const (
	benchObjects    = 1000
	benchNamespaces = 4
)

// benchFiles generates the repository of source name; version changes object 0.
func benchFiles(name string, version int) map[string]string {
	files := map[string]string{}
	for n := range benchNamespaces {
		ns := fmt.Sprintf("%s-%d", name, n)
		files[fmt.Sprintf("apps/%s/namespace.yaml", ns)] = namespaceYAML(ns)
	}
	for i := range benchObjects {
		ns := fmt.Sprintf("%s-%d", name, i%benchNamespaces)
		data := map[string]string{
			"index":    strconv.Itoa(i),
			"endpoint": fmt.Sprintf("https://service-%d.%s.svc.cluster.local:8443/api", i, ns),
			"flags":    "alpha,beta,gamma",
		}
		if i == 0 {
			data["version"] = strconv.Itoa(version)
		}
		files[fmt.Sprintf("apps/%s/cm-%04d.yaml", ns, i)] = configMap(ns, fmt.Sprintf("cm-%04d", i), data, nil)
	}
	return files
}

// withKustomization adds apps/kustomization.yaml listing every generated file, so that the
// source renders through kustomize as an overlay does.
func withKustomization(files map[string]string) map[string]string {
	var names []string
	for f := range files {
		names = append(names, strings.TrimPrefix(f, "apps/"))
	}
	slices.Sort(names)
	files["apps/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + strings.Join(names, "\n  - ") + "\n"
	return files
}

// benchRig makes a source with the generated repository committed.
func benchRig(b *testing.B, name string) *rig {
	b.Helper()
	g := newRig(b, name, overFile)
	g.src.Timeout = metav1.Duration{Duration: 5 * time.Minute}
	g.commit(benchFiles(name, 0))
	return g
}

// benchSync syncs without logging, and fails the benchmark on error.
func benchSync(b *testing.B, r *reconciler.Reconciler) {
	b.Helper()
	if _, err := r.Sync(context.Background()); err != nil {
		b.Fatalf("sync: %v", err)
	}
}

// reportMemory reports the Go heap in use after a collection and the process's peak
// resident set (VmHWM). The peak covers the whole test process, which also holds the
// Git server, the test clients and earlier benchmarks' garbage.
func reportMemory(b *testing.B) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	if hwm := vmHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
	}
}

// vmHWM reads the process's peak resident set size in bytes from /proc; 0 if unknown.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startBench runs r until the benchmark ends, after a first sync of its own: on a loaded
// machine a first sync of 1,004 objects can take longer than the start helper waits.
func startBench(b *testing.B, g *rig, r *reconciler.Reconciler) {
	b.Helper()
	benchSync(b, r)
	g.start(r, g.repo.Head(b, "main"))
}

// BenchmarkFirstSync applies the generated repository to an empty cluster: 1,004 objects
// dry-run and created. Each iteration uses a new source and new namespaces.
func BenchmarkFirstSync(b *testing.B) {
	requests := requestCounter{prefix: "bench-first"}
	client := clientThrough(b, func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		requests.count(req)
		return next.RoundTrip(req)
	})
	var total, other int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g := benchRig(b, unique("bench-first"))
		g.opts.Client = client
		r := g.reconciler()
		before, beforeOther := requests.load()
		b.StartTimer()
		benchSync(b, r)
		b.StopTimer()
		after, afterOther := requests.load()
		total, other = total+after-before, other+afterOther-beforeOther
		if st := g.status(); st.ObjectsApplied != benchObjects+benchNamespaces {
			b.Fatalf("first sync applied %d objects, want %d", st.ObjectsApplied, benchObjects+benchNamespaces)
		}
	}
	b.ReportMetric(float64(benchObjects+benchNamespaces), "objects")
	b.ReportMetric(float64(total)/float64(b.N)/float64(benchObjects+benchNamespaces), "requests/object")
	b.ReportMetric(float64(other)/float64(b.N), "other-requests/sync")
	reportMemory(b)
}

// requestCounter counts requests apart: those that name an object of a revision (whose
// namespaces all start with prefix: the Namespaces and what is in them), as kubectl's one
// request per object is counted, and the rest (the source's own records, discovery), a few
// per sync whatever its size.
type requestCounter struct {
	prefix         string
	objects, other atomic.Int64
}

// count counts req.
func (c *requestCounter) count(req *http.Request) {
	if strings.Contains(req.URL.Path, "/namespaces/"+c.prefix) {
		c.objects.Add(1)
	} else {
		c.other.Add(1)
	}
}

// load returns the counts so far.
func (c *requestCounter) load() (objects, other int64) { return c.objects.Load(), c.other.Load() }

// BenchmarkNoopResync syncs the generated repository again without a change; nothing is
// written. "running" is the periodic resync of a started reconciler: live objects come from
// the watch cache, and objects unchanged since they last matched Git need no dry-run.
// "restarted" is the first sync of a new reconciler over an applied cluster: every object is
// read and dry-run.
func BenchmarkNoopResync(b *testing.B) {
	// "running-kustomize" is the same through kustomize: a new revision renders, the same
	// revision reuses its render.
	for _, variant := range []struct {
		name  string
		files func(map[string]string) map[string]string
	}{
		{"running", func(f map[string]string) map[string]string { return f }},
		{"running-kustomize", withKustomization},
	} {
		b.Run(variant.name, func(b *testing.B) {
			name := unique("bench-noop-" + variant.name)
			g := newRig(b, name, overFile)
			g.src.Timeout = metav1.Duration{Duration: 5 * time.Minute}
			g.commit(variant.files(benchFiles(name, 0)))
			r := g.reconciler()
			startBench(b, g, r)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				benchSync(b, r)
			}
			b.StopTimer()
			if st := g.status(); st.ObjectsApplied != 0 {
				b.Fatalf("no-op resync applied %d objects", st.ObjectsApplied)
			}
			reportMemory(b)
		})
	}
	b.Run("restarted", func(b *testing.B) {
		g := benchRig(b, unique("bench-noop-restarted"))
		benchSync(b, g.reconciler())
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			r := g.reconciler()
			b.StartTimer()
			benchSync(b, r)
		}
		b.StopTimer()
		if st := g.status(); st.ObjectsApplied != 0 {
			b.Fatalf("no-op resync applied %d objects", st.ObjectsApplied)
		}
		reportMemory(b)
	})
}

// BenchmarkOneObjectChange syncs a commit that changes one of the 1,004 objects, declared as
// plain YAML and through a kustomization listing the files, and reports the requests the
// reconciler's client makes per sync (the 1,003 unchanged objects should need none).
func BenchmarkOneObjectChange(b *testing.B) {
	var requests atomic.Int64
	client := clientThrough(b, func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if !strings.Contains(req.URL.RawQuery, "watch=true") {
			requests.Add(1)
		}
		return next.RoundTrip(req)
	})
	for _, variant := range []struct {
		name  string
		files func(map[string]string) map[string]string
	}{
		{"plain", func(f map[string]string) map[string]string { return f }},
		{"kustomize", withKustomization},
	} {
		b.Run(variant.name, func(b *testing.B) {
			name := unique("bench-one")
			g := newRig(b, name, overFile)
			g.src.Timeout = metav1.Duration{Duration: 5 * time.Minute}
			g.opts.Client = client
			g.commit(variant.files(benchFiles(name, 0)))
			r := g.reconciler()
			startBench(b, g, r)
			b.ResetTimer()
			var total int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				file := "apps/" + name + "-0/cm-0000.yaml"
				g.commit(map[string]string{file: benchFiles(name, i+1)[file]})
				before := requests.Load()
				b.StartTimer()
				benchSync(b, r)
				b.StopTimer()
				total += requests.Load() - before
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(total)/float64(b.N), "requests/sync")
			if st := g.status(); st.ObjectsApplied != 1 {
				b.Fatalf("one-object change applied %d objects, want 1", st.ObjectsApplied)
			}
			reportMemory(b)
		})
	}
}

// BenchmarkUnrelatedCommit syncs a commit to the kustomize overlay's repository that changes
// only a file outside the source's path: nothing the kustomization reads changed, so the
// render of the last commit is reused.
func BenchmarkUnrelatedCommit(b *testing.B) {
	name := unique("bench-unrelated")
	g := newRig(b, name, overFile)
	g.src.Timeout = metav1.Duration{Duration: 5 * time.Minute}
	g.commit(withKustomization(benchFiles(name, 0)))
	r := g.reconciler()
	startBench(b, g, r)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g.commit(map[string]string{"docs/README.md": fmt.Sprintf("change %d\n", i)})
		b.StartTimer()
		benchSync(b, r)
	}
	b.StopTimer()
	if st := g.status(); st.ObjectsApplied != 0 {
		b.Fatalf("unrelated commit applied %d objects", st.ObjectsApplied)
	}
	reportMemory(b)
}

// BenchmarkDriftRevert measures the time from an out-of-band change (a data key added with
// a merge patch by admin, as kubectl patch does) to the watch reporting the object back as
// Git declares it, with 1,004 objects watched.
func BenchmarkDriftRevert(b *testing.B) {
	src := unique("bench-drift")
	g := benchRig(b, src)
	r := g.reconciler()
	startBench(b, g, r)
	ns, name := src+"-1", "cm-0001"
	cms := admin.CoreV1().ConfigMaps(ns)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cm, err := cms.Get(b.Context(), name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w, err := cms.Watch(b.Context(), metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: cm.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		patch := fmt.Sprintf(`{"data":{"added-%d":"x","index":"changed"}}`, i)
		if _, err := cms.Patch(b.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-patch"}); err != nil {
			b.Fatal(err)
		}
		reverted := false
		timeout := time.After(30 * time.Second)
		for !reverted {
			select {
			case ev := <-w.ResultChan():
				if c, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Modified {
					_, added := c.Data[fmt.Sprintf("added-%d", i)]
					reverted = !added && c.Data["index"] == "1"
				}
			case <-timeout:
				b.Fatalf("drift not reverted within 30s")
			}
		}
		b.StopTimer()
		w.Stop()
		b.StartTimer()
	}
	b.StopTimer()
	eventually(b, "status counts the reverts", func() (bool, string) {
		st := g.status()
		return st.DriftReverts >= int64(b.N), fmt.Sprintf("%d drift reverts, want %d", st.DriftReverts, b.N)
	})
	reportMemory(b)
}

// BenchmarkFirstSyncVsKubectl applies the same 1,004-object kustomization, in new namespaces
// each round, with a first sync and with `kubectl apply --server-side -k` as the same
// identity against the same API server, alternating, and reports both, their ratio, the
// reconciler's requests per object (and apart, per sync, those not for an object) and the
// slowest round against the median (stalls). A request of the reconciler slower than
// slowRequest is logged, and a sync still running after stallAfter writes every
// goroutine's stack to a temporary file, to find out why it stalls.
func BenchmarkFirstSyncVsKubectl(b *testing.B) {
	const (
		slowRequest = 2 * time.Second
		stallAfter  = 20 * time.Second
	)
	requests := requestCounter{prefix: "bench-vs"}
	client := clientThrough(b, func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		requests.count(req)
		start := time.Now()
		res, err := next.RoundTrip(req)
		if d := time.Since(start); d > slowRequest {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			b.Logf("slow request: %s %s took %v (status %d, err %v)", req.Method, req.URL.Path, d, status, err)
		}
		return res, err
	})
	var driftless, kubectl []time.Duration
	var total, other int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := unique("bench-vs")
		g := newRig(b, name, overFile)
		g.src.Timeout = metav1.Duration{Duration: 5 * time.Minute}
		g.opts.Client = client
		g.commit(withKustomization(benchFiles(name, 0)))
		r := g.reconciler()
		before, beforeOther := requests.load()
		start := time.Now()
		watchdog := time.AfterFunc(stallAfter, func() { dumpGoroutines(b, name) })
		benchSync(b, r)
		watchdog.Stop()
		driftless = append(driftless, time.Since(start))
		after, afterOther := requests.load()
		total, other = total+after-before, other+afterOther-beforeOther

		peer := unique("bench-kubectl")
		dir := b.TempDir()
		for path, content := range withKustomization(benchFiles(peer, 0)) {
			file := filepath.Join(dir, path)
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		start = time.Now()
		if res := cp.Reconciler.Kubectl(context.Background(), "apply", "--server-side", "--field-manager=kubectl-bench", "-k", filepath.Join(dir, "apps")); res.Err != nil {
			b.Fatalf("kubectl apply: %v\n%s", res.Err, res.Combined())
		}
		kubectl = append(kubectl, time.Since(start))
		b.Logf("round %d: driftless %v, kubectl %v", i+1, driftless[i].Round(time.Millisecond), kubectl[i].Round(time.Millisecond))
	}
	d, k := sum(driftless), sum(kubectl)
	b.ReportMetric(d.Seconds()/float64(b.N), "driftless-s")
	b.ReportMetric(k.Seconds()/float64(b.N), "kubectl-s")
	b.ReportMetric(d.Seconds()/k.Seconds(), "ratio")
	b.ReportMetric(float64(total)/float64(b.N)/float64(benchObjects+benchNamespaces), "requests/object")
	b.ReportMetric(float64(other)/float64(b.N), "other-requests/sync")
	b.ReportMetric(slowest(driftless).Seconds()/median(driftless).Seconds(), "driftless-max/median")
	b.ReportMetric(slowest(kubectl).Seconds()/median(kubectl).Seconds(), "kubectl-max/median")
}

// dumpGoroutines writes every goroutine's stack to a new temporary file and logs its name.
func dumpGoroutines(b *testing.B, name string) {
	f, err := os.CreateTemp("", "driftless-stall-"+name+"-*.txt")
	if err != nil {
		b.Logf("stall: %v", err)
		return
	}
	defer f.Close()
	_ = pprof.Lookup("goroutine").WriteTo(f, 2)
	b.Logf("stall: sync of %s still running; goroutines in %s", name, f.Name())
}

// sum adds ds.
func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// median returns the median of ds, the mean of the middle two for an even count.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// slowest returns the longest of ds.
func slowest(ds []time.Duration) time.Duration { return slices.Max(ds) }
