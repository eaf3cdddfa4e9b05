package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/policy"
	"github.com/driftless-dev/driftless/reconciler"
	"github.com/driftless-dev/driftless/reconciler/source"
	"github.com/driftless-dev/driftless/webhook"
)

// RunOptions configure `driftless run`. The fields below the flags are for embedding the run
// loop in tests and in the playground (test/playground).
type RunOptions struct {
	// Version is the version of the binary, logged at start.
	Version string

	// ConfigPath is the DriftlessConfig file.
	ConfigPath string
	// CertDir holds tls.crt and tls.key for the webhook; rotated files are picked up live.
	CertDir string
	// ClientCAFile names the PEM bundle of CAs whose client certificates the webhook accepts
	// (relative to CertDir unless absolute); only the API server should hold one. Empty
	// accepts any client. Reloaded when it changes.
	ClientCAFile string
	// WebhookAddr is host:port the webhook listens on.
	WebhookAddr string
	// MetricsAddr is host:port of the Prometheus metrics endpoint; "0" disables it.
	MetricsAddr string
	// ProbeAddr is host:port of the /healthz and /readyz endpoints; "0" disables them.
	ProbeAddr string
	// ConfigReloadInterval is how often the configuration file is checked for changes.
	ConfigReloadInterval time.Duration
	// CacheDir holds the Git caches of the sources.
	CacheDir string
	// LeaderElection makes only one replica reconcile; every replica serves the webhook.
	LeaderElection bool
	// ReceiverAddr is host:port of the Git push receiver (every replica); "" or "0" disables
	// it.
	ReceiverAddr string
	// GuardOnly serves the guard without the reconciler, the GitSource controller and the
	// configuration mirror, for tests that run more than one `driftless run` in a cluster
	// without leader election (every one would reconcile every GitSource).
	GuardOnly bool

	// RESTConfig connects to the API server; nil uses the in-cluster or kubeconfig default.
	RESTConfig *rest.Config
	// Clock decides break-glass expiry and paces syncs; nil is the real clock.
	Clock clock.WithDelayedExecution
	// Logger receives every log line; the zero value discards them.
	Logger logr.Logger
}

