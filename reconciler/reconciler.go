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
	// Fetcher fetches the sources that are Git repositories. Nil uses a go-git fetcher of
	// the reconciler's own.
	Fetcher source.Fetcher
	// CacheDir is an absolute directory for the sources' caches; each source uses a
	// subdirectory named after it. Required.
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

// Reconciler keeps the objects of one source as its ref declares them. Make one with [New]
// or [NewForConfig]; run it with [Reconciler.Start], or drive it with [Reconciler.Sync]. Its
// methods are safe for concurrent use.
//
// It is made of parts with one job each, which share the source's state explicitly:
//   - fetch: the source yields an artifact (no state);
//   - plan: render, gate, prepare (no state), then the dry-run against the live objects;
//   - apply: writes desired objects, in stages, and remembers its own writes;
//   - prune: deletes what left Git, within the ownership rules (no state);
//   - heal: watches the applied objects, reverts drift, holds break-glass and records it;
//   - status: the one place the status (and the break-glass record) is written.
//
// Fetch, render and gate take no lock, so healing never waits behind a slow source.
type Reconciler struct {
	env    *env
	st     *state
	writes *writeLog
	fetch  *fetcher
	plan   *planner
	apply  *applier
	prune  *pruner
	heal   *healer
	status *statusWriter

	// syncMu serializes syncs: one fetch and render at a time in the source's cache.
	syncMu sync.Mutex

	// kick wakes the sync loop for a requested sync; request is the pending request's
	// driftless.dev/reconcile-requested-at value, guarded by reqMu.
	kick    chan struct{}
	reqMu   sync.Mutex
	request string
	// taken is the last request a sync took, so that the same request is answered once.
	taken string
}

// env is what every part of one source's reconciler reads: the source's configuration and
// the injected dependencies. Nothing in it changes after [New] but the break-glass maximum,
// which is atomic.
type env struct {
	src v1alpha1.Source
	// run is what the source's GitSource says besides the source: its generation and
	// whether it is suspended or stalled.
	run       SourceRun
	client    dynamic.Interface
	mapper    meta.RESTMapper
	recorder  events.EventRecorder
	ledger    *ledger.Ledger
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
}

// New returns the reconciler of one source. The source is defaulted as configuration
// loading does. Its status and inventory live in the status of the GitSource of the same
// name in the options' namespace, which must exist.
func New(src v1alpha1.Source, opts Options) (*Reconciler, error) {
	return NewRun(SourceRun{Source: src}, opts)
}

// SourceRun is a source as the GitSource controller runs it: the source, and what its
// GitSource says besides it. A change of any field restarts the source's reconciler.
type SourceRun struct {
	// Source is the source, its credentials resolved to files.
	Source v1alpha1.Source
	// Generation is the GitSource's metadata.generation, reported as observedGeneration.
	Generation int64
	// Suspension, when set, stops syncing and self-heal; with Until set, the reconciler
	// ends it at Until by removing the suspend annotations.
	Suspension *v1alpha1.SuspensionStatus
	// SuspendProblem says why suspend annotations present on the GitSource are ignored.
	SuspendProblem string
	// Stalled, when set, says why the source cannot run (such as a missing Secret); the
	// reconciler only reports it.
	Stalled string
}

// NewRun returns the reconciler of one source as its GitSource says to run it.
func NewRun(run SourceRun, opts Options) (*Reconciler, error) {
	src := run.Source
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
	run.Source = src
	e := &env{
		src:         src,
		run:         run,
		client:      opts.Client,
		mapper:      opts.Mapper,
		recorder:    opts.Recorder,
		ledger:      opts.Ledger,
		clock:       opts.Clock,
		metrics:     opts.Metrics,
		namespace:   opts.Namespace,
		takeover:    takeover{prefixes: opts.TakeoverManagers, sessions: &sessionStarts{}},
		concurrency: opts.Concurrency,
		retention:   opts.BreakGlassRetention,
	}
	if e.clock == nil {
		e.clock = clock.RealClock{}
	}
	if e.namespace == "" {
		e.namespace = v1alpha1.DefaultNamespace
	}
	if e.takeover.prefixes == nil {
		e.takeover.prefixes = DefaultTakeoverManagers
	}
	if e.concurrency <= 0 {
		e.concurrency = 16
	}
	if e.retention <= 0 {
		e.retention = v1alpha1.DefaultBreakGlassRetention
	}
	fetcher := opts.Fetcher
	if fetcher == nil {
		fetcher = source.NewGitFetcher()
	}
	s, err := newSource(src, filepath.Join(opts.CacheDir, src.Name), fetcher, e.clock)
	if err != nil {
		return nil, fmt.Errorf("reconciler for source %q: %w", src.Name, err)
	}
	r := newReconciler(e, s, opts.Gate)
	r.SetBreakGlassMaxDuration(opts.BreakGlassMaxDuration)
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
	r.env.maxBG.Store(int64(d))
}

// maxBreakGlass returns the longest break-glass the reconciler honours.
func (e *env) maxBreakGlass() time.Duration { return time.Duration(e.maxBG.Load()) }

// Name returns the name of the reconciler's source.
func (r *Reconciler) Name() string { return r.env.src.Name }

// newReconciler wires the parts of the reconciler of e's source around one shared state.
func newReconciler(e *env, src source.Source, gate Gate) *Reconciler {
	loc := src.Location()
	st := &state{
		inv:      &inventory{},
		desired:  map[objKey]*object{},
		bg:       map[objKey]BreakGlassObject{},
		sessions: map[objKey]*storedSession{},
		status:   Status{Source: e.src.Name, URL: loc.URL, Ref: loc.Ref, Path: e.src.Path},
	}
	w := &writeLog{written: map[objKey][]string{}, verified: map[objKey]verification{}}
	r := &Reconciler{env: e, st: st, writes: w, kick: make(chan struct{}, 1)}
	r.status = &statusWriter{env: e, st: st}
	r.fetch = &fetcher{env: e, source: src}
	r.apply = &applier{env: e, st: st, writes: w}
	r.plan = &planner{env: e, st: st, writes: w, apply: r.apply, gate: gate}
	r.prune = &pruner{env: e}
	r.heal = &healer{env: e, st: st, writes: w, apply: r.apply, status: r.status, timers: map[objKey]expiryTimer{}}
	r.apply.heal = r.heal
	return r
}

// Request asks for a sync now, answering the driftless.dev/reconcile-requested-at value
// token: the running sync loop syncs at once (or right after the sync in progress) and
// records token as the status's lastHandledReconcileAt. Requests made before the loop
// runs are answered by its first sync. Request never blocks.
func (r *Reconciler) Request(token string) {
	r.reqMu.Lock()
	if token == r.taken || token == r.request {
		r.reqMu.Unlock()
		return
	}
	r.request = token
	r.reqMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// takeRequest returns the pending request's token and clears it.
func (r *Reconciler) takeRequest() string {
	r.reqMu.Lock()
	defer r.reqMu.Unlock()
	t := r.request
	r.request = ""
	if t != "" {
		r.taken = t
	}
	return t
}
