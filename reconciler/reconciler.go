package reconciler

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/driftless-dev/driftless/config/v1alpha1"
	"github.com/driftless-dev/driftless/internal/ledger"
	"github.com/driftless-dev/driftless/reconciler/source"
)

// Options are the dependencies and settings shared by the reconcilers of all sources.
type Options struct {
	// Client reads and writes every kind of object. Required.
	Client dynamic.Interface
	// Mapper maps kinds to resources. It must discover kinds added by CRDs after it was made,
	// as controller-runtime's dynamic RESTMapper does. Required.
	Mapper meta.RESTMapper
	// Fetcher fetches Git sources. Required.
	Fetcher source.Fetcher
	// CacheDir is an absolute directory for Git caches; each source uses a subdirectory named
	// after it. Required.
	CacheDir string
	// Recorder records Events about syncs, drift reverts and break-glass. Nil records none.
	Recorder events.EventRecorder
	// Gate checks every revision against its source's policy set. Nil checks nothing.
	Gate Gate
	// Clock decides break-glass expiry and paces syncs. Nil is the real clock.
	Clock clock.WithDelayedExecution
	// Metrics receive sync results, applied and pruned objects, drift reverts and active
	// break-glass. Nil records none.
	Metrics *Metrics
	// Namespace holds the status and inventory ConfigMaps. Defaults to driftless-system.
	Namespace string
	// BreakGlassMaxDuration is the longest break-glass honoured, as configured for the guard.
	// Defaults to four hours.
	BreakGlassMaxDuration time.Duration
	// BreakGlassRetention is how long the record of an ended break-glass session is kept, as
	// configured in guard.breakGlass.retention. Defaults to 90 days.
	BreakGlassRetention time.Duration
	// TakeoverManagers are prefixes of field manager names whose fields the reconciler takes
	// over so that its apply removes what Git does not declare. Defaults to
	// [DefaultTakeoverManagers].
	TakeoverManagers []string
	// Concurrency bounds the requests one sync has in flight. Defaults to 16.
	Concurrency int
	// Ledger durably records drift reverts, break-glass session ends and applied revisions.
	// Nil records none.
	Ledger *ledger.Ledger
}

// Reconciler keeps the objects of one source as its Git ref declares them. Make one with
// [New] or [NewForConfig]; run it with [Reconciler.Start], or drive it with
// [Reconciler.Sync]. Its methods are safe for concurrent use.
type Reconciler struct {
	src       v1alpha1.Source
	spec      source.Spec
	client    dynamic.Interface
	mapper    meta.RESTMapper
	fetcher   source.Fetcher
	recorder  events.EventRecorder
	ledger    *ledger.Ledger
	gate      Gate
	clock     clock.WithDelayedExecution
	metrics   *Metrics
	namespace string
	// maxBG is the longest break-glass honoured, in nanoseconds; a configuration reload
	// changes it while the reconciler runs, as it changes the guard's.
	maxBG       atomic.Int64
	takeover    takeover
	concurrency int
	// retention is how long an ended break-glass session stays in the record.
	retention time.Duration

	// syncMu serializes syncs: one fetch and render at a time in the source's cache.
	syncMu sync.Mutex
	// mu guards the fields below. A sync holds it only to plan, apply and prune, so that a
	// heal never waits behind a fetch or a render.
	mu sync.Mutex
	// loaded is true once the inventory and status were read from the cluster.
	loaded bool
	inv    *inventory
	// desired holds the objects of the last applied revision, for healing.
	desired  map[objKey]*object
	failures int
	status   Status
	bg       map[objKey]BreakGlassObject
	timers   map[objKey]expiryTimer
	// sessions are the open break-glass sessions, history the ended ones still kept; both
	// are written to the break-glass record when sessionsDirty.
	sessions      map[objKey]*storedSession
	history       []storedSession
	sessionsDirty bool
	watch         *watcher

	// written holds the resource versions the reconciler's own writes produced, so that the
	// watch events they cause are not taken for drift, and verified the resource version at
	// which each object last matched its desired state. They have their own lock because
	// applies run in parallel.
	writtenMu sync.Mutex
	written   map[objKey][]string
	verified  map[objKey]verification
}

// expiryTimer fires when a break-glass expires.
type expiryTimer struct {
	until time.Time
	timer clock.Timer
}

