package install

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

const (
	// leaderSource is the source both replicas in TestLeaderElection are configured with.
	leaderSource = "leader"
	// leaderNamespace is where that source applies its ConfigMap; Git creates it.
	leaderNamespace = "leader-election"
	// leaseName is the Lease `driftless run --leader-elect` holds in the reconciler's namespace.
	leaseName = "driftless-reconciler"
)

// buildDriftless builds the real driftless binary.
func buildDriftless(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "driftless")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/driftless")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replica is one `driftless run` process with its own ports, serving certificate and Git cache,
// authenticated as the reconciler's service account.
type replica struct {
	name                                 string
	webhookAddr, metricsAddr, healthAddr string
	ca                                   *harness.CA
	cmd                                  *exec.Cmd
	logPath                              string
	// exited is closed when the process has exited, with its error in err.
	exited chan struct{}
	err    error
}

// startReplica starts `driftless run --leader-elect=true` with the configuration file config.
// Cleanup stops it with SIGTERM, so that it releases the Lease, and kills it if it does not
// exit; a failed test gets the end of its log.
func startReplica(t *testing.T, bin, config, name string) *replica {
	t.Helper()
	dir := t.TempDir()
	ca, err := harness.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := ca.WriteServingCert(certDir, 2, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	r := &replica{
		name:        name,
		webhookAddr: freeAddr(t),
		metricsAddr: freeAddr(t),
		healthAddr:  freeAddr(t),
		ca:          ca,
		logPath:     filepath.Join(dir, "driftless.log"),
		exited:      make(chan struct{}),
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "run",
		"--config", config,
		"--cert-dir", certDir,
		"--webhook-addr", r.webhookAddr,
		"--metrics-addr", r.metricsAddr,
		"--health-addr", r.healthAddr,
		"--cache-dir", filepath.Join(dir, "cache"),
		"--leader-elect=true",
		"--log-development",
	)
	// driftless run connects like any controller-runtime manager: KUBECONFIG outside a pod.
	r.cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Reconciler.Kubeconfig)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		logFile.Close()
		close(r.exited)
	}()
	t.Cleanup(func() {
		if err := r.stop(10 * time.Second); err != nil {
			t.Logf("%s: %v", name, err)
		}
		if t.Failed() {
			log, _ := os.ReadFile(r.logPath)
			if len(log) > 8000 {
				log = log[len(log)-8000:]
			}
			t.Logf("end of %s's log:\n%s", name, log)
		}
	})
	return r
}

// stop sends SIGTERM and waits up to grace for the process to exit, then kills it. It returns
// the process's exit error, or that it had to be killed.
func (r *replica) stop(grace time.Duration) error {
	select {
	case <-r.exited:
		return r.err
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	select {
	case <-r.exited:
		return r.err
	case <-time.After(grace):
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	return fmt.Errorf("did not exit within %s of SIGTERM; killed", grace)
}

// running fails when the process has exited.
func (r *replica) running() error {
	select {
	case <-r.exited:
		return fmt.Errorf("%s exited: %v", r.name, r.err)
	default:
		return nil
	}
}

// ready reports whether /readyz answers 200.
func (r *replica) ready() error {
	if err := r.running(); err != nil {
		return err
	}
	resp, err := http.Get("http://" + r.healthAddr + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /readyz: %s", r.name, resp.Status)
	}
	return nil
}

// metric scrapes the replica's metrics endpoint and sums the counters or gauges called name
// whose labels include every pair of labels (name, value, name, value, ...). A metric the
// replica never recorded is 0.
func (r *replica) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + r.metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s metrics: %w", r.name, err)
	}
	var sum float64
next:
	for _, m := range families[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum, nil
}

// state is what a replica reports about leadership and syncs of the source.
func (r *replica) state() (leader bool, syncs float64, err error) {
	master, err := r.metric("leader_election_master_status", "name", leaseName)
	if err != nil {
		return false, 0, err
	}
	syncs, err = r.metric("driftless_reconciler_syncs_total", "source", leaderSource)
	return master == 1, syncs, err
}

// bobUpdatesProductionConfigMap is the AdmissionReview the API server sends when bob edits a
// ConfigMap in the protected namespace production.
const bobUpdatesProductionConfigMap = `{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": "5e6f1a7c-0d1b-4c2a-9a43-1f0d2b3c4d5e",
    "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    "resource": {"group": "", "version": "v1", "resource": "configmaps"},
    "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
    "name": "payment-gateway-config",
    "namespace": "production",
    "operation": "UPDATE",
    "userInfo": {"username": "bob", "groups": ["developers", "system:authenticated"]},
    "object": {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "payment-gateway-config", "namespace": "production", "resourceVersion": "42"},
      "data": {"POOL_SIZE": "20"}},
    "oldObject": {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "payment-gateway-config", "namespace": "production", "resourceVersion": "42"},
      "data": {"POOL_SIZE": "10"}},
    "dryRun": false,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
  }
}`

// review posts an AdmissionReview to the replica's guard over TLS, trusting only the
// replica's CA, as the API server does.
func (r *replica) review(ctx context.Context, body string) (*admissionv1.AdmissionResponse, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.ca.PEM)
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+r.webhookAddr+webhook.GuardPath, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, out)
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&review); err != nil {
		return nil, fmt.Errorf("decode %s: %w", out, err)
	}
	if review.Response == nil {
		return nil, fmt.Errorf("no response in %s", out)
	}
	return review.Response, nil
}

