package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/driftless-dev/driftless/config/v1alpha1"
)

// Bounds of the in-memory buffer and of the ledger's writes.
const (
	// maxBufferedObjectBytes bounds the request bodies held for computing changed fields.
	maxBufferedObjectBytes = 32 << 20
	// shutdownFlushTimeout bounds the last write on shutdown.
	shutdownFlushTimeout = 10 * time.Second
	// pruneInterval is how often expired and excess ConfigMaps are removed, besides after a
	// new ConfigMap was started.
	pruneInterval = 10 * time.Minute
)

// Options configure a Ledger.
type Options struct {
	// Settings are the defaulted, validated ledger settings. Required.
	Settings v1alpha1.Ledger
	// Namespace holds the ledger's ConfigMaps (the installation's namespace). Required.
	Namespace string
	// Client writes the ConfigMaps; Metadata lists and deletes them. Required.
	Client   kubernetes.Interface
	Metadata metadata.Interface
	// Replica names this writer in ConfigMap names; defaults to the host (pod) name.
	Replica string
	// Clock decides retention. Records carry the time their caller gives. Defaults to the
	// real clock; writes are paced by real time.
	Clock clock.PassiveClock
	// Metrics are required.
	Metrics *Metrics
}

// entry is a buffered record with the request's objects, whose changed fields are computed
// off the admission path.
type entry struct {
	rec           Record
	before, after []byte
}

// Ledger buffers records and writes them to the cluster. Make one with New or NewForManager
// and run it with Start. A nil *Ledger records nothing, so callers need no checks.
type Ledger struct {
	settings v1alpha1.Ledger
	store    *store
	notify   *sink
	clock    clock.PassiveClock
	metrics  *Metrics
	replica  string

	mu       sync.Mutex
	buf      []entry
	bufBytes int
	kick     chan struct{}
	// pending are records taken from the buffer that are not written yet; only the flush
	// loop touches them.
	pending []Record
}

var _ manager.LeaderElectionRunnable = (*Ledger)(nil)

