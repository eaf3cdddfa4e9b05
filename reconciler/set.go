package reconciler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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

// Set runs the reconcilers of the sources the GitSource controller hands it and follows them
// as they change: an added source starts ([Set.Put]), a removed one stops and leaves its
// objects in place ([Set.Remove]), a changed one restarts with its new settings, a requested
// sync reaches the running reconciler at once ([Set.Request]), and a new break-glass maximum
// from the configuration reaches every reconciler at once ([Set.SetConfig]). Make one with
// [NewSet]; run it with [Set.Start].
type Set struct {
	// mu guards the fields below.
	mu   sync.Mutex
	opts Options
	// ctx is the context of Start; nil before Start and after it returned.
	ctx     context.Context
	runs    map[string]SourceRun
	running map[string]*runningSource
}

// runningSource is one started reconciler.
type runningSource struct {
	run    SourceRun
	r      *Reconciler
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSet returns an empty set of reconcilers with cfg's installation-wide settings (the
// status namespace, the break-glass maximum and retention). Options are as for [New]. The
// sources of cfg are not run by the set: `driftless run` mirrors them into GitSources, whose
// controller puts them into the set.
func NewSet(cfg *v1alpha1.DriftlessConfig, opts Options) (*Set, error) {
	if opts.Namespace == "" {
		opts.Namespace = cfg.Reconciler.ServiceAccount.Namespace
	}
	s := &Set{opts: opts, runs: map[string]SourceRun{}, running: map[string]*runningSource{}}
	if err := s.SetConfig(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Check reports whether cfg is valid for the set, without changing anything.
func (s *Set) Check(cfg *v1alpha1.DriftlessConfig) error {
	if errs := v1alpha1.Validate(cfg); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}

// SetConfig makes cfg's break-glass maximum the one the sources honour, and its retention
// the one sources started from now on keep. On an error nothing changes.
func (s *Set) SetConfig(cfg *v1alpha1.DriftlessConfig) error {
	if err := s.Check(cfg); err != nil {
		return err
	}
	maxBG := cfg.Guard.BreakGlass.MaxDuration.Duration
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.BreakGlassMaxDuration = maxBG
	// A new retention applies to the sources started from now on, and to the others when
	// they restart.
	s.opts.BreakGlassRetention = cfg.Guard.BreakGlass.Retention.Duration
	for _, rs := range s.running {
		rs.r.SetBreakGlassMaxDuration(maxBG)
	}
	return nil
}

// Put makes run the way the set runs its source: it starts the source, or restarts it when
// run differs from how it runs now. A run that cannot start is refused and changes nothing.
func (s *Set) Put(run SourceRun) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := NewRun(run, s.opts); err != nil {
		return err
	}
	s.runs[run.Source.Name] = run
	if s.ctx != nil {
		s.converge()
	}
	return nil
}

// Remove stops the source name, if it runs, and waits for it to return. Its objects stay in
// place.
func (s *Set) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[name]; !ok {
		return
	}
	delete(s.runs, name)
	if s.ctx != nil {
		s.converge()
	}
}

// Request asks the running reconciler of source name for a sync now, answering the
// driftless.dev/reconcile-requested-at value token (see [Reconciler.Request]). It reports
// whether the source runs.
func (s *Set) Request(name, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.running[name]
	if rs == nil {
		return false
	}
	rs.r.Request(token)
	return true
}

// PruneAll stops the source name and deletes every object of its inventory, within the
// ownership rules of pruning, as a GitSource with pruneOnDelete asks when it is deleted. It
// returns how many objects it deleted; the ones it left are orphaned and named in the error,
// if any could not be deleted.
func (s *Set) PruneAll(ctx context.Context, run SourceRun) (int, []string, error) {
	s.Remove(run.Source.Name)
	s.mu.Lock()
	opts := s.opts
	s.mu.Unlock()
	r, err := NewRun(run, opts)
	if err != nil {
		return 0, nil, err
	}
	return r.pruneAll(ctx)
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

// Names returns the names of the running sources, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for name := range s.running {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// converge starts, stops and restarts reconcilers until the running ones are s.runs. A
// stopped reconciler has returned before its successor starts, so two never share a cache
// directory or fight over objects. The caller holds s.mu.
func (s *Set) converge() {
	log := logr.FromContextOrDiscard(s.ctx)
	for name, rs := range s.running {
		run, ok := s.runs[name]
		if ok && sameRun(run, rs.run) {
			continue
		}
		rs.cancel()
		<-rs.done
		delete(s.running, name)
		if ok {
			log.Info("restarting source with its changed GitSource", "source", name)
		} else {
			log.Info("stopped source: its GitSource is gone; its objects stay in place, no longer managed", "source", name)
		}
	}
	names := make([]string, 0, len(s.runs))
	for name := range s.runs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if s.running[name] != nil {
			continue
		}
		run := s.runs[name]
		r, err := NewRun(run, s.opts)
		if err != nil {
			// Put checked the run with the same options.
			log.Error(err, "cannot start source", "source", name)
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		rs := &runningSource{run: run, r: r, cancel: cancel, done: make(chan struct{})}
		s.running[name] = rs
		go func() {
			defer close(rs.done)
			_ = r.Start(ctx) // Start returns nil when ctx is done.
		}()
	}
}

// sameRun reports whether two runs of a source are the same, comparing their encodings: a
// resource.Quantity caches its string form, so equal limits need not be deeply equal.
func sameRun(a, b SourceRun) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// pruneAll deletes every object of the source's inventory within the ownership rules of
// pruning, and saves what is left as the inventory.
func (r *Reconciler) pruneAll(ctx context.Context) (int, []string, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if err := r.st.load(ctx, r.env); err != nil {
		return 0, nil, err
	}
	pruned, kept, orphaned, err := r.prune.prune(ctx, r.st.inv, map[objKey]*object{})
	if serr := r.st.saveInventory(ctx, r.env, (&inventory{}).union(kept, r.st.inv.origins)); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return pruned, orphaned, fmt.Errorf("prune the objects of source %s: %w", r.env.src.Name, err)
	}
	return pruned, orphaned, nil
}
