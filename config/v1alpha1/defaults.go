package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Default values. They are documented in docs/configuration.md and pinned by a golden test.
const (
	// DefaultNamespace is the namespace Driftless is installed in.
	DefaultNamespace = "driftless-system"
	// DefaultServiceAccount is the name of the reconciler's service account.
	DefaultServiceAccount = "driftless"
	// DefaultBranch is the branch a source follows when no ref is given.
	DefaultBranch = "main"
	// DefaultInterval is the time between syncs of a source.
	DefaultInterval = time.Minute
	// DefaultTimeout bounds one sync of a source.
	DefaultTimeout = 5 * time.Minute
	// DefaultBreakGlassMaxDuration is the longest a break-glass may last.
	DefaultBreakGlassMaxDuration = 4 * time.Hour
	// DefaultBreakGlassRetention is how long the record of a break-glass session is kept.
	DefaultBreakGlassRetention = 90 * 24 * time.Hour
	// DefaultMaxRepositorySize bounds a source's Git objects on disk and one checkout.
	DefaultMaxRepositorySize = 256 << 20
	// DefaultMaxFileSize bounds one file of a source's commit.
	DefaultMaxFileSize = 16 << 20
	// DefaultMaxFiles bounds the number of files of a source's commit.
	DefaultMaxFiles = 20000
	// DefaultMaxRenderedSize bounds the rendered objects of a source, as JSON.
	DefaultMaxRenderedSize = 64 << 20
	// DefaultMaxObjects bounds the number of rendered objects of a source. One inventory
	// ConfigMap holds about 15,000.
	DefaultMaxObjects = 10000
	// DefaultLedgerRetention is how long ledger records are kept.
	DefaultLedgerRetention = 90 * 24 * time.Hour
	// DefaultLedgerMaxSize bounds the ledger records kept in the cluster.
	DefaultLedgerMaxSize = 64 << 20
	// DefaultLedgerFlushInterval is how often buffered ledger records are written.
	DefaultLedgerFlushInterval = 10 * time.Second
	// DefaultLedgerBufferSize bounds the ledger records held in memory between writes.
	DefaultLedgerBufferSize = 10000
	// DefaultSinkTimeout bounds one delivery to the ledger's sink.
	DefaultSinkTimeout = 10 * time.Second
	// DefaultSinkQueueSize bounds the records waiting for delivery to the sink.
	DefaultSinkQueueSize = 10000
	// DefaultSinkMaxBackoff is the longest wait between retries of a failed delivery.
	DefaultSinkMaxBackoff = 5 * time.Minute
)

// SystemNamespaces are Kubernetes' own namespaces, which the guard never protects by default.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// DefaultIgnoredResources are resources that hold runtime state rather than desired state.
func DefaultIgnoredResources() []GroupResource {
	return []GroupResource{
		{Group: "", Resource: "events"},
		{Group: "events.k8s.io", Resource: "events"},
		{Group: "coordination.k8s.io", Resource: "leases"},
	}
}

// SetDefaults fills every unset field that has a default. It is idempotent.
func SetDefaults(c *DriftlessConfig) {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = Kind
	}
	sa := &c.Reconciler.ServiceAccount
	if sa.Namespace == "" {
		sa.Namespace = DefaultNamespace
	}
	if sa.Name == "" {
		sa.Name = DefaultServiceAccount
	}
	for i := range c.Sources {
		setSourceDefaults(&c.Sources[i])
	}
	setGuardDefaults(&c.Guard, sa.Namespace)
	setLedgerDefaults(&c.Ledger)
	for i := range c.PolicySets {
		if len(c.PolicySets[i].Packages) == 0 {
			c.PolicySets[i].Packages = []string{"main"}
		}
	}
}

func setSourceDefaults(s *Source) {
	if s.Ref == (GitRef{}) {
		s.Ref.Branch = DefaultBranch
	}
	if s.Path == "" {
		s.Path = "."
	}
	if s.Interval.Duration == 0 {
		s.Interval = metav1.Duration{Duration: DefaultInterval}
	}
	if s.Timeout.Duration == 0 {
		s.Timeout = metav1.Duration{Duration: DefaultTimeout}
	}
	if s.Prune == nil {
		s.Prune = ptr.To(true)
	}
	if s.SelfHeal == nil {
		s.SelfHeal = ptr.To(true)
	}
	SetLimitsDefaults(&s.Limits)
}

// SetLimitsDefaults fills every unset limit with its default.
func SetLimitsDefaults(l *Limits) {
	for _, q := range []struct {
		q   *resource.Quantity
		def int64
	}{
		{&l.MaxRepositorySize, DefaultMaxRepositorySize},
		{&l.MaxFileSize, DefaultMaxFileSize},
		{&l.MaxRenderedSize, DefaultMaxRenderedSize},
	} {
		if q.q.IsZero() {
			*q.q = *resource.NewQuantity(q.def, resource.BinarySI)
		}
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxObjects == 0 {
		l.MaxObjects = DefaultMaxObjects
	}
}

func setGuardDefaults(g *Guard, ownNamespace string) {
	if g.Mode == "" {
		g.Mode = ModeEnforce
	}
	if g.ExemptNamespaces == nil {
		g.ExemptNamespaces = append(append([]string{}, SystemNamespaces...), ownNamespace)
	}
	if g.IgnoredResources == nil {
		g.IgnoredResources = DefaultIgnoredResources()
	}
	if g.BreakGlass.MaxDuration.Duration == 0 {
		g.BreakGlass.MaxDuration = metav1.Duration{Duration: DefaultBreakGlassMaxDuration}
	}
	if g.BreakGlass.Retention.Duration == 0 {
		g.BreakGlass.Retention = metav1.Duration{Duration: DefaultBreakGlassRetention}
	}
	for _, o := range g.SafeOperations.all() {
		if o.op.Enabled == nil {
			o.op.Enabled = ptr.To(true)
		}
	}
}

func setLedgerDefaults(l *Ledger) {
	if l.Retention.Duration == 0 {
		l.Retention = metav1.Duration{Duration: DefaultLedgerRetention}
	}
	if l.MaxSize.IsZero() {
		l.MaxSize = *resource.NewQuantity(DefaultLedgerMaxSize, resource.BinarySI)
	}
	if l.FlushInterval.Duration == 0 {
		l.FlushInterval = metav1.Duration{Duration: DefaultLedgerFlushInterval}
	}
	if l.BufferSize == 0 {
		l.BufferSize = DefaultLedgerBufferSize
	}
	if s := l.Sink; s != nil {
		if s.Timeout.Duration == 0 {
			s.Timeout = metav1.Duration{Duration: DefaultSinkTimeout}
		}
		if s.QueueSize == 0 {
			s.QueueSize = DefaultSinkQueueSize
		}
		if s.MaxBackoff.Duration == 0 {
			s.MaxBackoff = metav1.Duration{Duration: DefaultSinkMaxBackoff}
		}
	}
}