// New returns a ledger as opts say.
func New(opts Options) (*Ledger, error) {
	var errs []error
	if opts.Namespace == "" {
		errs = append(errs, errors.New("namespace is required"))
	}
	if opts.Client == nil || opts.Metadata == nil {
		errs = append(errs, errors.New("clients are required"))
	}
	if opts.Metrics == nil {
		errs = append(errs, errors.New("metrics are required"))
	}
	if opts.Settings.BufferSize <= 0 || opts.Settings.FlushInterval.Duration <= 0 {
		errs = append(errs, errors.New("settings must be defaulted"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new ledger: %w", errors.Join(errs...))
	}
	replica := opts.Replica
	if replica == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("new ledger: replica name: %w", err)
		}
		replica = host
	}
	replica = replicaName(replica)
	l := &Ledger{
		settings: opts.Settings,
		store:    &store{client: opts.Client, meta: opts.Metadata, namespace: opts.Namespace, replica: replica, seq: map[string]int{}},
		clock:    opts.Clock,
		metrics:  opts.Metrics,
		replica:  replica,
		kick:     make(chan struct{}, 1),
	}
	if l.clock == nil {
		l.clock = clock.RealClock{}
	}
	if s := opts.Settings.Sink; s != nil {
		var err error
		if l.notify, err = newSink(s, opts.Metrics); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// NewForManager returns the ledger cfg configures, writing to cfg's reconciler namespace,
// added to mgr to run on every replica; nil (which records nothing) when the ledger is
// disabled. clk decides retention (nil is the real clock); reg takes the metrics.
func NewForManager(mgr manager.Manager, cfg *v1alpha1.DriftlessConfig, clk clock.PassiveClock, reg prometheus.Registerer) (*Ledger, error) {
	if cfg.Ledger.Disabled {
		return nil, nil
	}
	client, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("ledger client: %w", err)
	}
	meta, err := metadata.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("ledger metadata client: %w", err)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register ledger metrics: %w", err)
	}
	l, err := New(Options{
		Settings: cfg.Ledger, Namespace: cfg.Reconciler.ServiceAccount.Namespace,
		Client: client, Metadata: meta, Clock: clk, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(l); err != nil {
		return nil, fmt.Errorf("add ledger: %w", err)
	}
	return l, nil
}

// NeedLeaderElection is false: every replica decides admissions and records them.
func (l *Ledger) NeedLeaderElection() bool { return false }

// Admission records a guard decision. before and after are the old and new objects of an
// update as the API server sent them (nil otherwise); the fields that changed are computed
// from them off the admission path. It never blocks: when the buffer is full, the record is
// dropped and counted.
func (l *Ledger) Admission(rec Record, before, after []byte) {
	if l == nil {
		return
	}
	rec.Type = TypeAdmission
	if rec.isSecret() {
		before, after = nil, nil
	}
	l.add(entry{rec: rec, before: before, after: after})
}

func (l *Ledger) add(e entry) {
	size := len(e.before) + len(e.after)
	l.mu.Lock()
	if len(l.buf) >= l.settings.BufferSize || l.bufBytes+size > maxBufferedObjectBytes {
		l.mu.Unlock()
		l.metrics.records.WithLabelValues(outcomeBufferFull).Inc()
		return
	}
	l.buf = append(l.buf, e)
	l.bufBytes += size
	n := len(l.buf)
	l.mu.Unlock()
	l.metrics.buffered.Set(float64(n))
	if n >= l.settings.BufferSize/2 {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Reverted records that the reconciler of source reverted a change made out of band by by
// (before is nil when the object was deleted and is created again) to after, Git at
// revision; reason is the reverting Event's reason.
func (l *Ledger) Reverted(at time.Time, source, reason, by, revision string, before, after *unstructured.Unstructured) {
	if l == nil || after == nil {
		return
	}
	rec := Record{
		Time: at, Type: TypeRevert, Decision: DecisionReverted, Reason: reason, By: by, Source: source,
		Object:   Object{APIVersion: after.GetAPIVersion(), Kind: after.GetKind(), Namespace: after.GetNamespace(), Name: after.GetName()},
		Revision: &Revision{Commit: revision},
	}
	if before == nil {
		rec.Decision = DecisionRecreated
	} else if !rec.isSecret() {
		rec.Fields = changedFields(before.Object, after.Object)
	}
	l.add(entry{rec: rec})
}

// BreakGlassEnded records the end of a break-glass session.
func (l *Ledger) BreakGlassEnded(s Session) {
	if l == nil {
		return
	}
	apiVersion := ""
	if s.Kind == "Secret" {
		apiVersion = "v1"
	}
	rec := Record{
		Time: s.End, Type: TypeBreakGlassEnd, Decision: s.Ending, User: s.By, Source: s.Source,
		Object:     Object{APIVersion: apiVersion, Kind: s.Kind, Namespace: s.Namespace, Name: s.Name},
		BreakGlass: &BreakGlass{Reason: s.Reason, Group: s.Group, Start: s.Start, Until: s.Until, End: s.End, Problem: s.Problem},
	}
	if s.Revision != "" {
		rec.Revision = &Revision{Commit: s.Revision}
	}
	l.add(entry{rec: rec})
}

// RevisionApplied records that source applied commit at, when it differs from previous,
// the revision applied before.
func (l *Ledger) RevisionApplied(at time.Time, source, previous string, rev Revision) {
	if l == nil || rev.Commit == "" || rev.Commit == previous {
		return
	}
	l.add(entry{rec: Record{
		Time: at, Type: TypeRevision, Decision: DecisionApplied, Source: source,
		Revision: &rev,
	}})
}

// Start writes buffered records every flush interval, removes expired and excess records,
// and runs the sink, until ctx is done; then it writes what is buffered once more.
func (l *Ledger) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("ledger")
	if l.notify != nil {
		go l.notify.run(ctx, log.WithName("sink"))
	}
	t := time.NewTicker(l.settings.FlushInterval.Duration)
	defer t.Stop()
	l.prune(ctx, log)
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
			l.flush(fctx, log)
			cancel()
			return nil
		case <-t.C:
		case <-l.kick:
		}
		l.flush(ctx, log)
		if l.store.rolled || time.Since(lastPrune) > pruneInterval {
			l.store.rolled = false
			l.prune(ctx, log)
			lastPrune = time.Now()
		}
	}
}

// flush writes what is buffered. Only the flush loop (or a test driving a ledger without
// Start) calls it: pending is not locked.
func (l *Ledger) flush(ctx context.Context, log logr.Logger) {
	l.mu.Lock()
	buf := l.buf
	l.buf, l.bufBytes = nil, 0
	l.mu.Unlock()
	l.metrics.buffered.Set(float64(len(l.pending)))
	fresh := make([]Record, 0, len(buf))
	for _, e := range buf {
		r := e.rec
		if len(e.before) > 0 && len(e.after) > 0 {
			r.Fields = changedFieldsJSON(e.before, e.after)
		}
		r.Replica = l.replica
		r.sanitize()
		fresh = append(fresh, r)
	}
	l.notify.enqueue(fresh)
	l.pending = append(l.pending, fresh...)
	if over := len(l.pending) - l.settings.BufferSize; over > 0 {
		// Writes keep failing: keep the newest.
		l.metrics.records.WithLabelValues(outcomeUnwritten).Add(float64(over))
		l.pending = append(l.pending[:0], l.pending[over:]...)
	}
	if len(l.pending) == 0 {
		return
	}
	n, err := l.store.append(ctx, l.pending)
	l.metrics.records.WithLabelValues(outcomeWritten).Add(float64(n))
	l.pending = append(l.pending[:0], l.pending[n:]...)
	l.metrics.buffered.Set(float64(len(l.pending)))
	if err != nil {
		l.metrics.writeFailures.Inc()
		log.Error(err, "cannot write ledger records; keeping them for the next write", "records", len(l.pending))
	}
}

func (l *Ledger) prune(ctx context.Context, log logr.Logger) {
	total, deleted, err := l.store.prune(ctx, l.clock.Now(), l.settings.Retention.Duration, l.settings.MaxSize.Value())
	if err != nil {
		log.Error(err, "cannot remove expired ledger records")
		return
	}
	l.metrics.storedBytes.Set(float64(total))
	if deleted > 0 {
		log.Info("removed expired or excess ledger records", "configmaps", deleted, "keptBytes", total)
	}
}