// New returns the reconciler of one source. The source is defaulted as configuration
// loading does.
func New(src v1alpha1.Source, opts Options) (*Reconciler, error) {
	var errs []error
	if src.Name == "" {
		errs = append(errs, errors.New("source name must be set"))
	}
	if opts.Client == nil {
		errs = append(errs, errors.New("options: client is required"))
	}
	if opts.Mapper == nil {
		errs = append(errs, errors.New("options: mapper is required"))
	}
	if opts.Fetcher == nil {
		errs = append(errs, errors.New("options: fetcher is required"))
	}
	if !filepath.IsAbs(opts.CacheDir) {
		errs = append(errs, fmt.Errorf("options: cacheDir %q must be an absolute path", opts.CacheDir))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("reconciler for source %q: %w", src.Name, errors.Join(errs...))
	}
	if src.Ref == (v1alpha1.GitRef{}) {
		src.Ref.Branch = v1alpha1.DefaultBranch
	}
	if src.Path == "" {
		src.Path = "."
	}
	if src.Interval.Duration <= 0 {
		src.Interval.Duration = v1alpha1.DefaultInterval
	}
	if src.Timeout.Duration <= 0 {
		src.Timeout.Duration = v1alpha1.DefaultTimeout
	}
	v1alpha1.SetLimitsDefaults(&src.Limits)
	r := &Reconciler{
		src:         src,
		spec:        specFor(src, filepath.Join(opts.CacheDir, src.Name)),
		client:      opts.Client,
		mapper:      opts.Mapper,
		fetcher:     opts.Fetcher,
		recorder:    opts.Recorder,
		ledger:      opts.Ledger,
		gate:        opts.Gate,
		clock:       opts.Clock,
		metrics:     opts.Metrics,
		namespace:   opts.Namespace,
		takeover:    takeover{prefixes: opts.TakeoverManagers, sessions: &sessionStarts{}},
		concurrency: opts.Concurrency,
		retention:   opts.BreakGlassRetention,
		sessions:    map[objKey]*storedSession{},
		inv:         &inventory{},
		desired:     map[objKey]*object{},
		bg:          map[objKey]BreakGlassObject{},
		timers:      map[objKey]expiryTimer{},
		written:     map[objKey][]string{},
		verified:    map[objKey]verification{},
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if r.namespace == "" {
		r.namespace = v1alpha1.DefaultNamespace
	}
	r.SetBreakGlassMaxDuration(opts.BreakGlassMaxDuration)
	if r.takeover.prefixes == nil {
		r.takeover.prefixes = DefaultTakeoverManagers
	}
	if r.concurrency <= 0 {
		r.concurrency = 16
	}
	if r.retention <= 0 {
		r.retention = v1alpha1.DefaultBreakGlassRetention
	}
	r.status = Status{Source: src.Name, URL: source.RedactURL(src.URL), Ref: r.spec.Ref.String(), Path: src.Path}
	return r, nil
}

// NewForConfig returns a reconciler for every source of cfg. The status namespace, the
// break-glass maximum and the break-glass record's retention come from cfg unless opts sets
// them.
func NewForConfig(cfg *v1alpha1.DriftlessConfig, opts Options) ([]*Reconciler, error) {
	if opts.Namespace == "" {
		opts.Namespace = cfg.Reconciler.ServiceAccount.Namespace
	}
	if opts.BreakGlassMaxDuration == 0 {
		opts.BreakGlassMaxDuration = cfg.Guard.BreakGlass.MaxDuration.Duration
	}
	if opts.BreakGlassRetention == 0 {
		opts.BreakGlassRetention = cfg.Guard.BreakGlass.Retention.Duration
	}
	out := make([]*Reconciler, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		r, err := New(s, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// SetBreakGlassMaxDuration sets the longest break-glass the reconciler honours, so that it
// agrees with the guard after a configuration reload; d <= 0 is the default, four hours.
func (r *Reconciler) SetBreakGlassMaxDuration(d time.Duration) {
	if d <= 0 {
		d = v1alpha1.DefaultBreakGlassMaxDuration
	}
	r.maxBG.Store(int64(d))
}

// maxBreakGlass returns the longest break-glass the reconciler honours.
func (r *Reconciler) maxBreakGlass() time.Duration { return time.Duration(r.maxBG.Load()) }

// Name returns the name of the reconciler's source.
func (r *Reconciler) Name() string { return r.src.Name }

// specFor translates a configured source into what the fetcher needs.
func specFor(src v1alpha1.Source, cacheDir string) source.Spec {
	s := source.Spec{
		URL:      src.URL,
		Ref:      source.Ref{Branch: src.Ref.Branch, Tag: src.Ref.Tag, Commit: src.Ref.Commit},
		CacheDir: cacheDir,
		Limits: source.Limits{
			MaxRepositorySize: src.Limits.MaxRepositorySize.Value(),
			MaxFileSize:       src.Limits.MaxFileSize.Value(),
			MaxFiles:          src.Limits.MaxFiles,
		},
	}
	if a := src.Auth; a != nil {
		s.Auth = source.Auth{
			Username: a.Username, PasswordFile: a.PasswordFile, BearerTokenFile: a.BearerTokenFile,
			SSHPrivateKeyFile: a.SSHPrivateKeyFile, SSHKnownHostsFile: a.SSHKnownHostsFile, CAFile: a.CAFile,
		}
	}
	if v := src.Verify; v != nil {
		s.Verify = &source.Verification{KeyringFiles: v.KeyringFiles}
	}
	return s
}
