package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/receiver"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/playground"
)

// benchInterval is the polling GitSource's interval; the receiver's is an hour.
const benchInterval = 5 * time.Second

// BenchmarkCommitToApplied measures, on the playground's `driftless run` and the real clock,
// the wall time from a commit on a loopback Git server to the GitSource's
// status.lastAppliedRevision naming it: with a signed push to the receiver after the commit
// (interval 1h), and with polling alone (interval 5s). Each iteration commits a new value of
// one ConfigMap after a random pause of up to one interval, so that commits fall at random
// points of the polling cycle; the pause is not measured. It reports the mean (ms/commit),
// the median and the maximum.
func BenchmarkCommitToApplied(b *testing.B) {
	ctx := b.Context()
	bin := buildDriftless(b)
	var narration bytes.Buffer
	p, err := playground.Start(ctx, playground.Options{Out: &narration, Driftless: bin, Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("start the playground: %v\n%s", err, narration.String())
	}
	b.Cleanup(func() {
		if err := p.Stop(); err != nil {
			b.Errorf("stop the playground: %v", err)
		}
	})
	cp := p.ControlPlane()
	// Self-protection lets only Driftless's own identities and the on-call group change
	// driftless-system; on a cluster the GitSources and the Secret would come from Git and be
	// applied as the reconciler, so the benchmark creates them as the reconciler.
	// The GitSource is read every 25ms: the client must not throttle that.
	cfg := rest.CopyConfig(cp.Admin.Config)
	cfg.QPS, cfg.Burst = 100, 100
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cp.Admin.Config)
	if err != nil {
		b.Fatal(err)
	}
	srv := gitserver.New(b)
	const token = "bench-hook-token"
	secret := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: bench-hook, namespace: %s}
stringData: {%s: %s}
`, v1alpha1.DefaultNamespace, v1alpha1.SecretKeyReceiverToken, token)
	if r := cp.Reconciler.KubectlWith(ctx, []byte(secret), nil, "apply", "-f", "-"); r.Err != nil {
		b.Fatalf("apply the receiver Secret: %v\n%s", r.Err, r.Combined())
	}

	for _, mode := range []struct {
		name     string
		interval string
		push     bool
	}{
		{"receiver", "1h", true},
		{"polling", benchInterval.String(), false},
	} {
		b.Run(mode.name, func(b *testing.B) {
			name := "bench-" + mode.name
			repo := srv.CreateRepo(b, name+".git")
			commit := func(value string) string {
				return repo.Commit(b, "main", gitserver.Change{Files: map[string]string{
					"app/kustomization.yaml": "resources: [namespace.yaml, configmap.yaml]\n",
					"app/namespace.yaml":     fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", name),
					"app/configmap.yaml":     fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\n  namespace: %s\ndata:\n  value: %q\n", name, value),
				}, Message: "value " + value})
			}
			rev := commit("0")
			receiverSpec := ""
			if mode.push {
				receiverSpec = "  receiver: {secretRef: {name: bench-hook}}\n"
			}
			gs := fmt.Sprintf(`apiVersion: driftless.dev/v1alpha1
kind: GitSource
metadata: {name: %s, namespace: %s}
spec:
  url: %s
  path: app
  interval: %s
%s`, name, v1alpha1.DefaultNamespace, srv.RepoURL(name+".git"), mode.interval, receiverSpec)
			if r := cp.Reconciler.KubectlWith(ctx, []byte(gs), nil, "apply", "-f", "-"); r.Err != nil {
				b.Fatalf("apply GitSource %s: %v\n%s", name, r.Err, r.Combined())
			}
			// The first sync runs when the GitSource appears.
			if _, err := waitRevision(ctx, dyn, name, rev, 2*time.Minute); err != nil {
				b.Fatal(err)
			}

			var took []time.Duration
			i := 0
			for b.Loop() {
				i++
				value := strconv.Itoa(i)
				b.StopTimer()
				time.Sleep(rand.N(benchInterval)) // a random phase of the polling cycle
				b.StartTimer()
				start := time.Now()
				rev := commit(value)
				if mode.push {
					pushSigned(b, p.ReceiverAddr(), name, token, rev)
				}
				if _, err := waitRevision(ctx, dyn, name, rev, time.Minute); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				// The revision is applied, not only recorded: the ConfigMap holds the value.
				cm, err := admin.CoreV1().ConfigMaps(name).Get(ctx, "bench", metav1.GetOptions{})
				if err != nil {
					b.Fatalf("get configmap %s/bench: %v", name, err)
				}
				if got := cm.Data["value"]; got != value {
					b.Fatalf("configmap %s/bench value %q after revision %s was applied, want %q", name, got, rev, value)
				}
				b.StartTimer()
			}
			report(b, took)
		})
	}
}

// waitRevision polls the GitSource every 25ms until its status.lastAppliedRevision is
// revision, and returns how long it waited.
func waitRevision(ctx context.Context, dyn dynamic.Interface, name, revision string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var got, ready string
	var lastErr error
	for {
		gs, err := dyn.Resource(v1alpha1.GitSourceGVR).Namespace(v1alpha1.DefaultNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil && ctx.Err() == nil {
			lastErr = err
		}
		if err == nil {
			got, _, _ = unstructured.NestedString(gs.Object, "status", "lastAppliedRevision")
			if got == revision {
				return time.Since(start), nil
			}
			conds, _, _ := unstructured.NestedSlice(gs.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
					ready = fmt.Sprint(m["message"])
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("gitsource %s does not apply %s: revision %q, ready %q, last error %v", name, revision, got, ready, lastErr)
		case <-tick.C:
		}
	}
}

// pushSigned POSTs a GitHub push event for revision to the receiver, signed with token, and
// fails unless it is accepted.
func pushSigned(b *testing.B, addr, source, token, revision string) {
	b.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, revision)
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(body))
	req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, "http://"+addr+receiver.PathPrefix+source, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set(receiver.HeaderGitHub, "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("push to the receiver for %s: %v", source, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("push to the receiver for %s: status %d, want 202", source, resp.StatusCode)
	}
}

// report reports the mean, the median and the maximum of took in milliseconds.
func report(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(sum)/float64(len(took)), "ms/commit")
	b.ReportMetric(ms(took[(len(took)-1)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)-1]), "max-ms")
	b.Logf("commit to applied: %v", took)
}
