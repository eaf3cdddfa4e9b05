// Package inprocess runs `driftless run` inside a test process against a test control plane:
// the same server.Run the binary calls, with a fake clock, its own serving certificates, a
// configuration file the test can rewrite, and the generated webhook configuration installed.
package inprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/server"
	"github.com/driftless-dev/driftless/test/harness"
	"github.com/driftless-dev/driftless/webhook"
)

// Server is `driftless run` started in this process against the test control plane, with
// a fake clock for break-glass expiry and a webhook configuration pointing at it.
type Server struct {
	cp         *harness.ControlPlane
	Dir        string
	ConfigPath string
	CertDir    string
	// ClientCAFile, in CertDir, holds the CA of the API server's webhook client certificate:
	// the guard lets in the API server and no one else.
	ClientCAFile string
	WebhookAddr  string
	MetricsAddr  string
	ProbeAddr    string
	// ReceiverAddr is where the Git push receiver listens.
	ReceiverAddr string
	// Clock is the fake clock break-glass expiry runs on; nil with Options.RealClock.
	Clock     *clocktesting.FakeClock
	CA        *harness.CA
	logger    logr.Logger
	guardOnly bool
	cancel    context.CancelFunc
	done      chan error
	// started is set once Start has succeeded: from then on the addresses are in use (in an
	// installed webhook configuration, say) and a restart keeps them.
	started bool
}

// Options change how New sets the server up; the zero value is what the end-to-end suites use.
type Options struct {
	// Dir holds the configuration file, the serving certificates and the Git caches; empty
	// makes a new temporary directory.
	Dir string
	// RealClock runs break-glass expiry and syncs on the real clock; otherwise Clock is a fake
	// clock the test advances.
	RealClock bool
	// Logger receives the server's log. When it has no sink, the log goes to stderr if
	// DRIFTLESS_E2E_LOGS is set and is discarded otherwise.
	Logger logr.Logger
	// GuardOnly runs the guard without the reconciler (server.RunOptions.GuardOnly), so that
	// the tests' own servers are the only ones that reconcile GitSources.
	GuardOnly bool
}

// New prepares `driftless run` for cp with the configuration config, a fake clock and a
// temporary directory: free addresses, a serving certificate for 127.0.0.1 and the client CA
// of cp's API server. Start runs it.
func New(cp *harness.ControlPlane, config string) (*Server, error) {
	return NewWithOptions(cp, config, Options{})
}

// NewWithOptions prepares `driftless run` with the configuration config as o says; Start runs
// it.
func NewWithOptions(cp *harness.ControlPlane, config string, o Options) (*Server, error) {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "driftless-guard-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &Server{
		cp: cp, Dir: dir,
		ConfigPath: filepath.Join(dir, "config.yaml"),
		CertDir:    filepath.Join(dir, "certs"),
		logger:     o.Logger,
		guardOnly:  o.GuardOnly,
	}
	if !o.RealClock {
		g.Clock = clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	}
	if err := g.pickAddrs(); err != nil {
		return nil, err
	}
	var err error
	if g.CA, err = harness.NewCA(); err != nil {
		return nil, err
	}
	if err := g.CA.WriteServingCert(g.CertDir, 2, "127.0.0.1"); err != nil {
		return nil, err
	}
	g.ClientCAFile = filepath.Join(g.CertDir, "client-ca.crt")
	if err := os.WriteFile(g.ClientCAFile, cp.WebhookClientCA.PEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.ConfigPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	return g, nil
}

// pickAddrs picks a free loopback address for each of the server's listeners.
func (g *Server) pickAddrs() error {
	for _, a := range []*string{&g.WebhookAddr, &g.MetricsAddr, &g.ProbeAddr, &g.ReceiverAddr} {
		var err error
		if *a, err = harness.FreeAddr(); err != nil {
			return err
		}
	}
	return nil
}

// startAttempts bounds how often a first Start picks new addresses because one it picked was
// taken in the meantime.
const startAttempts = 3

// Start runs the guard until stop and waits until it is ready. A port that was free when New
// picked it can be taken before the server listens on it (by another test's server, or as the
// local end of some connection); the first Start then picks new addresses and tries again.
func (g *Server) Start() error {
	for attempt := 1; ; attempt++ {
		err := g.start()
		if err == nil {
			g.started = true
			return nil
		}
		if g.started || attempt == startAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		// server.Run has exited; its error is back in done.
		g.cancel()
		<-g.done
		g.cancel = nil
		if err := g.pickAddrs(); err != nil {
			return err
		}
	}
}