// Run serves the admission guard on every replica and, on the elected leader, the
// reconcilers of the configured sources, with metrics, health endpoints and configuration
// reloads, until ctx is done.
func Run(ctx context.Context, o RunOptions) error {
	cfg, fingerprint, err := loadConfig(o.ConfigPath)
	if err != nil {
		return err
	}
	// One engine per policy set serves both the reconciler's gate and admission; reloads swap
	// compiled sets atomically and keep the last good one when a policy does not compile.
	sets := policy.NewSets()
	if err := sets.Load(ctx, cfg); err != nil {
		return err
	}
	log := o.Logger
	ctrl.SetLogger(log)
	restConfig := o.RESTConfig
	if restConfig == nil {
		if restConfig, err = defaultRESTConfig(); err != nil {
			return fmt.Errorf("connect to the API server: %w", err)
		}
	}
	host, port, err := splitHostPort(o.WebhookAddr)
	if err != nil {
		return fmt.Errorf("--webhook-addr: %w", err)
	}

	metrics, err := webhook.NewMetrics(crmetrics.Registry)
	if err != nil {
		return fmt.Errorf("register guard metrics: %w", err)
	}
	server, err := webhook.NewServer(webhook.ServerOptions{
		Host: host, Port: port, CertDir: o.CertDir, ClientCAFile: o.ClientCAFile,
		Metrics: metrics, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		// Only the GitSources in Driftless's own namespace are sources (docs/sources.md).
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.GitSource{}: {Namespaces: map[string]cache.Config{cfg.Reconciler.ServiceAccount.Namespace: {}}},
		}},
		Logger: log,
		// Runnables (the reconcilers) take their logger from the context.
		BaseContext:            func() context.Context { return logr.NewContext(context.Background(), log) },
		Metrics:                metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress: o.ProbeAddr,
		LeaderElection:         o.LeaderElection,
		LeaderElectionID:       "driftless-reconciler",
		// The reconciler's own namespace: the guard never protects it.
		LeaderElectionNamespace:       cfg.Reconciler.ServiceAccount.Namespace,
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 server,
	})
	if err != nil {
		return fmt.Errorf("set up manager: %w", err)
	}
	// GetWebhookServer adds the server to the manager's runnables.
	mgr.GetWebhookServer()
	meta, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	objects, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	led, err := ledger.NewForManager(mgr, cfg, o.Clock, crmetrics.Registry)
	if err != nil {
		return err
	}
	guard, err := webhook.NewGuard(webhook.Options{
		Config:   cfg,
		Clock:    o.Clock,
		Metrics:  metrics,
		Recorder: mgr.GetEventRecorder("driftless-guard"),
		Parents:  webhook.ClientReader{MetadataParentReader: webhook.MetadataParentReader{Client: meta}, Dynamic: objects},
		Policy:   sets,
		Ledger:   led,
		Sources:  gitSourceLocator{reader: mgr.GetClient(), namespace: cfg.Reconciler.ServiceAccount.Namespace},
	})
	if err != nil {
		return err
	}
	server.Register(webhook.GuardPath, webhook.NewReviewHandler(guard))

	var (
		set        *reconciler.Set
		controller *reconciler.GitSourceController
		mirror     *reconciler.ConfigMirror
	)
	if !o.GuardOnly {
		if set, controller, mirror, err = addReconcilers(mgr, cfg, o, Gate(sets), led); err != nil {
			return err
		}
	}
	if o.ConfigReloadInterval > 0 {
		reloads, err := newReloadsMetric(crmetrics.Registry)
		if err != nil {
			return fmt.Errorf("register config metrics: %w", err)
		}
		// A reload reaches every part or none: what fails to load leaves all of them on the
		// last good configuration. Sources are checked first, as they are the only part
		// that can fail after the policies compiled.
		apply := func(ctx context.Context, c *v1alpha1.DriftlessConfig) error {
			if errs := v1alpha1.Validate(c); len(errs) > 0 {
				return errs.ToAggregate()
			}
			if err := sets.Load(ctx, c); err != nil {
				return err
			}
			if err := guard.SetConfig(c); err != nil {
				return err
			}
			if set == nil {
				return nil
			}
			if err := set.SetConfig(c); err != nil {
				return err
			}
			controller.SetConfig(c)
			return mirror.SetConfig(c)
		}
		reloader := &configReloader{path: o.ConfigPath, interval: o.ConfigReloadInterval, last: fingerprint, apply: apply, log: log.WithName("config"), reloads: reloads}
		if err := mgr.Add(reloader); err != nil {
			return fmt.Errorf("add config reloader: %w", err)
		}
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if o.Clock != nil {
		clk = o.Clock
	}
	if err := addReceiver(mgr, o.ReceiverAddr, cfg.Reconciler.ServiceAccount.Namespace, clk, log); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	log.Info("starting driftless", "version", o.Version, "mode", cfg.Guard.Mode, "webhook", o.WebhookAddr, "config", o.ConfigPath)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// addReconcilers adds the set of the sources' reconcilers, the controller of the GitSources
// that feeds it, and the mirror of the configuration file's (deprecated) sources into
// GitSources to the manager; they run on the elected leader only. The set and the controller
// follow configuration reloads (the break-glass maximum, policy sets), the mirror the sources.
func addReconcilers(mgr ctrl.Manager, cfg *v1alpha1.DriftlessConfig, o RunOptions, gate reconciler.Gate, led *ledger.Ledger) (*reconciler.Set, *reconciler.GitSourceController, *reconciler.ConfigMirror, error) {
	if !filepath.IsAbs(o.CacheDir) {
		return nil, nil, nil, fmt.Errorf("--cache-dir %q: must be an absolute directory", o.CacheDir)
	}
	dyn, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dynamic client: %w", err)
	}
	metrics, err := reconciler.NewMetrics(crmetrics.Registry)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("register reconciler metrics: %w", err)
	}
	var clk clock.WithDelayedExecution = clock.RealClock{}
	if o.Clock != nil {
		clk = o.Clock
	}
	recorder := mgr.GetEventRecorder("driftless-reconciler")
	set, err := reconciler.NewSet(cfg, reconciler.Options{
		Client:    dyn,
		Mapper:    mgr.GetRESTMapper(),
		Fetcher:   source.NewGitFetcher(),
		CacheDir:  o.CacheDir,
		Recorder:  recorder,
		Gate:      gate,
		Clock:     clk,
		Metrics:   metrics,
		Namespace: cfg.Reconciler.ServiceAccount.Namespace,
		Ledger:    led,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := mgr.Add(set); err != nil {
		return nil, nil, nil, fmt.Errorf("add reconcilers: %w", err)
	}
	controller, err := reconciler.NewGitSourceController(reconciler.ControllerOptions{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Set: set, Config: cfg,
		CacheDir: o.CacheDir, Clock: clk, Recorder: recorder,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := controller.SetupWithManager(mgr); err != nil {
		return nil, nil, nil, fmt.Errorf("add gitsource controller: %w", err)
	}
	mirror := reconciler.NewConfigMirror(dyn, cfg)
	if err := mgr.Add(mirror); err != nil {
		return nil, nil, nil, fmt.Errorf("add config mirror: %w", err)
	}
	return set, controller, mirror, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, errors.New("port must be a number from 1 to 65535")
	}
	return host, port, nil
}

// defaultRESTConfig returns the configuration `driftless run` connects with when none is
// given: KUBECONFIG or ~/.kube/config when there is one, else the pod's service account. It
// logs nothing, unlike controller-runtime's GetConfig, which logs a failed in-cluster attempt
// as an error with a stack trace before returning the error.
func defaultRESTConfig() (*rest.Config, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("not in a cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig (KUBECONFIG, ~/.kube/config)")
	}
	return cfg, err
}
