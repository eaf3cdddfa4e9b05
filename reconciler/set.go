package reconciler

import (
	"context"
	"errors"
	"reflect"
	"sync"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

var (
	_ manager.Runnable               = (*Set)(nil)
	_ manager.LeaderElectionRunnable = (*Set)(nil)
)

// Set runs the reconcilers of a configuration's sources and follows the configuration as it
// changes: an added source starts, a removed one stops and leaves its objects in place, a
// changed one restarts with its new settings, and a new break-glass maximum reaches every
// reconciler at once. Make one with [NewSet]; run it with [Set.Start].
type Set struct {
	opts Options

	// mu guards the fields below.
	mu sync.Mutex
	// ctx is the context of Start; nil before Start and after it returned.
	ctx     context.Context
	sources []v1alpha1.Source
	running map[string]*runningSource
}

// runningSource is one started reconciler.
type runningSource struct {
	src    v1alpha1.Source
	r      *Reconciler
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSet returns the set of reconcilers for cfg's sources, not yet started. Options are as for
// [NewForConfig].
func NewSet(cfg *v1alpha1.DriftlessConfig, opts Options) (*Set, error) {
	if opts.Namespace == "" {
		opts.Namespace = cfg.Reconciler.ServiceAccount.Namespace
	}
	s := &Set{opts: opts, running: map[string]*runningSource{}}
	if err := s.SetConfig(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Check reports whether cfg's sources can run, without changing anything.
func (s *Set) Check(cfg *v1alpha1.DriftlessConfig) error {
	s.mu.Lock()
	opts := s.opts
	s.mu.Unlock()
	opts.BreakGlassMaxDuration = cfg.Guard.BreakGlass.MaxDuration.Duration
	// Validation reports a source configured twice or without a URL by its field path.
	if errs := v1alpha1.Validate(cfg); len(errs) > 0 {
		return errs.ToAggregate()
	}
	var errs []error
	for _, src := range cfg.Sources {
		if _, err := New(src, opts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetConfig makes cfg's sources the ones the set runs and its break-glass maximum the one
// they honour. Every source is checked before anything changes: on an error nothing changes.
func (s *Set) SetConfig(cfg *v1alpha1.DriftlessConfig) error {
	if err := s.Check(cfg); err != nil {
		return err
	}
	maxBG := cfg.Guard.BreakGlass.MaxDuration.Duration
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append([]v1alpha1.Source(nil), cfg.Sources...)
	s.opts.BreakGlassMaxDuration = maxBG
	// A new retention applies to the sources started from now on, and to the others when
	// they restart.
	s.opts.BreakGlassRetention = cfg.Guard.BreakGlass.Retention.Duration
	for _, rs := range s.running {
		rs.r.SetBreakGlassMaxDuration(maxBG)
	}
	if s.ctx != nil {
		s.converge()
	}
	return nil
}

// Start runs the reconcilers until ctx is done, then stops them and waits for them to return.
func (s *Set) Start(ctx context.Context) error {
	log := crlog.FromContext(ctx)
	ctx = logr.NewContext(ctx, log)
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return errors.New("reconciler set already started")
	}
	s.ctx = ctx
	s.converge()
	s.mu.Unlock()

	<-ctx.Done()

	s.mu.Lock()
	s.ctx = nil
	var done []chan struct{}
	for name, rs := range s.running {
		rs.cancel()
		done = append(done, rs.done)
		delete(s.running, name)
	}
	s.mu.Unlock()
	for _, d := range done {
		<-d
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader applies.
func (s *Set) NeedLeaderElection() bool { return true }

// Names returns the names of the running sources.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for _, src := range s.sources {
		if s.running[src.Name] != nil {
			out = append(out, src.Name)
		}
	}
	return out
}

// converge starts, stops and restarts reconcilers until the running ones are s.sources. A
// stopped reconciler has returned before its successor starts, so two never share a cache
// directory or fight over objects. The caller holds s.mu.
func (s *Set) converge() {
	log := logr.FromContextOrDiscard(s.ctx)
	want := map[string]v1alpha1.Source{}
	for _, src := range s.sources {
		want[src.Name] = src
	}
	for name, rs := range s.running {
		src, ok := want[name]
		if ok && reflect.DeepEqual(src, rs.src) {
			continue
		}
		rs.cancel()
		<-rs.done
		delete(s.running, name)
		if ok {
			log.Info("restarting source with its changed configuration", "source", name)
		} else {
			log.Info("stopped source removed from the configuration; its objects stay in place", "source", name)
		}
	}
	for _, src := range s.sources {
		if s.running[src.Name] != nil {
			continue
		}
		r, err := New(src, s.opts)
		if err != nil {
			// SetConfig checked every source with the same options.
			log.Error(err, "cannot start source", "source", src.Name)
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		rs := &runningSource{src: src, r: r, cancel: cancel, done: make(chan struct{})}
		s.running[src.Name] = rs
		go func() {
			defer close(rs.done)
			_ = r.Start(ctx) // Start returns nil when ctx is done.
		}()
	}
}