// start runs server.Run once and waits until it is ready or has exited.
func (g *Server) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan error, 1)
	logger := g.logger
	if logger.GetSink() == nil {
		logger = logr.Discard()
		if os.Getenv("DRIFTLESS_E2E_LOGS") != "" {
			logger = zap.New(zap.WriteTo(os.Stderr))
		}
	}
	opts := server.RunOptions{
		ConfigPath:           g.ConfigPath,
		CertDir:              g.CertDir,
		ClientCAFile:         g.ClientCAFile,
		WebhookAddr:          g.WebhookAddr,
		MetricsAddr:          g.MetricsAddr,
		ProbeAddr:            g.ProbeAddr,
		ReceiverAddr:         g.ReceiverAddr,
		ConfigReloadInterval: 100 * time.Millisecond,
		CacheDir:             filepath.Join(g.Dir, "cache"),
		RESTConfig:           g.cp.Reconciler.Config,
		Logger:               logger,
		GuardOnly:            g.guardOnly,
	}
	// A nil *FakeClock in the interface would not be the real clock.
	if g.Clock != nil {
		opts.Clock = g.Clock
	}
	go func() { g.done <- server.Run(ctx, opts) }()
	return harness.WaitReady(ctx, "http://"+g.ProbeAddr+"/readyz", func() error {
		select {
		case err := <-g.done:
			g.done <- err
			return fmt.Errorf("driftless run exited: %w", err)
		default:
			return nil
		}
	})
}

// Stop stops the guard and waits for it to exit; it does nothing before Start.
func (g *Server) Stop() error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	return <-g.done
}

// Install creates the webhook configuration generated from the guard's configuration and waits
// until the API server calls the guard.
func (g *Server) Install(ctx context.Context) error {
	cfg, err := v1alpha1.Load(g.ConfigPath)
	if err != nil {
		return err
	}
	vwc := webhook.WebhookConfiguration(cfg, admissionregistrationv1.WebhookClientConfig{
		URL:      ptr.To("https://" + g.WebhookAddr + webhook.GuardPath),
		CABundle: g.CA.PEM,
	})
	admin, err := g.cp.Admin.Clientset()
	if err != nil {
		return err
	}
	if _, err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create webhook configuration: %w", err)
	}
	return g.WaitEnforcing(ctx)
}

// WaitEnforcing waits until a dry-run create by bob in the production namespace is denied.
func (g *Server) WaitEnforcing(ctx context.Context) error {
	bob, err := g.cp.Bob.Clientset()
	if err != nil {
		return err
	}
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "guard-probe", Namespace: "production"}}
	return harness.Poll(ctx, time.Minute, func() error {
		_, err := bob.CoreV1().ConfigMaps("production").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "driftless:") {
			return nil
		}
		return fmt.Errorf("guard not enforcing yet: %v", err)
	})
}

// SetConfig rewrites the configuration file and waits until the running guard applies it,
// observed through check.
func (g *Server) SetConfig(ctx context.Context, config string, check func() error) error {
	if err := harness.WriteFileAtomic(g.ConfigPath, []byte(config), 0o600); err != nil {
		return err
	}
	return harness.Poll(ctx, 30*time.Second, check)
}

// Decisions scrapes the guard's metrics endpoint and returns driftless_guard_decisions_total
// by "result/reason", with the sum under "total".
func (g *Server) Decisions() (map[string]float64, error) {
	return g.Counter("driftless_guard_decisions_total", "result", "reason")
}

// Counter scrapes the metrics endpoint and returns the counter by its label values joined
// with "/", with the sum under "total".
func (g *Server) Counter(name string, labels ...string) (map[string]float64, error) {
	resp, err := http.Get("http://" + g.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{"total": 0}
	for _, m := range families[name].GetMetric() {
		values := make([]string, len(labels))
		for _, l := range m.GetLabel() {
			if i := slices.Index(labels, l.GetName()); i >= 0 {
				values[i] = l.GetValue()
			}
		}
		v := m.GetCounter().GetValue()
		out[strings.Join(values, "/")] += v
		out["total"] += v
	}
	return out, nil
}

// ServingSerial returns the serial number of the certificate the webhook presents.
func (g *Server) ServingSerial() (int64, error) {
	client, err := g.cp.WebhookClientTLS()
	if err != nil {
		return 0, err
	}
	conn, err := tls.Dial("tcp", g.WebhookAddr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}}) //nolint:gosec // reads the serial only
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return 0, errors.New("no peer certificate")
	}
	return certs[0].SerialNumber.Int64(), nil
}
