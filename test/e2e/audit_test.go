package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/audit"
	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/test/gitserver"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/test/inprocess"
	"github.com/driftless-dev/driftless/webhook"
)

// takeOverWebhook points the API server's webhook configuration at srv, generated from srv's
// configuration, until the test ends; then it points it back at the shared guard.
func takeOverWebhook(t *testing.T, srv *inprocess.Server) {
	t.Helper()
	ctx := t.Context()
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	vwcs := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	orig, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := v1alpha1.Load(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL: ptr.To("https://" + srv.WebhookAddr + webhook.GuardPath), CABundle: srv.CA.PEM,
	})
	vwc.ResourceVersion = orig.ResourceVersion
	if _, err := vwcs.Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is done by now.
		ctx := context.Background()
		cur, err := vwcs.Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
		if err == nil {
			orig.ResourceVersion = cur.ResourceVersion
			_, err = vwcs.Update(ctx, orig, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restore the webhook configuration: %v", err)
		}
		if err := guard.WaitEnforcing(ctx); err != nil {
			t.Error(err)
		}
	})
	// The API server calls srv once srv counts the probe's decision.
	if err := harness.Poll(ctx, time.Minute, func() error {
		before, err := srv.Decisions()
		if err != nil {
			return err
		}
		if err := srv.WaitEnforcing(ctx); err != nil {
			return err
		}
		after, err := srv.Decisions()
		if err != nil {
			return err
		}
		if after["total"] <= before["total"] {
			return fmt.Errorf("the API server does not call the new guard yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

const auditConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
sources:
  - name: %s
    url: %s
    path: apps
    interval: 10h
guard:
  mode: enforce
  protectedNamespaces: [production, prod-bob, prod-admin, prod-reconciler]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
ledger:
  # Longer than the test: what reaches the cluster before the restart is written on shutdown.
  flushInterval: 10m
`

// TestAuditReport: bob's denied edit, alice's break-glass and its revert at expiry are in the
// ledger; after a restart of driftless run, `driftless audit` reports them with the applied
// revision and its author, as JSON, CSV and text.
func TestAuditReport(t *testing.T) {
	ctx := t.Context()
	const (
		source = "audit"
		name   = "audit-config"
		reason = "INC-314: cache stampede"
	)
	admin, err := cp.Admin.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	installConfig(t)
	t.Cleanup(func() {
		ctx := t.Context()
		_ = admin.CoreV1().ConfigMaps("production").Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.CoreV1().ConfigMaps(v1alpha1.DefaultNamespace).Delete(ctx, reconciler.BreakGlassConfigMapName(source), metav1.DeleteOptions{})
		// The source's status and inventory live in its GitSource.
		_ = cp.Reconciler.Kubectl(ctx, "delete", "gitsource", "-n", v1alpha1.DefaultNamespace, source, "--ignore-not-found")
	})
	git := gitserver.New(t)
	repo := git.CreateRepo(t, source+".git")
	author := object.Signature{Name: "Carol Committer", Email: "carol@example.com", When: time.Now()}
	first := repo.Commit(t, gitserver.DefaultBranch, gitserver.Change{
		Message: "Cache settings", Author: author,
		Committer: object.Signature{Name: "Dave Merger", Email: "dave@example.com", When: author.When},
		Files:     map[string]string{"apps/config.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: production\ndata:\n  TTL: \"60\"\n", name)},
	})

	srv, err := inprocess.New(cp, fmt.Sprintf(auditConfig, source, git.RepoURL(source+".git")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	running := true
	t.Cleanup(func() {
		if running {
			_ = srv.Stop()
		}
	})
	waitRevision(t, source, first)
	takeOverWebhook(t, srv)

	// bob edits by hand: denied.
	bobsEdit := time.Now()
	if r := cp.Bob.Kubectl(ctx, "patch", "-n", "production", "configmap/"+name, "--type=merge", "-p", `{"data":{"TTL":"5"}}`); r.Err == nil {
		t.Fatalf("bob's edit was allowed: %s", r.Combined())
	}
	// alice breaks glass and changes the TTL; the expiry reverts it.
	if out, err := driftless(t, cp.Alice, "break-glass", "-n", "production", "configmap/"+name, "--reason", reason, "--for", "1h"); err != nil {
		t.Fatalf("break-glass: %v\n%s", err, out)
	}
	if r := cp.Alice.Kubectl(ctx, "patch", "-n", "production", "configmap/"+name, "--type=merge", "-p", `{"data":{"TTL":"600"}}`); r.Err != nil {
		t.Fatalf("alice's change under break-glass: %s", r.Combined())
	}
	held := waitStatus(t, source, "the object is held back", func(st reconciler.Status) error {
		if len(st.BreakGlass) != 1 || !strings.Contains(st.BreakGlass[0].Patch, `"600"`) {
			return fmt.Errorf("break-glass in status: %+v", st.BreakGlass)
		}
		return nil
	})
	srv.Clock.SetTime(held.BreakGlass[0].Until.Add(time.Second))
	if err := harness.Poll(ctx, time.Minute, func() error {
		_, err := session(t, "ConfigMap production/"+name, reconciler.EndingExpired)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Restart: the buffered records are written on shutdown.
	running = false
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	running = true

	var rep audit.Report
	if err := harness.Poll(ctx, time.Minute, func() error {
		out, err := driftless(t, cp.Alice, "audit", "--since", "720h", "-o", "json")
		if err != nil {
			return fmt.Errorf("audit: %v: %s", err, out)
		}
		rep = audit.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return fmt.Errorf("decode: %v: %s", err, out)
		}
		return checkReport(rep, name, first, reason, bobsEdit)
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("the CSV parses and has the same rows", func(t *testing.T) {
		out, err := driftless(t, cp.Alice, "audit", "--since", "720h", "-o", "csv", "-n", "production")
		if err != nil {
			t.Fatalf("audit: %v\n%s", err, out)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v\n%s", err, out)
		}
		if len(rows) < 2 || rows[0][0] != "section" {
			t.Fatalf("CSV without a header and rows:\n%s", out)
		}
		has := func(section, actor, contains string) bool {
			return slices.ContainsFunc(rows[1:], func(r []string) bool {
				return r[0] == section && strings.HasPrefix(r[2], actor) && strings.Contains(strings.Join(r, ","), contains)
			})
		}
		for _, want := range []struct{ section, actor, contains string }{
			{"denied", "bob", name},
			{"break-glass", "alice", `TTL: "600"`},
			{"revert", "alice", name},
			{"revision", "", first},
		} {
			if !has(want.section, want.actor, want.contains) {
				t.Errorf("no %s row by %q mentioning %q:\n%s", want.section, want.actor, want.contains, out)
			}
		}
	})
	t.Run("text", func(t *testing.T) {
		out, err := driftless(t, cp.Alice, "audit", "--since", "720h")
		if err != nil {
			t.Fatalf("audit: %v\n%s", err, out)
		}
		t.Logf("driftless audit:\n%s", out)
		for _, want := range []string{"Denied attempts", "bob", reason, "Carol Committer", `TTL: "600"`} {
			if !strings.Contains(out, want) {
				t.Errorf("audit does not say %q", want)
			}
		}
	})
	t.Run("a bad format is an error", func(t *testing.T) {
		if out, err := driftless(t, cp.Alice, "audit", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "xml") {
			t.Errorf("audit -o xml: %v\n%s", err, out)
		}
	})
}

// checkReport says what the report lacks of the story.
func checkReport(rep audit.Report, name, commit, reason string, bobsEdit time.Time) error {
	var problems []string
	if !slices.ContainsFunc(rep.Denied, func(r ledger.Record) bool {
		return r.User == "bob" && r.Object.Name == name && r.Object.Namespace == "production" &&
			r.Decision == "denied" && !r.Time.Before(bobsEdit.Add(-time.Minute)) && slices.Equal(r.Fields, []string{"data"})
	}) {
		problems = append(problems, "bob's denied edit (user, object, time, fields)")
	}
	if rep.DeniedByActor["bob"] == 0 {
		problems = append(problems, "bob among the actors")
	}
	if !slices.ContainsFunc(rep.BreakGlass, func(s audit.Session) bool {
		return s.By == "alice" && s.Reason == reason && s.Ending == string(reconciler.EndingExpired) && strings.Contains(s.Patch, `TTL: "600"`) && s.Duration != ""
	}) {
		problems = append(problems, "alice's session with its reason, duration and patch")
	}
	if !slices.ContainsFunc(rep.BreakGlassChanges, func(r ledger.Record) bool {
		return r.User == "alice" && r.Object.Name == name && r.BreakGlass != nil && r.BreakGlass.Reason == reason
	}) {
		problems = append(problems, "alice's change under break-glass")
	}
	if !slices.ContainsFunc(rep.Reverts, func(r ledger.Record) bool {
		return r.Object.Name == name && r.Reason == "BreakGlassExpired" && strings.HasPrefix(r.By, "alice") && slices.Contains(r.Fields, "data")
	}) {
		problems = append(problems, "the revert at expiry")
	}
	if !slices.ContainsFunc(rep.Revisions, func(r audit.Revision) bool {
		return r.Commit == commit && r.Author == "Carol Committer <carol@example.com>" && r.Committer == "Dave Merger <dave@example.com>" &&
			r.Subject == "Cache settings" && !r.AppliedAt.IsZero()
	}) {
		problems = append(problems, "the applied revision with its author and committer")
	}
	if len(problems) > 0 {
		b, _ := json.MarshalIndent(rep, "", "  ")
		return fmt.Errorf("the report lacks %s:\n%s", strings.Join(problems, "; "), b)
	}
	return nil
}

// sinkServer is an HTTPS receiver on a loopback address that can go down and come back.
type sinkServer struct {
	key []byte
	srv *httptest.Server
	// down makes the sink drop every connection as it comes in. It keeps its port while
	// down: giving the port up and binding it again races with anything else on the
	// machine that is handed the same port meanwhile.
	down atomic.Bool

	mu       sync.Mutex
	records  []ledger.Record
	verified int
	forged   int
}

func (s *sinkServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ledger.VerifySignature(s.key, body, r.Header.Get(ledger.SignatureHeader)) {
		s.forged++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n ledger.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.verified++
	s.records = append(s.records, n.Records...)
}

func (s *sinkServer) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Listener = droppingListener{Listener: l, drop: &s.down}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
}

// droppingListener closes every connection it accepts while drop is set.
type droppingListener struct {
	net.Listener
	drop *atomic.Bool
}

func (l droppingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.drop.Load() {
			return c, err
		}
		c.Close()
	}
}

func (s *sinkServer) has(user, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.records, func(r ledger.Record) bool { return r.User == user && r.Object.Name == name })
}

const sinkConfig = `apiVersion: driftless.dev/v1alpha1
kind: DriftlessConfig
guard:
  mode: enforce
  protectedNamespaces: [production, prod-bob, prod-admin, prod-reconciler]
  breakGlass:
    groups: [oncall]
    maxDuration: 2h
ledger:
  flushInterval: 200ms
  sink:
    url: https://%s/hooks/driftless
    keyFile: sink.key
    caFile: sink-ca.crt
    maxBackoff: 500ms
`

// TestLedgerSink: while the sink is down, admission decides as before and the failures show
// in the metrics; once it is back, the records arrive, signed with the configured key.
func TestLedgerSink(t *testing.T) {
	ctx := t.Context()
	applyFixture(t, "production", "sink")
	applyFixture(t, "production", "sinkbg")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sink := &sinkServer{key: key}
	sink.down.Store(true) // down from the start
	sink.start(t)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sink.srv.Certificate().Raw})

	srv, err := inprocess.New(cp, fmt.Sprintf(sinkConfig, sink.srv.Listener.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Dir) })
	for file, data := range map[string][]byte{"sink.key": append(bytes.Clone(key), '\n'), "sink-ca.crt": caPEM} {
		if err := os.WriteFile(filepath.Join(srv.Dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	takeOverWebhook(t, srv)

	decide := func() (bob, alice string) {
		t.Helper()
		r := cp.Bob.Kubectl(ctx, "patch", "-n", "production", "configmap/sink-config", "--type=merge", "-p", `{"data":{"poolSize":"99"}}`)
		if r.Err == nil {
			t.Fatalf("bob's edit was allowed: %s", r.Combined())
		}
		until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		a := cp.Alice.Kubectl(ctx, breakGlass("production", "configmap/sinkbg-config", "INC-9", time.Now().Add(time.Hour))...)
		if a.Err != nil {
			t.Fatalf("alice's break-glass (until %s) was denied: %s", until, a.Combined())
		}
		return denial(r.Combined()), a.Stdout
	}
	// Neither a plain allow nor a server-side dry-run is recorded: they reach the sink before
	// bob's and alice's records if they are, since the sink delivers in order.
	if r := cp.Bob.Kubectl(ctx, "create", "configmap", "-n", "dev-bob", "sink-plain-allow", "--from-literal=a=b"); r.Err != nil {
		t.Fatalf("bob's change in an unprotected namespace: %s", r.Combined())
	}
	t.Cleanup(func() {
		cp.Admin.Kubectl(context.Background(), "delete", "configmap", "-n", "dev-bob", "sink-plain-allow")
	})
	if r := cp.Bob.Kubectl(ctx, "create", "configmap", "-n", "production", "sink-dry-run", "--from-literal=a=b", "--dry-run=server"); r.Err == nil {
		t.Fatalf("bob's dry-run create in production was allowed: %s", r.Combined())
	}
	bobDown, aliceDown := decide()
	if err := harness.Poll(ctx, time.Minute, func() error {
		failed, err := srv.Counter("driftless_ledger_sink_deliveries_total", "outcome")
		if err != nil {
			return err
		}
		if failed["failed"] < 2 {
			return fmt.Errorf("failed deliveries: %v", failed)
		}
		return nil
	}); err != nil {
		t.Fatalf("a dead sink does not show in the metrics: %v", err)
	}

	sink.down.Store(false)
	if err := harness.Poll(ctx, time.Minute, func() error {
		if !sink.has("bob", "sink-config") || !sink.has("alice", "sinkbg-config") {
			return fmt.Errorf("the sink has not received bob's and alice's records yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sink.has("bob", "sink-plain-allow") || sink.has("bob", "sink-dry-run") {
		t.Error("a plain allow or a dry-run request reached the ledger")
	}
	sink.mu.Lock()
	verified, forged := sink.verified, sink.forged
	sink.mu.Unlock()
	if verified == 0 || forged != 0 {
		t.Errorf("deliveries: %d signed with the key, %d not", verified, forged)
	}
	bobUp, aliceUp := decide()
	if bobUp != bobDown || aliceUp != aliceDown {
		t.Errorf("admission answers changed with the sink:\ndown: %q / %q\nup:   %q / %q", bobDown, aliceDown, bobUp, aliceUp)
	}
}