// TestLeaderElection runs two replicas of the real driftless binary with leader election, as
// config/manager's Deployment does: both serve the guard, only the holder of the Lease
// reconciles, and when the leader stops the other takes over and syncs.
func TestLeaderElection(t *testing.T) {
	ctx := t.Context()
	bin := buildDriftless(t)
	ensureNamespace(t, driftlessNamespace)
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	leases := admin.CoordinationV1().Leases(driftlessNamespace)
	holder := func() (string, error) {
		l, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return "", errors.New("the lease has no holder")
		}
		return *l.Spec.HolderIdentity, nil
	}

	git := gitserver.New(t)
	repo := git.CreateRepo(t, "leader.git")
	configMap := func(poolSize string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: " + leaderNamespace + "}\ndata: {POOL_SIZE: \"" + poolSize + "\"}\n"
	}
	first := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{Message: "Pool size 10", Files: map[string]string{
		"apps/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + leaderNamespace + "}\n",
		"apps/settings.yaml":  configMap("10"),
	}})
	// The interval is far longer than the test: every sync below is the first one of a
	// replica that just became leader.
	configPath := filepath.Join(t.TempDir(), "driftless.yaml")
	if err := os.WriteFile(configPath, []byte(sourceConfig(t, leaderSource, git.RepoURL("leader.git"), "apps", "10m")), 0o600); err != nil {
		t.Fatal(err)
	}
	// Runs after both replicas have stopped (cleanups run last first).
	t.Cleanup(func() {
		ctx := context.Background()
		if err := leases.Delete(ctx, leaseName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete the lease: %v", err)
		}
		if r := cp.Admin.Kubectl(ctx, "delete", "namespace", leaderNamespace, "--ignore-not-found", "--wait=false"); r.Err != nil {
			t.Errorf("delete namespace %s: %v\n%s", leaderNamespace, r.Err, r.Combined())
		}
		if r := cp.Reconciler.Kubectl(ctx, "delete", "gitsource", "-n", driftlessNamespace, "--ignore-not-found", leaderSource); r.Err != nil {
			t.Errorf("delete the source's status: %v\n%s", r.Err, r.Combined())
		}
	})

	replicas := []*replica{startReplica(t, bin, configPath, "replica-a"), startReplica(t, bin, configPath, "replica-b")}
	for _, r := range replicas {
		if err := harness.Poll(ctx, time.Minute, r.ready); err != nil {
			t.Fatal(err)
		}
	}

	// One replica becomes leader and syncs; which one is up to the election.
	var leader, follower *replica
	err = harness.Poll(ctx, time.Minute, func() error {
		leader, follower = nil, nil
		for _, r := range replicas {
			if err := r.running(); err != nil {
				return err
			}
			isLeader, syncs, err := r.state()
			if err != nil {
				return err
			}
			switch {
			case isLeader && syncs > 0 && leader == nil:
				leader = r
			case isLeader && syncs > 0:
				return fmt.Errorf("both %s and %s lead", leader.name, r.name)
			default:
				follower = r
			}
		}
		if leader == nil || follower == nil {
			return errors.New("no replica leads and has synced yet")
		}
		if _, err := holder(); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitApplied(ctx, leaderSource, first); err != nil {
		t.Fatal(err)
	}
	firstHolder, err := holder()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s leads as %s", leader.name, firstHolder)

	t.Run("only the leader reconciles", func(t *testing.T) {
		for _, r := range replicas {
			isLeader, syncs, err := r.state()
			if err != nil {
				t.Fatal(err)
			}
			if r == leader && (!isLeader || syncs < 1) {
				t.Errorf("leader %s: leader_election_master_status %v, %v syncs of %s", r.name, isLeader, syncs, leaderSource)
			}
			if r == follower && (isLeader || syncs != 0) {
				t.Errorf("follower %s: leader_election_master_status %v, %v syncs of %s; want not leading and no syncs", r.name, isLeader, syncs, leaderSource)
			}
		}
		cm, err := admin.CoreV1().ConfigMaps(leaderNamespace).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Labels[v1alpha1.LabelSource] != leaderSource || cm.Annotations[v1alpha1.AnnotationRevision] != first {
			t.Errorf("ConfigMap %s/settings: labels %v, annotations %v; want it applied from %s at %s", leaderNamespace, cm.Labels, cm.Annotations, leaderSource, first)
		}
	})

	for _, r := range replicas {
		t.Run(r.name+" serves the guard", func(t *testing.T) {
			if err := r.ready(); err != nil {
				t.Fatal(err)
			}
			before, err := r.metric("driftless_guard_decisions_total", "result", string(webhook.ResultDenied))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := r.review(ctx, bobUpdatesProductionConfigMap)
			if err != nil {
				t.Fatal(err)
			}
			if resp.UID != "5e6f1a7c-0d1b-4c2a-9a43-1f0d2b3c4d5e" || resp.Allowed {
				t.Errorf("response uid %s, allowed %v; want the request's uid, denied", resp.UID, resp.Allowed)
			}
			if resp.Result == nil || !strings.HasPrefix(resp.Result.Message, "driftless: bob may not update configmaps/payment-gateway-config in namespace production: ") {
				t.Errorf("denial: %+v", resp.Result)
			}
			after, err := r.metric("driftless_guard_decisions_total", "result", string(webhook.ResultDenied))
			if err != nil {
				t.Fatal(err)
			}
			if after != before+1 {
				t.Errorf("driftless_guard_decisions_total{result=%q} went from %v to %v, want one more", webhook.ResultDenied, before, after)
			}
		})
	}

	t.Run("the other replica takes over when the leader stops", func(t *testing.T) {
		// Committed while the leader runs; with the interval far off, only a new leader's
		// first sync applies it.
		second := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{Message: "Pool size 20", Files: map[string]string{
			"apps/settings.yaml": configMap("20"),
		}})
		stopped := time.Now()
		if err := leader.stop(30 * time.Second); err != nil {
			t.Fatalf("%s on SIGTERM: %v", leader.name, err)
		}
		err := harness.Poll(ctx, 2*time.Minute, func() error {
			if err := follower.running(); err != nil {
				return err
			}
			h, err := holder()
			if err != nil {
				return err
			}
			if h == firstHolder {
				return fmt.Errorf("%s still holds the lease", h)
			}
			isLeader, syncs, err := follower.state()
			if err != nil {
				return err
			}
			if !isLeader || syncs < 1 {
				return fmt.Errorf("%s: leader_election_master_status %v, %v syncs of %s", follower.name, isLeader, syncs, leaderSource)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := waitApplied(ctx, leaderSource, second); err != nil {
			t.Fatalf("the new leader does not apply the new commit: %v", err)
		}
		cm, err := admin.CoreV1().ConfigMaps(leaderNamespace).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["POOL_SIZE"] != "20" {
			t.Errorf("ConfigMap %s/settings: POOL_SIZE %q, want 20", leaderNamespace, cm.Data["POOL_SIZE"])
		}
		t.Logf("%s took over and applied %s %s after the leader was stopped", follower.name, second, time.Since(stopped).Round(100*time.Millisecond))
	})
}
